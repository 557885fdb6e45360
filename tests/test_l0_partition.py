"""The l0 superpoint partition (``segment/l0_partition.py``) and ``pcweak.superpoints``."""
import json

import numpy as np
import pytest
import torch

import pcweak
from pcweak.cli import main
from pcweak.segment.l0_partition import L0Config, edge_weights, l0_hierarchy, l0_partition_python, partition_features
from pcweak.segment.superpoints import felzenszwalb, knn_graph, superpoint_hierarchy


def _wall_with_picture(seed: int = 0, n: int = 6000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 3 m x 2.5 m wall (x = 0 plane, 3 mm depth noise) with a 0.8 m x 0.6 m picture flat on
    it, a 1 m x 2 m floor in front, colour noise 0.03. Returns coord, color, (N,) part id
    (0 wall, 1 picture, 2 floor)."""
    rng = np.random.default_rng(seed)
    wall = np.stack([rng.normal(0, 0.003, n), rng.uniform(0, 3, n), rng.uniform(0, 2.5, n)], 1)
    pic = (np.abs(wall[:, 1] - 1.5) < 0.4) & (np.abs(wall[:, 2] - 1.4) < 0.3)
    floor = np.stack([rng.uniform(0.02, 1.0, n // 2), rng.uniform(0, 3, n // 2), rng.normal(0, 0.003, n // 2)], 1)
    coord = np.concatenate([wall, floor]).astype(np.float32)
    part = np.concatenate([pic.astype(np.int64), np.full(n // 2, 2)])
    base = np.array([[0.80, 0.78, 0.72], [0.25, 0.35, 0.60], [0.55, 0.45, 0.35]])
    color = np.clip(base[part] + rng.normal(0, 0.03, (len(coord), 3)), 0, 1)
    return coord, color, part


def _purity(seg: np.ndarray, part: np.ndarray) -> float:
    """Fraction of points whose superpoint's majority part is their own part."""
    C = int(part.max()) + 1
    _, node = np.unique(seg, return_inverse=True)
    cnt = np.bincount(node * C + part, minlength=(node.max() + 1) * C).reshape(-1, C)
    return float((cnt.argmax(1)[node] == part).mean())


def test_l0_separates_a_coplanar_picture_that_fh_merges_into_its_wall():
    coord, color, part = _wall_with_picture()
    sp = pcweak.superpoints(coord, color)
    assert sp.dtype == np.int64 and sp.shape == (len(coord),)
    # the picture is recovered nearly whole: its points sit in picture-majority superpoints
    pic = part == 1
    _, node = np.unique(sp, return_inverse=True)
    maj = np.bincount(node[pic], minlength=node.max() + 1) > 0.5 * np.bincount(node, minlength=node.max() + 1)
    assert maj[node[pic]].mean() > 0.95 and _purity(sp, part) > 0.97
    # FH cuts by normals, and the picture lies in the wall's plane: it cannot follow it
    fh = felzenszwalb(coord, None, color)
    assert _purity(fh, part) < 0.95
    assert len(coord) / len(np.unique(sp)) >= 10  # superpoints, not single points


def test_hierarchy_levels_are_nested_and_coarsen():
    coord, color, _ = _wall_with_picture(1, 3000)
    h = superpoint_hierarchy(coord, color, regularization=(0.05, 0.3, 2.0), min_size=(5, 20, 60))
    assert h.shape == (3, len(coord))
    counts = [len(np.unique(x)) for x in h]
    assert counts[0] > counts[1] > counts[2] >= 1
    for fine, coarse in zip(h[:-1], h[1:]):
        pairs = np.unique(np.stack([fine, coarse], 1), axis=0)
        assert len(pairs) == len(np.unique(fine))  # every fine superpoint inside one coarse one
    for level, ms in zip(h, (5, 20, 60)):
        assert np.bincount(level).min() >= ms
        assert np.array_equal(np.unique(level), np.arange(level.max() + 1))
        _, first = np.unique(level, return_index=True)
        assert np.all(np.diff(first) > 0)  # numbered by first point


def test_one_neighbour_search_serves_the_shape_features_and_the_graph(monkeypatch):
    """The hierarchy searches the cloud once, for the larger of the graph's and the shape
    features' neighbourhoods, and its levels are those of separate searches, to the bit."""
    import importlib
    ops = importlib.import_module("pcweak.ops")
    coord, color, _ = _wall_with_picture(2, 3000)
    searches, knn = [], ops.knn
    monkeypatch.setattr(ops, "knn", lambda s, q, k, *a: searches.append(k) or knn(s, q, k, *a))
    shared = l0_hierarchy(coord, color)
    assert searches == [max(L0Config().k + 1, L0Config().k_shape)]
    searches.clear()
    alone = l0_hierarchy.__wrapped__(coord, color)
    assert sorted(searches) == sorted([L0Config().k + 1, L0Config().k_shape])
    np.testing.assert_array_equal(shared, alone)


@pytest.mark.parametrize("regularization, min_size, at_least", [
    ((0.02, 0.1, 0.6), (3, 10, 40), 20),  # three levels: the waiting list fills and drops its dead entries
    ((0.6,), (3,), 5),  # one level, every pair in the heap: the heap fills and drops its dead entries
])
def test_compiled_partition_equals_the_python_version(regularization, min_size, at_least):
    from pcweak.ops.extension import compiled
    mod = compiled()
    if mod is None:
        pytest.skip("compiled ops not built")
    coord, color, _ = _wall_with_picture(2, 1500)
    cfg = L0Config(regularization=regularization, min_size=min_size)
    x = partition_features(coord, color, cfg)
    u, v = knn_graph(coord, cfg.k)
    w = edge_weights(coord, u, v)
    lam, ms = np.array(cfg.regularization), np.array(cfg.min_size)
    c = mod.l0_partition(torch.from_numpy(u), torch.from_numpy(v), torch.from_numpy(w), torch.from_numpy(x.copy()),
                         torch.from_numpy(lam), torch.from_numpy(ms)).numpy()
    p = l0_partition_python(u, v, w, x, lam, ms)
    assert np.array_equal(c, p) and len(np.unique(c[0])) > at_least


def test_l0_energy_decides_the_cut():
    """Two flat patches of one plane, colours 0.2 apart: kept apart when the colour difference
    outweighs the cut (small lambda), joined when lambda makes the border too dear."""
    rng = np.random.default_rng(3)
    coord = np.stack([rng.uniform(0, 2, 2000), rng.uniform(0, 1, 2000), np.zeros(2000)], 1).astype(np.float32)
    color = np.where(coord[:, :1] < 1, 0.4, 0.6) * np.ones((1, 3))
    side = (coord[:, 0] >= 1).astype(int)
    fine, coarse = superpoint_hierarchy(coord, color, regularization=(0.5, 1e4), min_size=(1, 1), w_position=0.0)
    assert _purity(fine, side) == 1.0
    assert len(np.unique(coarse)) == 1


def test_clouds_without_colour_and_tiny_clouds():
    coord, _, part = _wall_with_picture(4, 2000)
    sp = pcweak.superpoints(coord)  # shape, position and elevation only
    assert _purity(sp, (part == 2).astype(np.int64)) > 0.97  # wall and floor apart
    assert pcweak.superpoints(np.zeros((0, 3), np.float32)).shape == (0,)
    assert np.array_equal(pcweak.superpoints(np.zeros((3, 3), np.float32)), [0, 0, 0])


def test_bad_parameters_name_what_is_wrong():
    coord, color, _ = _wall_with_picture(5, 500)
    with pytest.raises(ValueError, match="ascending"):
        pcweak.superpoints(coord, color, regularization=(0.3, 0.1), min_size=(5, 5))
    with pytest.raises(ValueError, match="one entry per level"):
        superpoint_hierarchy(coord, color, regularization=(0.1, 0.3), min_size=(5,))
    with pytest.raises(ValueError, match="unknown parameter.*colour_weight"):
        pcweak.superpoints(coord, color, colour_weight=1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        pcweak.superpoints(coord, color, method="slic")
    with pytest.raises(ValueError, match="needs faces"):
        pcweak.superpoints(coord, color, method="mesh")
    # FH's and the mesh segmentator's settings, as l0's (c = -1 used to be taken)
    with pytest.raises(ValueError, match=r"fh superpoints: unknown parameter\(s\) \['regularization'\]; known: \['k', 'c'"):
        pcweak.superpoints(coord, color, method="fh", regularization=0.1)
    with pytest.raises(ValueError, match="fh superpoints: c must be a number > 0, got -1"):
        pcweak.superpoints(coord, color, method="fh", c=-1)
    with pytest.raises(ValueError, match="fh superpoints: min_size must be an integer >= 1, got 0"):
        pcweak.superpoints(coord, color, method="fh", min_size=0)
    with pytest.raises(ValueError, match="mesh superpoints: k_thresh must be a number > 0"):
        pcweak.superpoints(coord, color, method="mesh", faces=np.array([[0, 1, 2]]), k_thresh=0.0)
    with pytest.raises(pcweak.SceneError, match="color has 3 rows for 750 points"):
        l0_hierarchy(coord, color[:3])
    # the arrays themselves, checked where they enter
    with pytest.raises(pcweak.SceneError, match=r"superpoints: color values must lie in \[0,1\].*divide 0-255 colours by 255"):
        pcweak.superpoints(coord, color * 255)  # would weigh colour 255 times over
    with pytest.raises(pcweak.SceneError, match=r"superpoints.coord: shape \(750, 2\) does not match the expected \(\*,3\)"):
        pcweak.superpoints(coord[:, :2])
    with pytest.raises(pcweak.SceneError, match="superpoints.coord: 1 entries are NaN"):
        pcweak.superpoints(np.where(np.arange(750)[:, None] == 7, np.nan, coord))
    with pytest.raises(pcweak.SceneError, match=r"superpoints.color: shape \(3, 3\)"):
        pcweak.superpoints(coord, color[:3])
    assert len(pcweak.superpoints(coord, color[:, :1])) == 750  # a LiDAR intensity


def test_bench_superpoints_scores_each_level_against_fh(tmp_path, capsys):
    assert main(["bench", "superpoints", "--json", "--param", "n_synthetic=1", "--param", "million=false",
                 "--param", "shared="]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (name, row), = r["scenes"].items()
    assert row["group"] == "synthetic" and len(row["l0"]) == len(L0Config().regularization)
    fine = row["l0"][0]
    assert fine["oracle_miou"] > row["fh"]["oracle_miou"] + 0.1  # FH merges the room's coplanar objects
    assert fine["points_per_superpoint"] >= 20 and fine["seconds_per_100k_points"] > 0
    assert [x["superpoints"] for x in row["l0"]] == sorted((x["superpoints"] for x in row["l0"]), reverse=True)
    assert "targets" not in r and "million" not in r


def test_propagation_on_l0_nodes_labels_the_picture_that_fh_nodes_hide():
    coord, color, part = _wall_with_picture(6)
    rng = np.random.default_rng(0)
    seeds = np.concatenate([rng.choice(np.flatnonzero(part == p), k, replace=False) for p, k in ((0, 4), (1, 1), (2, 3))])
    ious = {}
    for method in ("l0", "fh"):
        p = pcweak.propagate(coord, seeds, part[seeds], color=color, classes=("wall", "picture", "floor"),
                             config={"partition.method": method, "partition.split_below": 0.0})
        pic, pred = part == 1, p.semantic == 1
        ious[method] = (pic & pred).sum() / (pic | pred).sum()
        assert json.loads(p.params)["partition"]["method"] == method
    assert ious["l0"] > 0.9 > 0.5 > ious["fh"], ious
    with pytest.raises(ValueError, match="l0_regularization must be > 0"):
        pcweak.propagate(coord, seeds, part[seeds], color=color, config={"partition.l0_regularization": 0.0})


def test_superpoints_scale_their_sizes_to_a_sparser_cloud(room):
    """``pcweak.superpoints`` on a cloud sparser than ScanNet's 3 cm: the sizes in points shrink
    as in propagation's partitions (the same superpoints as those sizes given outright), and
    ``reference_spacing=None`` keeps them as given."""
    from pcweak.segment.superpoints import REFERENCE_SPACING, min_size_at, point_spacing
    keep = np.arange(0, room.num_points, 16)
    coord, color = room.coord[keep], room.color[keep]
    spacing = point_spacing(coord)
    assert spacing > 1.5 * REFERENCE_SPACING
    scaled = tuple(min_size_at(m, spacing, REFERENCE_SPACING) for m in L0Config().min_size)
    assert scaled < L0Config().min_size
    np.testing.assert_array_equal(pcweak.superpoints(coord, color),
                                  pcweak.superpoints(coord, color, reference_spacing=None, min_size=scaled))
    np.testing.assert_array_equal(superpoint_hierarchy(coord, color, reference_spacing=None),
                                  l0_hierarchy(coord, color, L0Config()))
    fh = pcweak.superpoints(coord, color, method="fh", min_size=40)
    np.testing.assert_array_equal(fh, felzenszwalb(coord, None, color, min_size=min_size_at(40, spacing, REFERENCE_SPACING)))
    assert fh.max() > pcweak.superpoints(coord, color, method="fh", min_size=40, reference_spacing=None).max()


def test_features_and_edge_weights_in_blocks_are_the_same_bits(monkeypatch):
    """The neighbourhood PCA (normals, shape features) and the l0 edge weights are computed in
    blocks of points / edges to bound memory: blocks down to a few points give the same bits,
    with and without a shared neighbour table, for all points and for a query."""
    import sys
    sup = sys.modules["pcweak.segment.superpoints"]
    from pcweak.segment import l0_partition
    from pcweak.segment.descriptors import share_neighbours, shares_shape_features
    coord, color, _ = _wall_with_picture(3, 1200)
    query = np.random.default_rng(0).choice(len(coord), 300, replace=False)
    u, v = knn_graph(coord, 10)

    @shares_shape_features
    def shared(k: int, q):
        share_neighbours(coord, k)
        return sup.neighbourhood_pca(coord, k, q)

    def everything():
        out = [sup.neighbourhood_pca(coord, k, q) for k in (16, 30) for q in (None, query)]
        out += [shared(30, None), shared(16, query)]
        return [t.numpy() for pair in out for t in pair] + [edge_weights(coord, u, v)]

    whole = everything()
    monkeypatch.setattr(sup, "KNN_POINTS_AT_ONCE", 97)
    monkeypatch.setattr(sup, "PCA_POINTS_AT_ONCE", 13)
    monkeypatch.setattr(l0_partition, "EDGES_AT_ONCE", 101)
    blocks = everything()
    assert len(u) > 1000 and all(np.array_equal(a, b) for a, b in zip(whole, blocks))
    length = np.linalg.norm(coord[u] - coord[v], axis=1)
    assert np.allclose(whole[-1], 1 / (1 + length / length.mean()))

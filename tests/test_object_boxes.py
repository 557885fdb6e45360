"""Pseudo boxes for LiDAR objects from clicks and cluster labels, with sizes from boxed frames."""
import dataclasses
import json

import numpy as np
import pytest

import pcweak
from pcweak import weak
from pcweak.cli import main
from pcweak.data.kitti import write_kitti
from pcweak.errors import SceneError
from pcweak.geometry import box_iou, points_in_boxes
from pcweak.pseudo.box_fit import BoxGeometry, fit_box, lshape_yaw, shrunk_size
from pcweak.pseudo.object_boxes import click_boxes, cluster_boxes, learn_box_geometry
from pcweak.pseudo.registry import check_params
from pcweak.scene import Frame

from .conftest import shared_path


@pytest.fixture(scope="module")
def frames():
    return [pcweak.load_scene(f"synthetic-lidar:{i}") for i in range(3)]


@pytest.fixture(scope="module")
def geometry(frames):
    return learn_box_geometry([(s, weak.boxes(s, axis_aligned=False)) for s in frames[:2]])


def _dense_car_ious(scene, p):
    """BEV IoU of each GT car with >= 50 points with its best pseudo car."""
    keep = (scene.box_labels == 0)
    gt = scene.boxes[keep].astype(np.float64)
    dense = points_in_boxes(scene.coord, gt).sum(0) >= 50
    cars = p.box[p.box_semantic == 0].astype(np.float64)
    if not dense.any() or not len(cars):
        return np.zeros(int(dense.sum()))
    return box_iou(gt[dense], cars, "bev").max(1)


def test_lshape_heading_of_an_l():
    # two faces of a box turned 30 degrees: 2 m and 4 m sides from the corner
    a = np.radians(30)
    u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    xy = np.concatenate([np.linspace(0, 4, 40)[:, None] * u, np.linspace(0, 2, 20)[:, None] * v])
    assert np.degrees(lshape_yaw(xy)) == pytest.approx(30, abs=1.5)


def test_fit_box_keeps_a_car_seen_from_behind_straight():
    # the rear face and the roof lines of a car 13 m ahead (what KITTI 000003 shows): the roof
    # points inside the outline must not turn the box askew
    rear = np.stack([np.full(30, 11.6), np.linspace(-1.6, -0.2, 30), np.full(30, -1.2)], 1)
    roof = np.concatenate([np.stack([np.full(15, x), np.linspace(-1.5, -0.3, 15), np.full(15, -0.4)], 1)
                           for x in (12.2, 12.8, 13.4, 14.0, 14.6, 15.2)])
    b = fit_box(np.concatenate([rear, roof]), "Car", ground_z=-1.73)
    assert abs(np.sin(b[6])) < 0.05
    gt = np.array([[13.5, -0.9, -0.95, 4.0, 1.7, 1.55, 0.0]])
    assert box_iou(gt, b[None], "bev")[0, 0] > 0.8


def test_sizes_learned_from_boxed_frames(geometry):
    # the synthetic pedestrians are 0.35 m long and 0.55 m wide (KITTI's mean: 0.8 x 0.6)
    L, W, H = geometry.size("Pedestrian")
    assert L < 0.6 and W > L
    assert geometry.counts["Car"] >= 8
    back = BoxGeometry.from_dict(json.loads(json.dumps(geometry.to_dict())))
    for c, size in geometry.sizes.items():
        assert back.size(c) == pytest.approx(size, abs=1e-3)


def test_class_size_weighs_the_prior_by_the_boxes_spread():
    prior = np.array([0.8, 0.6, 1.73])
    agree = np.tile([0.35, 0.55, 1.7], (6, 1))  # six boxes of one size, far from the prior
    assert shrunk_size(agree, prior)[0] < 0.37  # they outweigh it
    assert shrunk_size(agree[:3], prior)[0] < 0.4  # three do too: another dataset's convention
    near = np.array([[0.65, 0.6, 1.73]])  # one box a little off: mostly the prior's sampling spread
    assert 0.72 < shrunk_size(near, prior)[0] < 0.8
    assert shrunk_size(np.tile(near, (6, 1)), prior)[0] < 0.7  # six of them are a real shift
    rng = np.random.default_rng(0)
    scattered = np.column_stack([rng.uniform(0.45, 0.85, 6), np.full(6, 0.6), np.full(6, 1.73)])
    assert shrunk_size(scattered, prior)[0] > shrunk_size(np.tile(scattered.mean(0), (6, 1)), prior)[0] + 0.05
    assert shrunk_size(agree, None) == pytest.approx(agree[0])


def test_click_boxes_fit_dense_cars(frames, geometry):
    s = frames[2]
    p = click_boxes(s, weak.clicks(s, seed=0), geometry)
    ious = _dense_car_ious(s, p)
    assert len(ious) >= 3 and (ious >= 0.7).mean() >= 0.6
    # one box per click, classes from the clicks, points inside carry them
    assert len(p.box) <= len(weak.clicks(s).point_index) and set(p.box_semantic) <= {0, 1, 2}
    assert (p.semantic[p.instance >= 0] == p.box_semantic[p.instance[p.instance >= 0]]).all()
    # wrong clicks give wrong boxes: clicks moved to background points find no car
    bg = np.flatnonzero(s.semantic == 3)[:: len(s.coord) // 40][:10]
    wrong = pcweak.WeakLabels(scene=s.name, num_points=s.num_points, classes=s.classes, point_index=bg,
                              point_semantic=np.zeros(len(bg), np.int64))
    assert (_dense_car_ious(s, click_boxes(s, wrong, geometry)) >= 0.7).mean() < 0.3


def test_cluster_boxes_bound_click_boxes(frames, geometry):
    s = frames[2]
    full = cluster_boxes(s, weak.clusters(s), geometry)
    clicked = click_boxes(s, weak.clicks(s, seed=0), geometry)
    assert _dense_car_ious(s, full).mean() >= _dense_car_ious(s, clicked).mean() - 0.02
    assert (_dense_car_ious(s, full) >= 0.7).mean() >= 0.7


@pytest.mark.parametrize("method,make", [("click-boxes", weak.clicks), ("cluster-boxes", weak.clusters),
                                         ("boxes2d-frustum", weak.boxes2d)])
def test_boxed_frame_keeps_its_boxes(frames, method, make):
    """Every box labeller answers a fully boxed frame with its own boxes (``registry.label``),
    whatever else its weak file holds; the same weak labels without the boxes are fitted."""
    s = frames[0]
    b = weak.boxes(s, axis_aligned=False)
    w = make(s)
    fitted = pcweak.label(s, w, method)
    w.box, w.box_semantic = b.box, b.box_semantic
    p = pcweak.label(s, w, method)
    assert np.array_equal(p.box, b.box) and (p.box_confidence == 1).all() and p.method == method
    assert json.loads(p.stats)["boxed_frame"] and not np.array_equal(fitted.box, b.box)


def test_bad_geometry_and_missing_clicks_are_named(frames):
    with pytest.raises(ValueError, match="geometry"):
        check_params("click-boxes", {"geometry": {"sizes": {"Car": [4, 1.6]}}})
    with pytest.raises(ValueError, match="trim"):
        check_params("cluster-boxes", {"trim": 0.5})
    s = frames[0]
    with pytest.raises(SceneError, match="point_index"):
        pcweak.label(s, weak.boxes2d(s), "click-boxes")
    with pytest.raises(SceneError, match="point_instance"):
        pcweak.label(s, pcweak.WeakLabels(scene=s.name, num_points=s.num_points, classes=s.classes,
                                              point_index=np.arange(5), point_semantic=np.zeros(5, np.int64)), "cluster-boxes")


def test_cli_learns_sizes_from_the_boxed_frames_of_a_split(tmp_path, frames, capsys):
    split = tmp_path / "training"
    for i, s in enumerate(frames[1:]):  # without the rendered camera image (slow to draw, not needed)
        write_kitti(dataclasses.replace(s, frames=[Frame(f.name, f.pose, f.intrinsics) for f in s.frames]), split, f"00000{i}")
    wdir = tmp_path / "weak"
    assert main(["simulate", f"kitti:{split}/000000", "--weak", "clicks", "--with-boxes", "-o", str(wdir / "000000.npz")]) == 0
    assert main(["simulate", f"kitti:{split}/000001", "--weak", "clicks", "-o", str(wdir / "000001.npz")]) == 0
    label = ["label", f"kitti:{split}", "--weak", str(wdir), "--method", "click-boxes", "-o", str(tmp_path / "out")]
    assert main(label) == 0
    assert "boxes in 1 fully boxed frames" in capsys.readouterr().err
    p = pcweak.PseudoLabels.load(tmp_path / "out" / "000001.npz")
    sizes = json.loads(p.params)["geometry"]["sizes"]
    assert sizes["Pedestrian"][0] < 0.75  # learned from the synthetic 0.41 m pedestrians, not KITTI's 0.8 alone
    assert main(["evaluate", f"kitti:{split}/000001", "--pseudo", str(tmp_path / "out" / "000001.npz"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["boxes"]
    assert rep["per_class"]["Car"]["recall_bev_0.7"] > 0.4 and "recall_0.5" in rep["per_class"]["Pedestrian"]
    # another boxed frame changes the sizes, so every frame is redone
    assert main(["simulate", f"kitti:{split}/000001", "--weak", "clicks", "--with-boxes", "-o", str(wdir / "000001.npz")]) == 0
    assert main(label) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["redone_other_inputs"] == 2
    assert main(["simulate", f"kitti:{split}/000001", "--weak", "points", "--count", "5", "--with-boxes",
                 "-o", str(tmp_path / "x.npz")]) == 2
    assert "--with-boxes" in capsys.readouterr().err


@pytest.mark.realdata
def test_real_frames_dense_cars_from_clicks(tmp_path):
    """Leave one frame out: the other shared KITTI frames are fully boxed; every car with >= 50
    LiDAR points gets a click box at BEV IoU >= 0.7."""
    root = shared_path("kitti", "training")
    ids = ["000000", "000001", "000003", "000004"]
    scenes = {i: pcweak.load_scene(f"kitti:{root}/{i}") for i in ids}
    dense = 0
    for i, s in scenes.items():
        geo = learn_box_geometry([(scenes[j], weak.boxes(scenes[j], axis_aligned=False)) for j in ids if j != i])
        p = click_boxes(s, weak.clicks(s, seed=0), geo)
        ious = _dense_car_ious(s, p)
        dense += len(ious)
        assert (ious >= 0.7).all(), (i, ious)
    assert dense == 2


def test_a_weak_file_of_another_frame_is_refused_by_name(frames, tmp_path, capsys):
    weak.clicks(frames[1]).save(tmp_path / "w.npz")
    assert main(["label", "synthetic-lidar:0", "--weak", str(tmp_path / "w.npz"), "--method", "click-boxes",
                 "-o", str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err
    assert "num_points" in err and "Traceback" not in err


def test_ground_heights_are_computed_once_per_cell(monkeypatch):
    """Each 0.5 m cell's ground is ``local_ground`` at the cell's centre, asked of the scan once:
    a second query over the same cells computes nothing and answers the same."""
    from pcweak.pseudo import object_boxes
    from pcweak.pseudo.box_fit import local_ground
    rng = np.random.default_rng(0)
    xy = rng.uniform(-10, 10, (20_000, 2))
    coord = np.c_[xy, 0.3 + rng.normal(0, 0.02, len(xy))]  # flat ground at 0.3 m, 2 cm noise
    asked = []
    monkeypatch.setattr(object_boxes, "local_ground", lambda c, q, r, tree=None: asked.append(len(q)) or local_ground(c, q, r, tree=tree))
    ground = object_boxes.GroundHeights(coord, radius=3.0, cell=0.5)
    query = coord[rng.choice(len(coord), 500, replace=False)]
    first = ground(query)
    cells = np.unique(np.floor(query[:, :2] / 0.5), axis=0)
    assert asked == [len(cells)]
    centre = (np.floor(query[:, :2] / 0.5) + 0.5) * 0.5
    np.testing.assert_array_equal(first, local_ground(coord, np.c_[centre, np.zeros(len(query))], 3.0))
    np.testing.assert_array_equal(ground(query[::-1]), first[::-1])
    assert asked == [len(cells)]  # nothing asked again
    more = ground(coord[:50] + [0.25, 0.0, 0.0])  # partly new cells: only those are asked
    assert len(asked) == 2 and 0 < asked[1] < 50 and np.isfinite(more).all()
    assert 0.25 < float(np.median(first)) < 0.3  # the 5 % quantile: about 1.6 sigma under the ground


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a, b], 1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("max_pairs", [1, 300, 5000, 10**9])
def test_radius_components_in_blocks_are_the_radius_graphs_components(max_pairs):
    """Blocks of at most ``max_pairs`` pairs (down to one point each) give the same components
    as every pair at once: chains that run from block to block, dense blobs, lone points."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree
    from pcweak.geometry import radius_components
    rng = np.random.default_rng(0)
    blobs = [rng.normal(c, 0.15, (150, 3)) for c in rng.uniform(-3, 3, (6, 3))]
    chain = np.linspace([-4, -4, 0], [4, 4, 0], 60)  # spacing 0.19 m: one component through the blobs it meets
    lone = rng.uniform(-8, 8, (40, 3)) + 10
    coord = rng.permutation(np.concatenate(blobs + [chain, lone]))
    pairs = cKDTree(coord).query_pairs(0.2, output_type="ndarray")
    m = len(coord)
    truth = connected_components(coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m)), directed=False)[1]
    got = radius_components(coord, 0.2, max_pairs=max_pairs)
    assert got.dtype == np.int64 and got.shape == (m,)
    assert 10 < len(np.unique(truth)) < m and _same_partition(got, truth)
    assert len(radius_components(coord[:1], 0.2)) == 1 and len(radius_components(coord[:0], 0.2)) == 0

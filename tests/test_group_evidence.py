"""Class-agnostic 3D proposals as the walk's grouping: the simulator, the edge moves, the files
and ``pcweak label --groups``."""
import json
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from pcweak import weak
from pcweak.cli import main
from pcweak.errors import ReaderError, SceneError
from pcweak.pseudo.group_evidence import GroupingConfig, check_groups, grouped_affinities
from pcweak.pseudo.group_sources import read_groups
from pcweak.pseudo.propagate import propagate
from pcweak.scene import PseudoLabels
from pcweak.weak.proposals import proposals


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` group the points alike (ids aside), -1 in the same places."""
    if not np.array_equal(a < 0, b < 0):
        return False
    pairs = np.unique(np.stack([a[a >= 0], b[b >= 0]], 1), axis=0)
    return len(pairs) == len(np.unique(pairs[:, 0])) == len(np.unique(pairs[:, 1]))


def test_simulated_proposals_are_the_instances_with_a_segmenters_mistakes(room):
    clean = proposals(room, seed=0, merge_prob=0, split_prob=0, drop_prob=0)
    assert _same_partition(clean, room.instance)
    assert not np.array_equal(clean, np.unique(room.instance, return_inverse=True)[1] - (room.instance < 0).any())  # ids shuffled
    n = len(np.unique(room.instance[room.instance >= 0]))
    merged = proposals(room, seed=0, merge_prob=1, split_prob=0, drop_prob=0)
    assert 1 <= len(np.unique(merged[merged >= 0])) < n // 2 and (merged[room.instance >= 0] >= 0).all()
    split = proposals(room, seed=0, merge_prob=0, split_prob=1, drop_prob=0)
    assert len(np.unique(split[split >= 0])) == 2 * n
    assert (proposals(room, seed=0, merge_prob=0, split_prob=0, drop_prob=1) == -1).all()
    noisy = proposals(room, seed=3)
    assert np.array_equal(noisy, proposals(room, seed=3)) and not np.array_equal(noisy, proposals(room, seed=4))
    with pytest.raises(ValueError, match="merge_prob"):
        proposals(room, merge_prob=1.5)


def test_proposals_join_edges_inside_and_cut_edges_across():
    """Nodes 0,1 in proposal 7, node 2 in proposal 8, node 3 in none, node 4 in none: the edge
    inside a proposal becomes w^(1 - link), one across two proposals or out of one w exp(-cut),
    one between nodes of no proposal keeps w."""
    node = np.repeat(np.arange(5), 4)
    groups = np.repeat([7, 7, 8, -1, -1], 4)
    groups[3] = -1  # one point of node 0 in none: the node's majority still proposal 7
    a, b = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4])
    w = np.array([0.5, 0.4, 0.3, 0.2])
    W = sp.csr_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(5, 5))
    cfg = GroupingConfig(link=0.5, cut=2.0)
    out = grouped_affinities(W, groups, node, 5, cfg).toarray()
    assert out[0, 1] == pytest.approx(0.5 ** 0.5) and out[1, 0] == out[0, 1]
    assert out[1, 2] == pytest.approx(0.4 * np.exp(-2)) and out[2, 3] == pytest.approx(0.3 * np.exp(-2))
    assert out[3, 4] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="grouping.link"):
        GroupingConfig(link=1.5)


def test_clean_proposals_lift_the_walk_and_noisy_ones_do_not_sink_it(room):
    """200 labelled points on the bare room: the instances as proposals raise the walk's mIoU
    (0.877 -> 0.988 at the defaults), and proposals that merge or split one object in five and
    miss one in ten keep most of that (0.979; ``pcweak bench proposals`` has the figures over
    scans and rooms)."""
    from pcweak.metrics import semantic_report
    s = replace(room, segment=None)
    w = weak.points(s, count=200, seed=0)
    scores = {}
    for name, g in (("alone", None), ("clean", proposals(s, seed=0, merge_prob=0, split_prob=0, drop_prob=0)),
                    ("noisy", proposals(s, seed=0))):
        p = propagate(s.coord, w.point_index, w.point_semantic, color=s.color, normal=s.normal, classes=s.classes, groups=g)
        scores[name] = semantic_report(s.semantic, p.semantic, s.classes)["miou"]
        if g is not None:
            assert json.loads(p.stats)["groups"] == len(np.unique(g[g >= 0]))
    assert scores["clean"] >= scores["alone"] + 0.05, scores
    assert scores["noisy"] >= scores["alone"] + 0.03, scores


def test_proposal_files_read_alike_and_bad_ones_are_named(tmp_path, room):
    g = proposals(room, seed=1)
    np.save(tmp_path / "g.npy", g)
    (tmp_path / "g.txt").write_text("\n".join(map(str, g)) + "\n")
    PseudoLabels(semantic=np.full(room.num_points, -1), instance=g, confidence=np.zeros(room.num_points, np.float32),
                 method="nearest").save(tmp_path / "g.npz")
    for sfx in ("npy", "txt", "npz"):
        assert np.array_equal(read_groups(tmp_path / f"g.{sfx}", room), g)
    np.save(tmp_path / "short.npy", g[:-1])
    with pytest.raises(ReaderError, match=rf"short.npy.*\({room.num_points},\)"):
        read_groups(tmp_path / "short.npy", room)
    np.save(tmp_path / "half.npy", g + 0.5)
    with pytest.raises(ReaderError, match="half.npy.*whole numbers"):
        read_groups(tmp_path / "half.npy", room)
    np.save(tmp_path / "low.npy", np.where(g < 0, -2, g))
    with pytest.raises(ReaderError, match="low.npy.*proposal id -2"):
        read_groups(tmp_path / "low.npy", room)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ReaderError, match="pickled"):
        read_groups(tmp_path / "objects.npy", room)
    (tmp_path / "words.txt").write_text("3\nchair\n")
    with pytest.raises(ReaderError, match="words.txt: line 2 is not a proposal id"):
        read_groups(tmp_path / "words.txt", room)
    (tmp_path / "g.csv").write_text("1\n")
    with pytest.raises(ReaderError, match=r"g.csv: expected a \.npy, \.txt, \.npz file"):
        read_groups(tmp_path / "g.csv", room)
    with pytest.raises(SceneError, match="proposal ids must be integers"):
        check_groups(np.array(["a"] * 3), 3)


def test_label_with_groups_resumes_and_redoes_when_the_proposals_change(tmp_path, room, capsys):
    """``pcweak label --groups``: the proposals join the output's fingerprint (a changed file is
    labelled again), its params name the file (``label`` with them makes the same labels), and
    every misuse is refused before a scene is read."""
    from pcweak.pseudo.registry import label
    room.save(tmp_path / "r.npz")
    w = weak.points(room, count=100, seed=0)
    w.save(tmp_path / "w.npz")
    g = proposals(room, seed=0)
    np.save(tmp_path / "g.npy", g)
    out = tmp_path / "p.npz"
    argv = ["label", str(tmp_path / "r.npz"), "--weak", str(tmp_path / "w.npz"), "--groups", str(tmp_path / "g.npy"),
            "--param", "refine.method=none", "-o", str(out)]
    assert main(argv) == 0
    p = PseudoLabels.load(out)
    assert json.loads(p.stats)["groups"] == len(np.unique(g[g >= 0]))
    again = label(room, w, "propagate", **json.loads(p.params))
    assert json.loads(p.params)["groups"] == str(tmp_path / "g.npy") and np.array_equal(again.semantic, p.semantic)
    capsys.readouterr()
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["skipped_existing"] == 1
    np.save(tmp_path / "g.npy", proposals(room, seed=1))
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["redone_other_inputs"] == 1
    base = ["label", str(tmp_path / "r.npz"), "--weak", str(tmp_path / "w.npz"), "-o", str(tmp_path / "q.npz")]
    for extra, message in (
            (["--method", "nearest", "--groups", str(tmp_path / "g.npy")], "--groups goes with --method propagate"),
            (["--groups", str(tmp_path / "g.npy"), "--voxel", "0.05"], "label without --voxel"),
            (["--groups", str(tmp_path / "g.npy"), "--param", f"groups={tmp_path / 'g.npy'}"], "give the proposals once"),
            (["--groups", str(tmp_path / "none.npy")], "none.npy: no such file or folder")):
        assert main(base + extra) == 2
        assert message in capsys.readouterr().err
    scenes, gfolder = tmp_path / "scenes", tmp_path / "groups"
    scenes.mkdir()
    gfolder.mkdir()
    for name in ("a", "b"):
        room.save(scenes / f"{name}.npz")
    np.save(gfolder / "a.npy", proposals(room, seed=0))
    wf = tmp_path / "wf"
    wf.mkdir()
    for name in ("a", "b"):
        w.save(wf / f"{name}.npz")
    assert main(["label", str(scenes), "--weak", str(wf), "--groups", str(gfolder), "-o", str(tmp_path / "out")]) == 2
    assert "1 of the 2 scenes have no proposal file" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert main(["label", str(scenes), "--weak", str(wf), "--groups", str(gfolder / "a.npy"), "-o", str(tmp_path / "out")]) == 2
    assert "one proposal file for 2 scenes" in capsys.readouterr().err

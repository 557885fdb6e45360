import json

import numpy as np
import pytest

from pcweak import SceneError, weak
from pcweak.cli import main
from pcweak.evaluation import evaluate
from pcweak.pseudo.gp_boxes import fit_predict_pairs, gp_box_labels, nested, smallest_box_labels
from pcweak.scene import PseudoLabels, Scene


def _two_blobs(overlap: float):
    """Two touching boxes of points whose boxes overlap by ``overlap`` m; colours differ."""
    rng = np.random.default_rng(0)
    a = rng.uniform([0, 0, 0], [1, 1, 1], (600, 3))
    b = rng.uniform([1, 0, 0], [2, 1, 1], (600, 3))
    coord = np.concatenate([a, b]).astype(np.float32)
    color = np.concatenate([np.tile([0.9, 0.1, 0.1], (600, 1)), np.tile([0.1, 0.1, 0.9], (600, 1))]).astype(np.float32)
    seg = np.floor(coord[:, 0] / 0.1).astype(np.int64) * 100 + np.floor(coord[:, 1] / 0.25).astype(np.int64) * 10 + np.floor(coord[:, 2] / 0.25).astype(np.int64)
    s = Scene(name="blobs", coord=coord, color=color, segment=seg, classes=("x", "y"),
              semantic=np.repeat([0, 1], 600), instance=np.repeat([0, 1], 600))
    boxes = np.array([[0.5 + overlap / 2, 0.5, 0.5, 1 + overlap, 1, 1, 0], [1.5 - overlap / 2, 0.5, 0.5, 1 + overlap, 1, 1, 0]])
    return s, boxes, np.array([0, 1])


def test_overlap_resolved_by_gp_and_uncertainty_kept():
    s, boxes, lab = _two_blobs(0.25)
    p = gp_box_labels(s, boxes, lab, seed=0)
    acc = (p.instance == s.instance).mean()
    assert acc > 0.97
    decided = ~np.isnan(p.extras["gp_mean"])
    assert decided.sum() > 0 and np.isfinite(p.extras["gp_var"][decided]).all()
    assert (p.confidence[decided] >= 0.5).all() and (p.confidence[~decided] == 1).all()
    info = json.loads(p.params)
    assert info["pairs"] == 1 and info["gp_superpoints"] > 0
    # the baseline gives the shared region to one box only
    q = smallest_box_labels(s, boxes, lab)
    assert (p.instance == s.instance).mean() >= (q.instance == s.instance).mean()


def test_batched_equals_loop_and_batch_shapes():
    import torch
    g = torch.Generator().manual_seed(0)
    tx = torch.randn(3, 40, 4, generator=g)
    ty = (tx[..., 0] > 0).float()
    qx = torch.randn(3, 7, 4, generator=g)
    mu, var = fit_predict_pairs(tx, ty, qx, iterations=60)
    assert mu.shape == (3, 7) and var.shape == (3, 7) and (var > 0).all()
    # the classifier follows the first feature
    assert ((mu > 0) == (qx[..., 0] > 0)).float().mean() > 0.8


def test_nested_boxes_give_the_shared_region_to_the_inner_box():
    b = np.array([[0, 0, 0, 2, 2, 2, 0], [0.2, 0, 0, 0.5, 0.5, 0.5, 0.3], [0, 0, 0, 2, 2, 2, 0]])
    n = nested(b)
    assert n[1, 0] and not n[0, 1] and n[0, 2] and n[2, 0]
    rng = np.random.default_rng(1)
    coord = rng.uniform(-1, 1, (2000, 3)).astype(np.float32)
    s = Scene(name="n", coord=coord, segment=np.arange(2000), classes=("big", "small"))
    p = gp_box_labels(s, b[:2], [0, 1])
    inner = (np.abs(coord[:, :2] - [0.2, 0]) < 0.2).all(1) & (np.abs(coord[:, 2]) < 0.2)
    assert (p.instance[inner] == 1).all() and (p.semantic[inner] == 1).all()
    assert (p.instance[~inner & (np.abs(coord) < 0.9).all(1) & (np.linalg.norm(coord[:, :2] - [0.2, 0], axis=1) > 0.5)] == 0).all()


def test_real_or_synthetic_room_quality(room):
    w = weak.boxes(room)
    p = gp_box_labels(room, w.box, w.box_semantic)
    ev = evaluate(room, p)["instance"]
    assert ev["mean_best_iou"] > 0.75 and ev["ap50"] > 0.8
    assert p.box.shape == w.box.shape and (p.box_semantic == w.box_semantic).all()


def test_errors_and_cli(tmp_path, room, capsys):
    with pytest.raises(SceneError, match=r"2 boxes but 1 box labels"):
        gp_box_labels(room, np.ones((2, 7)), [0])
    with pytest.raises(SceneError, match=r"positive sizes"):
        gp_box_labels(room, np.zeros((1, 7)), [0])
    room.save(tmp_path / "r.npz")
    weak.boxes(room).save(tmp_path / "b.npz")
    weak.points(room, count=10).save(tmp_path / "p.npz")
    for method in ("gp-boxes", "smallest-box"):
        assert main(["label", f"npz:{tmp_path / 'r.npz'}", "--weak", str(tmp_path / "b.npz"), "--method", method,
                     "-o", str(tmp_path / f"{method}.npz"), "--param", "iterations=50"]) == 0
        p = PseudoLabels.load(tmp_path / f"{method}.npz")
        assert p.method == method and "gp_mean" in p.extras and len(p.extras["gp_var"]) == room.num_points
    capsys.readouterr()
    assert main(["label", f"npz:{tmp_path / 'r.npz'}", "--weak", str(tmp_path / "p.npz"), "--method", "gp-boxes", "-o", str(tmp_path / "x.npz")]) == 2
    assert "the weak labels have no 3D boxes" in capsys.readouterr().err

import json

import numpy as np
import pytest
from scipy.special import ndtr

from pcweak import SceneError, weak
from pcweak.cli import main
from pcweak.metrics.evaluate import evaluate
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
    info = json.loads(p.stats)
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


def test_probit_likelihood_matches_gpytorch_bernoulli():
    """The fused log_ndtr ELBO term agrees with gpytorch's BernoulliLikelihood (whose own
    log Phi approximation is off by up to ~5e-4 nats) and with an 80-node reference, and 10 nodes
    stay within 1e-3 nats of it, also for confident, far-from-zero latents."""
    import gpytorch
    import torch
    from pcweak.pseudo.gp_boxes import _PairGP
    g = torch.Generator().manual_seed(0)
    mean = torch.cat([torch.randn(2, 50, generator=g) * 3, torch.full((2, 3), 9.0), torch.full((2, 3), -9.0)], 1)
    var = torch.rand(2, 56, generator=g) * 2 + 0.01
    dist = gpytorch.distributions.MultivariateNormal(mean, torch.diag_embed(var))
    y = (torch.rand(2, 56, generator=g) > 0.5).float()
    fine = _PairGP.likelihood(80).expected_log_prob(y, dist)
    assert (_PairGP.likelihood(20).expected_log_prob(y, dist) - fine).abs().max() < 1e-4
    assert (_PairGP.likelihood().expected_log_prob(y, dist) - fine).abs().max() < 1e-3
    ref = gpytorch.likelihoods.BernoulliLikelihood().expected_log_prob(y, dist)
    assert (ref - fine).abs().max() < 1e-3
    # and its gradient drives the fit as gpytorch's does
    m = mean.clone().requires_grad_(True)
    d = gpytorch.distributions.MultivariateNormal(m, torch.diag_embed(var))
    g1, = torch.autograd.grad(_PairGP.likelihood(20).expected_log_prob(y, d).sum(), m)
    g2, = torch.autograd.grad(gpytorch.likelihoods.BernoulliLikelihood().expected_log_prob(y, d).sum(), m)
    assert torch.allclose(g1, g2, atol=2e-3, rtol=1e-3)


def test_many_scenes_in_parallel_equal_one_at_a_time():
    from pcweak.pseudo.gp_boxes import gp_box_labels_many
    items = [_two_blobs(o) for o in (0.25, 0.15)]
    # this process runs torch's thread pool before the workers start
    one = [gp_box_labels(s, b, lab, seed=0, iterations=60) for s, b, lab in items]
    many = gp_box_labels_many(items, workers=2, seed=0, iterations=60)
    for p, q in zip(many, one):
        assert json.loads(p.stats)["pairs"] == 1
        assert np.array_equal(p.instance, q.instance)
        # workers run fewer torch threads: float sums in another order (0.01 of |mu| ~ 3 seen)
        assert np.allclose(p.extras["gp_mean"], q.extras["gp_mean"], atol=0.05, equal_nan=True)


def test_fixed_prior_mean_decides_only_far_from_the_data():
    import torch
    g = torch.Generator().manual_seed(0)
    tx = torch.randn(2, 40, 3, generator=g)
    ty = (tx[..., 0] > 0).float()
    qx = torch.cat([torch.full((2, 1, 3), 30.0), tx[:, :5]], 1)  # one far query, then training inputs
    prior = torch.tensor([3.0, -2.0])
    mu, _ = fit_predict_pairs(tx, ty, qx, iterations=80, prior_mean=prior)
    assert torch.allclose(mu[:, 0], prior, atol=1e-3)
    assert ((mu[:, 1:] > 0) == (qx[:, 1:, 0] > 0)).all()  # the labels win where there are data
    free, _ = fit_predict_pairs(tx, ty, qx, iterations=80)
    assert free[:, 0].abs().max() < 1.0


def _two_boxes_sharing_a_slab(colour: bool, cell_y: float) -> tuple[Scene, np.ndarray]:
    """A small box (400 points) and a large one (1,200) that share a slab of 80 points (the last
    ones); with ``colour`` the slab's colour matches neither side. Superpoints: grid cells 0.1 m
    along x, ``cell_y`` along y, 0.5 m along z."""
    rng = np.random.default_rng(0)
    a = rng.uniform([0, 0, 0], [1, 1, 1], (400, 3))
    b = rng.uniform([1.2, 0, 0], [4, 1, 1], (1200, 3))
    mid = rng.uniform([1.0, 0, 0], [1.2, 1, 1], (80, 3))
    coord = np.concatenate([a, b, mid]).astype(np.float32)
    color = np.concatenate([np.tile([0.9, 0.1, 0.1], (400, 1)), np.tile([0.1, 0.1, 0.9], (1200, 1)),
                            np.tile([0.1, 0.9, 0.1], (80, 1))]).astype(np.float32)
    seg = np.floor(coord[:, 0] / 0.1).astype(np.int64) * 100 + np.floor(coord[:, 1] / cell_y).astype(np.int64) * 10 + np.floor(coord[:, 2] / 0.5).astype(np.int64)
    s = Scene(name="slab", coord=coord, color=color if colour else None, segment=seg, classes=("small", "big"))
    return s, np.array([[0.6, 0.5, 0.5, 1.2, 1, 1, 0], [2.5, 0.5, 0.5, 3.0, 1, 1, 0]])


def test_volume_prior_favours_the_smaller_box_where_features_are_silent():
    # two boxes share a slab of points whose features match neither side's training points
    s, boxes = _two_boxes_sharing_a_slab(colour=True, cell_y=0.5)
    slab = slice(1600, 1680)
    p = gp_box_labels(s, boxes, [0, 1], seed=0, structure=False, volume_prior=4.0)
    assert json.loads(p.stats)["pairs"] == 1
    assert (p.instance[slab] == 0).mean() > 0.9  # the smaller box, as the prior says
    q = gp_box_labels(s, boxes, [0, 1], seed=0, structure=False, volume_prior=0.0)
    assert np.nanmean(p.extras["gp_mean"][slab]) > np.nanmean(q.extras["gp_mean"][slab]) + 1.0


def test_an_unsure_gp_decision_goes_to_the_smaller_box():
    # the slab without colour and a free prior: the GP decides its superpoints with mixed confidence
    s, boxes = _two_boxes_sharing_a_slab(colour=False, cell_y=0.25)
    seg = s.segment
    kw = dict(seed=0, structure=False, volume_prior=0.0, iterations=60)
    free = gp_box_labels(s, boxes, [0, 1], min_confidence=0.5, **kw)
    decided = np.isfinite(free.extras["gp_mean"])
    p = ndtr(free.extras["gp_mean"] / np.sqrt(1 + free.extras["gp_var"]))
    # a threshold half-way between two of the decided confidences, so that the float32 copy in
    # extras and the pipeline's float64 values fall on the same side of it
    vals = np.unique(np.maximum(p, 1 - p)[decided])
    tau = float(vals[len(vals) // 2 - 1:len(vals) // 2 + 1].mean())
    unsure = decided & (np.maximum(p, 1 - p) < tau)
    assert unsure.any() and (decided & ~unsure).any() and (free.instance[unsure] == 1).any()
    q = gp_box_labels(s, boxes, [0, 1], min_confidence=tau, **kw)
    assert (q.instance[unsure] == 0).all() and np.allclose(q.confidence[unsure], 0.5)
    np.testing.assert_array_equal(q.instance[~unsure], free.instance[~unsure])
    assert json.loads(q.stats)["gp_unsure_superpoints"] == len(np.unique(seg[unsure]))
    from pcweak.pseudo.registry import check_params
    with pytest.raises(ValueError, match=r"gp-boxes: min_confidence must be a probability in \[0.5, 1\], got 0.3"):
        check_params("gp-boxes", {"min_confidence": 0.3})

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
    with pytest.raises(SceneError, match=r"boxes must be an \(M,7\) array .* got shape \(2, 6\)"):
        gp_box_labels(room, np.ones((2, 6)), [0, 0])  # reshaped to (M,7) it used to be misread silently
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
    assert "--method gp-boxes: the weak labels have no box; gp-boxes needs box, box_semantic" in capsys.readouterr().err


def _wall_corner_scene():
    """Floor (z=0) and wall (x=0) planes, a cabinet (a 0.5 m cube) standing against the wall,
    a door flush with the wall; normals exact, one superpoint per 10 cm cell and surface."""
    rng = np.random.default_rng(3)
    floor = np.c_[rng.uniform(0, 4, (6000, 2)), np.zeros(6000)]
    wall = np.c_[np.zeros(5000), rng.uniform(0, 4, 5000), rng.uniform(0, 2.5, 5000)]
    # cabinet against the wall: front face at x=0.5, top at z=0.5, y in [1, 1.5]
    front = np.c_[np.full(800, 0.5), rng.uniform(1, 1.5, 800), rng.uniform(0, 0.5, 800)]
    top = np.c_[rng.uniform(0, 0.5, 800), rng.uniform(1, 1.5, 800), np.full(800, 0.5)]
    door = np.c_[np.full(800, 0.01), rng.uniform(2.5, 3.3, 800), rng.uniform(0, 2.0, 800)]
    keep = ~((wall[:, 1] > 2.5) & (wall[:, 1] < 3.3) & (wall[:, 2] < 2.0))  # the door replaces the wall there
    wall = wall[keep]
    parts = [floor, wall, front, top, door]
    normals = [(0, 0, 1), (1, 0, 0), (1, 0, 0), (0, 0, 1), (1, 0, 0)]
    coord = np.concatenate(parts).astype(np.float32)
    normal = np.concatenate([np.tile(n, (len(p), 1)) for p, n in zip(parts, normals)]).astype(np.float32)
    part = np.repeat(np.arange(5), [len(p) for p in parts])
    cell = np.floor(coord / 0.1).astype(np.int64)
    seg = np.unique(np.c_[part, cell], axis=0, return_inverse=True)[1].ravel()
    inst = np.array([-1, -1, 0, 0, 1])[part]
    s = Scene(name="corner", coord=coord, normal=normal, segment=seg, classes=("cabinet", "door"),
              semantic=np.where(inst >= 0, inst, -1), instance=inst)
    boxes = np.array([[0.25, 1.25, 0.25, 0.5, 0.5, 0.5, 0], [0.01, 2.9, 1.0, 0.04, 0.8, 2.0, 0]])
    return s, boxes, part


def test_wall_and_floor_inside_boxes_go_to_no_box():
    from pcweak.segment.structure import structure_in_boxes
    s, boxes, part = _wall_corner_scene()
    flagged = structure_in_boxes(s.coord, s.normal, boxes)
    in_cab = (np.abs(s.coord - boxes[0, :3]) <= 0.27).all(1)
    # the slabs of wall and floor inside the cabinet's box are structure, the cabinet is not
    assert flagged[in_cab & (part <= 1)].mean() > 0.95
    assert not flagged[part >= 2].any()  # cabinet faces and the door flush with the wall keep their points
    p = gp_box_labels(s, boxes, [0, 1])
    assert (p.instance[part <= 1] == -1).mean() > 0.99
    assert (p.instance[part == 4] == 1).all() and (p.instance[(part == 2) | (part == 3)] == 0).mean() > 0.99
    q = gp_box_labels(s, boxes, [0, 1], structure=False)  # without it the box takes the wall and floor
    assert (q.instance[in_cab & (part <= 1)] == 0).mean() > 0.8
    m = np.zeros(s.num_points, bool)
    assert (gp_box_labels(s, boxes, [0, 1], structure=m).instance == q.instance).all()
    with pytest.raises(SceneError, match="structure mask has 3 entries"):
        gp_box_labels(s, boxes, [0, 1], structure=np.zeros(3, bool))


def test_superpoint_oracle_is_the_bound_of_superpoint_labels(room):
    from pcweak.bench.oracles import superpoint_oracle
    # the synthetic room's own segments never cross instances: the bound is perfect
    own = evaluate(room, superpoint_oracle(room, room.segment))["instance"]
    assert own["mean_best_iou"] == pytest.approx(1.0)
    # coarse 1 m cells merge objects with their surroundings: a lower bound
    cells = np.unique(np.floor(room.coord / 1.0).astype(np.int64), axis=0, return_inverse=True)[1].ravel()
    oracle = superpoint_oracle(room, cells)
    assert evaluate(room, oracle)["instance"]["mean_best_iou"] < 0.9
    # every cell carries one label: its majority GT instance
    for c in np.unique(cells)[:50]:
        m = cells == c
        assert len(np.unique(oracle.instance[m])) == 1
        gt = np.where(room.semantic[m] >= 0, room.instance[m], -1)
        vals, cnt = np.unique(gt, return_counts=True)
        assert oracle.instance[m][0] == vals[cnt.argmax()]
    with pytest.raises(SceneError, match="segment has 3 entries"):
        superpoint_oracle(room, np.zeros(3, int))


def test_box_oracle_gives_what_only_the_boxes_can_tell():
    from pcweak.classes import SCANNET20
    from pcweak.bench.oracles import box_oracle
    rng = np.random.default_rng(0)

    def cube(lo, hi, k):
        return rng.uniform(lo, hi, (k, 3))
    wall = np.c_[np.zeros(300), rng.uniform(0, 2, 300), rng.uniform(0, 2, 300)]  # x = 0, inside the cabinet's box
    cabinet = cube([0.05, 0.2, 0.0], [0.6, 1.0, 1.0], 400)
    vase = cube([0.2, 0.4, 0.5], [0.4, 0.6, 0.8], 100)  # an object with no box, inside the cabinet's box
    chair = cube([1.5, 0.0, 0.0], [2.0, 0.5, 0.8], 300)
    coord = np.concatenate([wall, cabinet, vase, chair]).astype(np.float32)
    cls = {c: SCANNET20.index(c) for c in ("wall", "cabinet", "chair")}
    sem = np.r_[np.full(300, cls["wall"]), np.full(400, cls["cabinet"]), np.full(100, -1), np.full(300, cls["chair"])]
    inst = np.r_[np.full(300, 0), np.full(400, 1), np.full(100, 2), np.full(300, 3)]
    s = Scene(name="oracle", coord=coord, classes=SCANNET20, semantic=sem, instance=inst)
    boxes = np.array([[0.3, 0.6, 0.5, 0.62, 0.82, 1.02, 0.0], [1.75, 0.25, 0.4, 0.52, 0.52, 0.82, 0.0]])
    p = box_oracle(s, np.arange(s.num_points), boxes, [cls["cabinet"], cls["chair"]], margin=0.0)
    assert (p.instance[300:700] == 0).all() and (p.instance[800:] == 1).all()
    assert (p.instance[700:800] == 0).all()  # the vase: nothing in the boxes tells it from the cabinet
    assert (p.instance[:300] == -1).all() and (p.semantic[:300] == -1).all()  # wall: no box, even inside one
    assert (p.semantic[300:800] == cls["cabinet"]).all()
    # superpoints: each takes its majority target; one straddling cabinet and chair goes whole to the cabinet ...
    seg = np.arange(s.num_points)
    seg[300:700] = 300
    seg[800:810] = 300
    q = box_oracle(s, seg, boxes, [cls["cabinet"], cls["chair"]], margin=0.0)
    # ... but a box keeps only the points inside it: the chair's ten points go to no box
    assert (q.instance[300:700] == 0).all() and (q.instance[800:810] == -1).all() and (q.instance[810:] == 1).all()
    with pytest.raises(SceneError, match="segment has 3 entries"):
        box_oracle(s, np.zeros(3, int), boxes, [0, 1])


def _room_with_table():
    """A 4 x 4 x 2.5 m room (floor, ceiling, one wall at x = 0) and a table whose top (0.75 m) no
    box covers and whose legs a box does; normals exact."""
    rng = np.random.default_rng(1)
    floor = np.c_[rng.uniform(0, 4, (800, 2)), np.zeros(800)]
    ceiling = np.c_[rng.uniform(0, 4, (800, 2)), np.full(800, 2.5)]
    wall = np.c_[np.zeros(600), rng.uniform(0, 4, 600), rng.uniform(0, 2.5, 600)]
    top = np.c_[rng.uniform(2, 3, (200, 2)), np.full(200, 0.75)]
    chair = np.c_[rng.uniform(1, 1.5, (200, 2)), rng.uniform(0.05, 0.9, 200)]
    coord = np.concatenate([floor, ceiling, wall, top, chair]).astype(np.float32)
    normal = np.concatenate([np.tile([0, 0, 1.0], (800, 1)), np.tile([0, 0, -1.0], (800, 1)), np.tile([1.0, 0, 0], (600, 1)),
                             np.tile([0, 0, 1.0], (200, 1)), np.tile([0, 1.0, 0], (200, 1))]).astype(np.float32)
    parts = np.repeat(np.arange(5), [800, 800, 600, 200, 200])
    return coord, normal, parts


def test_surface_classes_name_floor_wall_ceiling_by_geometry():
    from pcweak.classes import KITTI_CLASSES, S3DIS13, SCANNET20
    from pcweak.segment.structure import surface_classes
    coord, normal, parts = _room_with_table()
    s3 = surface_classes(coord, normal, S3DIS13)
    want = {0: "floor", 1: "ceiling", 2: "wall"}
    for part, name in want.items():
        assert (s3[parts == part] == S3DIS13.index(name)).all(), name
    assert (s3[parts == 3] == -1).all()  # a table top at neither level is no surface
    sn = surface_classes(coord, normal, SCANNET20)
    assert (sn[parts == 0] == SCANNET20.index("floor")).all() and (sn[parts == 2] == SCANNET20.index("wall")).all()
    assert (sn[parts == 1] == -1).all()  # ScanNet-20 has no ceiling
    assert (surface_classes(coord, normal, KITTI_CLASSES) == KITTI_CLASSES.index("background")).all()
    assert (surface_classes(coord, normal, ("x", "y")) == -1).all()


def test_box_labels_give_the_room_surfaces_outside_the_boxes():
    from pcweak.classes import SCANNET20
    coord, normal, parts = _room_with_table()
    keep = parts != 1  # a ScanNet-like scan: no ceiling
    coord, normal, parts = coord[keep], normal[keep], parts[keep]
    chair = SCANNET20.index("chair")
    truth = np.select([parts == 0, parts == 2, parts == 4], [1, 0, chair], -1)
    s = Scene(name="room", coord=coord, normal=normal, classes=SCANNET20, semantic=truth,
              instance=np.where(parts == 4, 0, -1), segment=np.arange(len(coord)))
    box = np.array([[1.25, 1.25, 0.475, 0.52, 0.52, 0.87, 0.0]])
    p = gp_box_labels(s, box, [chair], iterations=5)
    assert (p.semantic[parts == 4] == chair).all() and (p.instance[parts == 4] == 0).all()
    assert (p.semantic[parts == 0] == 1).all() and (p.semantic[parts == 2] == 0).all()
    assert (p.instance[parts != 4] == -1).all() and (p.confidence[parts != 3] == 1).all()
    assert (p.semantic[parts == 3] == -1).all() and (p.confidence[parts == 3] == 0).all()
    assert json.loads(p.stats)["surface_points"] == int(((parts == 0) | (parts == 2)).sum())
    q = gp_box_labels(s, box, [chair], iterations=5, stuff=False)
    assert (q.semantic[parts != 4] == -1).all() and (q.semantic[parts == 4] == chair).all()
    r = gp_box_labels(s, box, [chair], iterations=5, background_label=0)
    assert (r.semantic[parts != 4] == 0).all()


def test_fine_superpoints_keep_their_smallest_area_on_a_sparser_cloud(room):
    """``gp_box_labels``' own superpoints: FH's ``min_size`` 10 holds at 3 cm spacing; on a sixth
    of the room's points (about 3.8 cm apart) it shrinks by (3 cm / spacing)^2, and the labeller
    partitions with it (its node count equals FH's at the scaled size); the full room (1.8 cm)
    keeps 10."""
    from dataclasses import replace
    from pcweak.pseudo.gp_boxes import FINE_SUPERPOINTS, fine_superpoint_params
    from pcweak.segment.superpoints import estimate_normals, felzenszwalb, point_spacing
    assert fine_superpoint_params(room.coord) == FINE_SUPERPOINTS
    keep = np.arange(0, room.num_points, 6)
    s = Scene(name="sparse", coord=room.coord[keep], color=room.color[keep], classes=room.classes,
              semantic=room.semantic[keep], instance=room.instance[keep])
    s = replace(s, normal=estimate_normals(s.coord))
    params = fine_superpoint_params(s.coord)
    assert params["min_size"] == round(10 * (0.03 / point_spacing(s.coord)) ** 2) < 10 and params["c"] == FINE_SUPERPOINTS["c"]
    w = weak.boxes(s)
    p = gp_box_labels(s, w.box, w.box_semantic, iterations=20)
    nodes = len(np.unique(felzenszwalb(s.coord, s.normal, s.color, **params)))
    assert json.loads(p.stats)["superpoints"] == nodes > len(np.unique(felzenszwalb(s.coord, s.normal, s.color, **FINE_SUPERPOINTS)))

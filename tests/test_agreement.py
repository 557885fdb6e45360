"""Self-training on LiDAR frames: a detection replaces a pseudo box only where it agrees with the
pseudo box's weak label (click held, cluster covered, image box matched)."""
import numpy as np
import pytest

from pcweak.geometry import box_corners, image_box_overlap, projected_hull
from pcweak.pseudo.agreement import WeakAnchors, agreement, projected_boxes, replace_agreeing

CAR = np.array([[10.0, 2.0, -0.9, 4.0, 1.7, 1.5, 0.3], [20.0, -5.0, -0.9, 4.2, 1.8, 1.5, -1.0]])


def _proj() -> np.ndarray:
    K = np.array([[700.0, 0, 600], [0, 700, 180], [0, 0, 1]])
    to_cam = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0]])  # LiDAR x forward -> camera z
    return K @ to_cam


@pytest.mark.parametrize("kind", ["clicks", "clusters", "boxes2d"])
def test_a_detection_replaces_only_the_box_whose_weak_label_it_agrees_with(kind):
    rng = np.random.default_rng(0)
    good = CAR.copy()
    pseudo = good + np.array([0.6, -0.4, 0.1, -0.5, 0.2, 0.0, 0.25])  # poor pseudo boxes
    cls = np.array([0, 0])
    if kind == "clicks":
        anchors = WeakAnchors("clicks", clicks=good[:, :3])
    elif kind == "clusters":
        local = [(rng.random((40, 3)) - 0.5) * 0.8 * b[3:6] for b in good]  # inside each box, then turned by its yaw
        rot = [np.array([[np.cos(b[6]), -np.sin(b[6]), 0], [np.sin(b[6]), np.cos(b[6]), 0], [0, 0, 1]]) for b in good]
        anchors = WeakAnchors("clusters", clusters=[b[:3] + p @ R.T for b, p, R in zip(good, local, rot)])
    else:
        P = _proj()
        anchors = WeakAnchors("boxes2d", box2d=projected_boxes(good, P), proj=P)
    far = good + np.array([6.0, 6.0, 0, 0, 0, 0, 0])
    det = np.concatenate([good[:1], far[1:]])  # box 0 found, box 1 missed (a detection far from it)
    boxes, conf, replaced = replace_agreeing(pseudo, cls, [0.4, 0.4], anchors, det, [0, 0], [0.8, 0.9])
    assert replaced.tolist() == [True, False]
    assert np.allclose(boxes[0], good[0]) and np.allclose(boxes[1], pseudo[1]) and conf.tolist() == [0.8, 0.4]
    # the wrong class or a low score never agrees
    assert not agreement(anchors, cls, good, [1, 1], [0.9, 0.9]).any()
    assert not agreement(anchors, cls, good, [0, 0], [0.2, 0.2], min_score=0.3).any()
    assert agreement(anchors, cls, good, [0, 0], [0.9, 0.9]).diagonal().all()
    # a detection scoring below the pseudo box's confidence leaves it as it is
    assert not replace_agreeing(pseudo, cls, [0.95, 0.95], anchors, good, [0, 0], [0.9, 0.9])[2].any()


def test_the_best_scoring_agreeing_detection_wins_and_serves_one_box():
    anchors = WeakAnchors("clicks", clicks=CAR[:1, :3])
    worse = CAR[:1] + np.array([0.3, 0, 0, 0, 0, 0, 0])
    boxes, conf, replaced = replace_agreeing(CAR[:1] + 1.5, [0], [0.2], anchors, np.concatenate([worse, CAR[:1]]), [0, 0], [0.5, 0.7])
    assert replaced.all() and np.allclose(boxes[0], CAR[0]) and conf[0] == 0.7
    # two clicks inside one detection: it replaces one pseudo box, not both
    two = WeakAnchors("clicks", clicks=np.array([CAR[0, :3], CAR[0, :3] + [0.5, 0, 0]]))
    _, _, replaced = replace_agreeing(CAR[[0, 0]] + 2.0, [0, 0], [0.3, 0.3], two, CAR[:1], [0], [0.9])
    assert replaced.sum() == 1


def test_image_box_overlap_iou_and_share_of_the_first():
    a = np.array([[0.0, 0, 10, 10]])
    b = np.array([[5.0, 0, 15, 10], [10.0, 0, 20, 10], [0, 0, 10, 10]])  # half over, edge only, same
    assert np.allclose(image_box_overlap(a, b), [[50 / 150, 0.0, 1.0]])
    assert np.allclose(image_box_overlap(a, b, of_first=True), [[0.5, 0.0, 1.0]])
    assert image_box_overlap(a, np.zeros((0, 4))).shape == (1, 0)


def test_projected_boxes_are_the_corner_hull_in_the_image():
    P = _proj()
    b = projected_boxes(CAR, P)
    c = box_corners(CAR)[0]
    uvw = np.c_[c, np.ones(8)] @ P.T
    uv = uvw[:, :2] / uvw[:, 2:]
    assert np.allclose(b[0], np.r_[uv.min(0), uv.max(0)]) and (b[:, 2:] > b[:, :2]).all()
    with pytest.raises(ValueError, match="boxes2d anchors need"):
        WeakAnchors("boxes2d", box2d=b)


def test_projected_hull_keeps_corners_in_front_and_clips_to_the_image():
    P = _proj()
    straddling = np.array([[0.5, 0.0, 0.0, 3.0, 4.0, 1.0, 0.0]])  # LiDAR x from -1 to 2: partly behind the camera
    behind = np.array([[-5.0, 0.0, 0.0, 2.0, 1.0, 1.0, 0.0]])
    corners = box_corners(np.r_[straddling, behind])
    free = projected_hull(corners, P)
    front = corners[0][corners[0][:, 0] > 0.1]  # LiDAR x is the camera's depth here
    uvw = np.c_[front, np.ones(len(front))] @ P.T
    uv = uvw[:, :2] / uvw[:, 2:]
    assert np.allclose(free[0], np.r_[uv.min(0), uv.max(0)])
    assert (free[1] == -1).all() and image_box_overlap(free[1:], free).max() == 0  # wholly behind: overlaps nothing
    clipped = projected_hull(corners, P, image_size=(360, 1200))
    assert np.allclose(clipped[0], np.r_[np.clip(uv.min(0), 0, [1199, 359]), np.clip(uv.max(0), 0, [1199, 359])])
    assert clipped[0, 0] == 0 and clipped[0, 2] == 1199  # 4 m wide at 2 m depth: wider than the view


def test_refine_replaces_the_pseudo_boxes_of_weak_frames_that_detections_agree_with(lidar_cache):
    """Detections equal to the GT boxes raise the targets' quality, detections far from every
    object change nothing; boxed frames are never refined. (The rounds' schedule inside a fit is
    checked by the bench detect test.)"""
    from pcweak.train.lidar_datamodule import LidarDataModule, target_quality
    dm = LidarDataModule(synthetic_train=2, synthetic_val=1, weak_mode="clicks", box_fraction=0.5, cache_dir=str(lidar_cache))
    dm.prepare_data()
    dm.setup()
    ds = dm.train_dataset()
    (i,) = ds.weak_frames()
    scene, t, _, _ = ds.entry(i)
    before = target_quality(scene, t)
    keep = scene.box_labels >= 0
    gt, gt_cls = scene.boxes[keep].astype(np.float64), scene.box_labels[keep]
    far = gt + np.array([0, 30.0, 0, 0, 0, 0, 0])
    assert ds.refine(i, far, gt_cls, np.ones(len(gt)))[0] == 0
    n, held = ds.refine(i, gt, gt_cls, np.ones(len(gt)))
    assert held == len(t["reg_boxes"])
    after = target_quality(scene, ds.entry(i)[1])
    open_boxes = int((np.asarray(t["reg_weight"]) < 1).sum())  # (a box fitted to hundreds of points has confidence 1)
    assert open_boxes >= 2 and n >= 0.6 * open_boxes and after["mean_iou_bev"] > before["mean_iou_bev"]
    (j,) = set(range(2)) - {i}
    assert ds.refine(j, far, gt_cls, np.ones(len(gt)))[0] == 0 and ds.entry(j)[3] is None

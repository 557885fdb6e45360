import numpy as np
import pytest

import pcweak
from pcweak.metrics.kitti import KittiFrame, box_iou, frame_from_scene, kitti_ap

from .conftest import shared_path


def test_rotated_iou_known_values():
    a = np.array([0, 0, 0, 2, 2, 2, 0.0])
    assert box_iou(a, a)[0, 0] == pytest.approx(1.0)
    assert box_iou(a, a + [10, 0, 0, 0, 0, 0, 0])[0, 0] == 0.0
    b = a + [1, 0, 0, 0, 0, 0, 0]  # half overlap: 2 / (4 + 4 - 2)
    assert box_iou(a, b)[0, 0] == pytest.approx(1 / 3)
    c = np.array([0, 0, 0, 2, 2, 2, np.pi / 4])  # square vs the same square turned 45 deg
    inter = 4 * (np.sqrt(2) - 1) * 2  # regular octagon of the two squares
    assert box_iou(a, c)[0, 0] == pytest.approx(inter / (8 - inter), rel=1e-6)
    assert box_iou(a, np.array([0, 0, 0, 2, 2, 2, np.pi / 2]))[0, 0] == pytest.approx(1.0)
    d = a + [0, 0, 1, 0, 0, 0, 0]  # same footprint, half the height overlapping
    assert box_iou(a, d, "bev")[0, 0] == pytest.approx(1.0) and box_iou(a, d, "3d")[0, 0] == pytest.approx(1 / 3)


def _frame(dets, scores, types=None, gt_types=("Car", "Car")):
    gt = np.array([[10, 0, 0, 4, 2, 1.5, 0.1], [20, 5, 0, 4, 2, 1.5, -0.3]])[: len(gt_types)]
    n = len(gt_types)
    return KittiFrame(gt_box=gt, gt_type=list(gt_types), gt_bbox2d=np.tile([0, 0, 50, 60.0], (n, 1)),
                      gt_occluded=np.zeros(n), gt_truncated=np.zeros(n), det_box=np.asarray(dets).reshape(-1, 7),
                      det_type=types or ["Car"] * len(dets), det_score=np.asarray(scores, float))


def test_ap_hand_built_cases():
    gt = np.array([[10, 0, 0, 4, 2, 1.5, 0.1], [20, 5, 0, 4, 2, 1.5, -0.3]])
    r = kitti_ap([_frame(gt, [0.9, 0.8])])
    assert r["bev"]["Car"]["moderate"]["R40"] == pytest.approx(100) and r["3d"]["Car"]["easy"]["R11"] == pytest.approx(100)
    assert np.isnan(r["bev"]["Pedestrian"]["easy"]["R40"])
    # a false positive scored above both true positives: precision 1/2 then 2/3 at recall 0.5 and 1
    fp = np.array([50, 50, 0, 4, 2, 1.5, 0])
    r = kitti_ap([_frame(np.vstack([fp, gt]), [0.95, 0.9, 0.8])])
    assert r["bev"]["Car"]["easy"]["R40"] == pytest.approx(100 * 2 / 3)
    # one of two found: recall 0.5, precision 1 -> R40 = 20/40, R11 = 6/11 (r = 0, .1 .. .5)
    r = kitti_ap([_frame(gt[:1], [0.9])])
    assert r["bev"]["Car"]["easy"]["R40"] == pytest.approx(50) and r["bev"]["Car"]["easy"]["R11"] == pytest.approx(100 * 6 / 11)
    # a detection on a Van is ignored, not a false positive
    r = kitti_ap([_frame(gt, [0.9, 0.8], gt_types=("Car", "Van"))])
    assert r["bev"]["Car"]["easy"]["R40"] == pytest.approx(100)
    # IoU 0.5 < 0.7 for cars: a shifted box is a miss for Car
    r = kitti_ap([_frame(gt[:1] + [1.3, 0, 0, 0, 0, 0, 0], [0.9], gt_types=("Car",))])
    assert r["bev"]["Car"]["easy"]["R40"] == 0.0


@pytest.mark.realdata
def test_real_frames_gt_as_predictions_give_100():
    root = shared_path("kitti", "training")
    frames = []
    for fid in ("000000", "000001", "000003", "000004"):
        s = pcweak.load_scene(f"kitti:{root}/{fid}")
        f = frame_from_scene(s)
        f.det_box, f.det_type, f.det_score, f.det_bbox2d = s.boxes, list(f.gt_type), np.linspace(1, 0.5, len(s.boxes)), f.gt_bbox2d
        frames.append(f)
    r = kitti_ap(frames)
    for mode in ("bev", "3d"):
        for cls in ("Car", "Pedestrian", "Cyclist"):
            for diff, v in r[mode][cls].items():
                if not np.isnan(v["R40"]):
                    assert v["R40"] == pytest.approx(100) and v["R11"] == pytest.approx(100), (mode, cls, diff)
    assert not np.isnan(r["bev"]["Car"]["hard"]["R40"])

import numpy as np
import pytest

from pcweak.metrics import expected_calibration_error, from_labels, instance_ap, semantic_report

CLS = ("a", "b", "c")


def test_semantic_known_answer():
    gt = np.array([0, 0, 0, 0, 1, 1, 2, 2, -1, -1])
    pred = np.array([0, 0, 1, -1, 1, 1, 2, 0, 2, -1])
    r = semantic_report(gt, pred, CLS)
    # a: TP 2, FN 2 (one wrong, one unlabelled), FP 1 (gt c predicted a) -> 2/5
    # b: TP 2, FP 1 -> 2/3 ; c: TP 1, FN 1 -> 1/2 ; gt -1 points are ignored
    assert r["per_class_iou"] == {"a": 0.4, "b": round(2 / 3, 4), "c": 0.5}
    assert r["miou"] == pytest.approx((0.4 + 2 / 3 + 0.5) / 3)
    assert r["coverage"] == pytest.approx(7 / 8)
    assert r["accuracy_labelled"] == pytest.approx(5 / 7)
    assert r["accuracy_all"] == pytest.approx(5 / 8)


def test_ece_known_answer():
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0.0
    # all at 0.9 confidence, half right -> |0.5 - 0.9| = 0.4
    assert expected_calibration_error(np.full(4, 0.9), np.array([1, 0, 1, 0], bool)) == pytest.approx(0.4)


def _scene(gt_inst, pred_inst, gt_sem=None, pred_sem=None, score=None):
    gt_inst, pred_inst = np.array(gt_inst), np.array(pred_inst)
    gt_sem = np.zeros_like(gt_inst) if gt_sem is None else np.array(gt_sem)
    pred_sem = np.zeros_like(pred_inst) if pred_sem is None else np.array(pred_sem)
    return from_labels(gt_sem, gt_inst, pred_sem, pred_inst, score)


def test_instance_ap_perfect_and_missed():
    inst = [0] * 10 + [1] * 10 + [2] * 10
    r = instance_ap([_scene(inst, inst)], ("obj",), min_region_size=1)
    assert r["ap"] == pytest.approx(1.0) and r["ap50"] == pytest.approx(1.0) and r["mean_best_iou"] == pytest.approx(1.0)
    # one of three objects missed: recall 2/3 at precision 1
    pred = [0] * 10 + [1] * 10 + [-1] * 10
    r = instance_ap([_scene(inst, pred)], ("obj",), min_region_size=1)
    assert r["ap50"] == pytest.approx(2 / 3)


def test_instance_ap_thresholds():
    # prediction covers 4 of 10 GT points plus 2 others: IoU = 4/12 = 0.33 -> counts at 0.25 only
    gt = [0] * 10 + [-1] * 2
    pred = [0] * 4 + [-1] * 6 + [0] * 2
    r = instance_ap([_scene(gt, pred)], ("obj",), min_region_size=1)
    assert r["ap25"] == pytest.approx(1.0) and r["ap50"] == 0.0 and r["ap"] == 0.0
    # a false positive ranked above the true positive lowers AP50 below 1
    gt = [0] * 10 + [-1] * 10
    pred = [0] * 10 + [1] * 10
    score = np.array([0.5] * 10 + [0.9] * 10)
    r = instance_ap([_scene(gt, pred, score=score)], ("obj",), min_region_size=1)
    assert 0 < r["ap50"] < 1
    # wrong class never matches; ignored classes do not count
    r = instance_ap([_scene([0] * 10, [0] * 10, gt_sem=[0] * 10, pred_sem=[1] * 10)], ("x", "y"), min_region_size=1)
    assert r["per_class"]["x"]["ap50"] == 0.0
    r = instance_ap([_scene([0] * 10, [0] * 10)], ("wall",), ignore=("wall",), min_region_size=1)
    assert np.isnan(r["ap"])


def test_min_region_size_drops_small_predictions():
    gt = [0] * 5
    r = instance_ap([_scene(gt, gt)], ("obj",), min_region_size=10)
    assert r["ap50"] == 0.0

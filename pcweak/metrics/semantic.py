"""Semantic segmentation metrics over ground-truth-labelled points.

IoU follows ScanNet's ``evaluate_semantic_label.py`` (``get_iou``): only points whose ground truth
is an evaluated class count; a prediction outside the classes (pcweak: -1, no label) is wrong
for its point's class and a false positive for none; a class predicted on labelled points but
absent from the ground truth scores IoU 0, and a class neither present nor predicted is left
out (NaN). Confusions add up over scenes before the division, as the script does.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C+1) int64 counts over points with ``gt >= 0``; column C counts unlabelled
    predictions (pred == -1), which are wrong for every class."""
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"gt has {gt.shape} labels but pred has {pred.shape}")
    m = gt >= 0
    p = np.where(pred[m] < 0, num_classes, pred[m])
    return np.bincount(gt[m] * (num_classes + 1) + p, minlength=num_classes * (num_classes + 1)).reshape(num_classes, num_classes + 1)


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """(C,) IoU = TP / (TP + FP + FN) from a ``confusion`` matrix; 0 for a class predicted but
    absent from the ground truth, NaN for a class neither present nor predicted."""
    c = cm.shape[0]
    tp = np.diag(cm[:, :c]).astype(np.float64)
    gt_count = cm.sum(1)
    pred_count = cm[:, :c].sum(0)
    denom = gt_count + pred_count - tp
    return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)


def semantic_report(gt: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict:
    """mIoU and per-class IoU over all GT-labelled points (unlabelled predictions count as
    wrong), accuracy on the points that have a prediction, and coverage."""
    return report_from_confusion(confusion(gt, pred, len(classes)), classes)


def report_from_confusion(cm: np.ndarray, classes: Sequence[str]) -> dict:
    """``semantic_report``'s figures from a ``confusion`` matrix (C, C+1), e.g. one summed over
    scenes."""
    c = len(classes)
    iou = iou_from_confusion(cm)
    labelled = cm.sum()
    predicted = labelled - cm[:, c].sum()
    correct = np.trace(cm[:, :c])
    return {
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "per_class_iou": {classes[i]: round(float(iou[i]), 4) for i in range(c) if np.isfinite(iou[i])},
        "accuracy_all": float(correct / max(labelled, 1)),
        "accuracy_labelled": float(correct / max(predicted, 1)),
        "coverage": float(predicted / max(labelled, 1)),
        "points_evaluated": int(labelled),
    }

"""Quality of pseudo boxes against ground-truth boxes."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..geometry import box_iou

THRESHOLDS = (0.5, 0.7)


def _summary(iou3: np.ndarray, ioub: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"gt": int(len(iou3)), "mean_iou3d": float(iou3.mean()), "mean_iou_bev": float(ioub.mean())}
    for t in THRESHOLDS:
        out[f"recall_{t}"] = float((iou3 >= t).mean())
        out[f"recall_bev_{t}"] = float((ioub >= t).mean())
    return out


def best_match_ious(pred: np.ndarray, gt: np.ndarray, gt_class: np.ndarray | None = None,
                    pred_class: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(G,) best 3D and (G,) best bird's-eye-view IoU of each GT box (G,7) with the pseudo boxes
    (P,7), only those of its class when both class arrays are given; 0 where none matches."""
    gt = np.asarray(gt, np.float64).reshape(-1, 7)
    pred = np.asarray(pred, np.float64).reshape(-1, 7)
    if not len(gt) or not len(pred):
        return np.zeros(len(gt)), np.zeros(len(gt))
    iou3, ioub = box_iou(gt, pred, "3d"), box_iou(gt, pred, "bev")
    if gt_class is not None and pred_class is not None:
        same = np.asarray(gt_class)[:, None] == np.asarray(pred_class)[None, :]
        iou3, ioub = iou3 * same, ioub * same
    return iou3.max(1), ioub.max(1)


def box_quality(pred: np.ndarray, gt: np.ndarray, gt_class: np.ndarray | None = None, pred_class: np.ndarray | None = None,
                classes: tuple[str, ...] = ()) -> dict[str, Any]:
    """Pseudo boxes (P,7) vs GT boxes (G,7), ``[x,y,z,l,w,h,yaw]`` in metres: each GT box's best
    3D and bird's-eye-view IoU, their means, and recall at IoU 0.5 / 0.7 (``recall_T`` in 3D,
    ``recall_bev_T`` in BEV). With ``gt_class`` / ``pred_class`` (class ids into ``classes``) a
    GT box is matched only by pseudo boxes of its class, and ``per_class`` repeats the summary
    for each class."""
    gt = np.asarray(gt, np.float64).reshape(-1, 7)
    pred = np.asarray(pred, np.float64).reshape(-1, 7)
    if len(gt) == 0:
        return {"gt": 0, "pseudo": len(pred)}
    by_class = gt_class is not None and pred_class is not None
    best3, bestb = best_match_ious(pred, gt, gt_class, pred_class)
    out = {"pseudo": len(pred), **_summary(best3, bestb), "iou3d": [round(float(v), 4) for v in best3],
           "iou_bev": [round(float(v), 4) for v in bestb]}
    if by_class:
        gc = np.asarray(gt_class)
        out["per_class"] = {(classes[c] if 0 <= c < len(classes) else str(c)): _summary(best3[gc == c], bestb[gc == c])
                            for c in np.unique(gc)}
    return out

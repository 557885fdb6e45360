"""Quality of pseudo boxes against ground-truth boxes."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..geometry import box_iou


def box_quality(pred: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
    """Pseudo boxes vs GT boxes: best 3D / BEV IoU per GT and recall at 3D IoU 0.5 / 0.7."""
    gt = np.asarray(gt, np.float64).reshape(-1, 7)
    pred = np.asarray(pred, np.float64).reshape(-1, 7)
    if len(gt) == 0:
        return {"gt": 0}
    iou3 = box_iou(gt, pred, "3d").max(1) if len(pred) else np.zeros(len(gt))
    ioub = box_iou(gt, pred, "bev").max(1) if len(pred) else np.zeros(len(gt))
    return {"gt": len(gt), "pseudo": len(pred), "iou3d": [round(float(v), 4) for v in iou3],
            "iou_bev": [round(float(v), 4) for v in ioub], "mean_iou3d": float(iou3.mean()),
            "recall_0.5": float((iou3 >= 0.5).mean()), "recall_0.7": float((iou3 >= 0.7).mean())}

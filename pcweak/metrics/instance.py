"""ScanNet instance-segmentation AP (the benchmark's protocol, per class then averaged).

For each class and IoU threshold, predicted instances (sorted by score) are matched greedily
to unmatched ground-truth instances of the same class with IoU >= threshold; AP integrates
the precision/recall curve as ScanNet's ``evaluate_semantic_instance.py`` does. AP averages
thresholds 0.50:0.95 (step 0.05); AP50 and AP25 use 0.5 and 0.25. Predictions smaller than
``min_region_size`` points are dropped (ScanNet: 100).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

THRESHOLDS = np.append(np.arange(0.5, 0.95, 0.05), 0.25)


@dataclass
class SceneInstances:
    """One scene's instances: per point GT ``gt_semantic``/``gt_instance`` and predicted
    ``pred_instance`` (N,) int64 (-1 = none), with a class ``pred_class`` and ``pred_score``
    per predicted instance id (dicts id -> value)."""

    gt_semantic: np.ndarray
    gt_instance: np.ndarray
    pred_instance: np.ndarray
    pred_class: dict[int, int]
    pred_score: dict[int, float]


def from_labels(gt_semantic, gt_instance, pred_semantic, pred_instance, confidence=None) -> SceneInstances:
    """Build ``SceneInstances`` from per-point predictions: an instance's class is the majority
    predicted class of its points, its score the mean confidence (1 without confidences)."""
    pred_instance = np.asarray(pred_instance)
    cls, score = {}, {}
    conf = np.ones(len(pred_instance)) if confidence is None else np.asarray(confidence, np.float64)
    for k in np.unique(pred_instance[pred_instance >= 0]):
        m = pred_instance == k
        s = pred_semantic[m]
        s = s[s >= 0]
        if not len(s):
            continue
        cls[int(k)] = int(np.bincount(s).argmax())
        score[int(k)] = float(conf[m].mean())
    return SceneInstances(np.asarray(gt_semantic), np.asarray(gt_instance), pred_instance, cls, score)


def _ap(tp: np.ndarray, scores: np.ndarray, n_gt: int) -> float:
    """ScanNet's integration of the precision/recall curve."""
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(scores, kind="stable")
    y_true, y_score = tp[order], scores[order]
    cum = np.cumsum(y_true)
    uniq_scores, uniq_idx = np.unique(y_score, return_index=True)
    n_examples, n_true = len(y_score), cum[-1]
    hard_fn = n_gt - n_true
    precision = np.zeros(len(uniq_idx) + 1)
    recall = np.zeros(len(uniq_idx) + 1)
    cum = np.append(cum, 0)
    for i, idx in enumerate(uniq_idx):
        c = cum[idx - 1]
        t = n_true - c
        f = n_examples - idx - t
        precision[i] = t / max(t + f, 1)
        recall[i] = t / max(t + c + hard_fn, 1)
    precision[-1], recall[-1] = 1.0, 0.0
    r = np.concatenate([[recall[0]], recall, [0.0]])
    steps = np.convolve(r, [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, steps))


def instance_ap(scenes: Sequence[SceneInstances], classes: Sequence[str], ignore: Sequence[str] = (),
                min_region_size: int = 100) -> dict:
    """AP, AP50, AP25 averaged over the classes (except ``ignore``) that have GT instances,
    plus per-class values and the mean IoU of each GT instance with its best predicted mask."""
    valid = [c for c, n in enumerate(classes) if n not in ignore]
    per = {c: {t: ([], [], 0) for t in THRESHOLDS} for c in valid}  # tp flags, scores, n_gt
    best_ious = []
    for sc in scenes:
        gts = {}
        for k in np.unique(sc.gt_instance[sc.gt_instance >= 0]):
            m = sc.gt_instance == k
            s = sc.gt_semantic[m]
            s = s[s >= 0]
            if len(s):
                gts[int(k)] = (int(np.bincount(s).argmax()), m)
        preds = {k: (sc.pred_class[k], sc.pred_instance == k, sc.pred_score.get(k, 1.0))
                 for k in sc.pred_class if (sc.pred_instance == k).sum() >= min_region_size}
        # IoU table
        gk, pk = list(gts), list(preds)
        iou = np.zeros((len(gk), len(pk)))
        for i, g in enumerate(gk):
            gm = gts[g][1]
            for j, p in enumerate(pk):
                inter = np.count_nonzero(gm & preds[p][1])
                if inter:
                    iou[i, j] = inter / np.count_nonzero(gm | preds[p][1])
        for i, g in enumerate(gk):
            if gts[g][0] in valid:
                best_ious.append(float(iou[i].max()) if len(pk) else 0.0)
        for c in valid:
            gi = [i for i, g in enumerate(gk) if gts[g][0] == c]
            pj = [j for j, p in enumerate(pk) if preds[pk[j]][0] == c]
            pj.sort(key=lambda j: -preds[pk[j]][2])
            for t in THRESHOLDS:
                tps, scs, n = per[c][t]
                used = set()
                for j in pj:
                    cand = [(iou[i, j], i) for i in gi if i not in used and iou[i, j] >= t - 1e-12]
                    if cand:
                        used.add(max(cand)[1])
                        tps.append(1.0)
                    else:
                        tps.append(0.0)
                    scs.append(preds[pk[j]][2])
                per[c][t] = (tps, scs, n + len(gi))
    res: dict = {"per_class": {}}
    table = np.full((len(valid), len(THRESHOLDS)), np.nan)
    for a, c in enumerate(valid):
        for b, t in enumerate(THRESHOLDS):
            tps, scs, n = per[c][t]
            table[a, b] = _ap(np.array(tps), np.array(scs), n)
        if np.isfinite(table[a]).any():
            res["per_class"][classes[c]] = {"ap": round(float(np.nanmean(table[a, :-1])), 4),
                                            "ap50": round(float(table[a, 0]), 4), "ap25": round(float(table[a, -1]), 4)}
    has = np.isfinite(table[:, 0])
    res["ap"] = float(np.nanmean(table[has, :-1])) if has.any() else float("nan")
    res["ap50"] = float(np.nanmean(table[has, 0])) if has.any() else float("nan")
    res["ap25"] = float(np.nanmean(table[has, -1])) if has.any() else float("nan")
    res["mean_best_iou"] = float(np.mean(best_ious)) if best_ious else float("nan")
    return res

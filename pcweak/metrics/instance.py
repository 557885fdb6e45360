"""ScanNet instance-segmentation AP, by the rules of the benchmark's evaluator.

The rules below are those of ScanNet's ``BenchmarkScripts/3d_evaluation/evaluate_semantic_instance.py``
(function named in brackets); ``tests/test_metrics.py`` checks each one on a scene built by hand.

- Ground truth: an instance is a (class, instance id) pair of points whose class is one of the
  evaluated classes (``assign_instances_for_scan`` / ``util_3d.get_instances``). Every other point
  (stuff classes such as wall and floor, unannotated points, points without an instance id) is
  *void*.
- Predictions: a predicted instance of a class outside the evaluated ones is skipped; one with
  fewer than ``min_region_size`` points (ScanNet: 100) is skipped (``assign_instances_for_scan``).
  Predictions are taken in ascending id order, which stands in for the order of the lines of a
  submission file: the matching below is greedy in that order.
- Minimum GT size: ground-truth instances with fewer than ``min_region_size`` points are left
  out of the count, and a prediction that overlaps one of them by more than the threshold is
  neither a true nor a false positive (``evaluate_matches``, "filter groups in ground truth" and
  "small ground truth instances").
- Matching (``evaluate_matches``), per IoU threshold ``t`` (0.50:0.95 step 0.05, and 0.25):
  ground-truth instances in ascending id order take, among the predictions of their class that
  overlap them and are not yet taken, the first with IoU *strictly* above ``t``; a second
  prediction above ``t`` for an already-matched instance is a false positive with the lower of
  the two scores (the instance keeps the higher). An instance with no prediction above ``t`` is
  a miss.
- Void-ignore: a prediction matched to no instance is a false positive only when the share of its
  points that are void, or in instances too small to count, is at most ``t``
  (``proportion_ignore <= overlap_th``); otherwise it is ignored. Since pseudo-labels label every
  point, a pseudo-instance that spills onto walls or unannotated points is the normal case.
- AP integrates the precision/recall curve over unique scores as the script does; a class with
  ground truth and no prediction scores 0; one without ground truth is left out (NaN). AP
  averages the classes' APs at 0.50:0.95 (``compute_averages``: mean over every finite
  class x threshold entry), AP50 and AP25 the classes' APs at 0.5 and 0.25.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

THRESHOLDS = np.append(np.arange(0.5, 0.95, 0.05), 0.25)
MIN_REGION_SIZE = 100  # ScanNet's opt.min_region_sizes


@dataclass
class SceneInstances:
    """One scene's instances: per point GT ``gt_semantic``/``gt_instance`` and predicted
    ``pred_instance`` (N,) int64 (-1 = none), with a class ``pred_class`` and ``pred_score``
    per predicted instance id (dicts id -> value). Predicted masks that overlap (a benchmark
    submission's mask files) are given as ``pred_pairs`` instead: (point index, instance id)
    int64 arrays of equal length, a point once per mask holding it; ``pred_instance`` is then
    None."""

    gt_semantic: np.ndarray
    gt_instance: np.ndarray
    pred_instance: np.ndarray | None
    pred_class: dict[int, int]
    pred_score: dict[int, float]
    pred_pairs: tuple[np.ndarray, np.ndarray] | None = None

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(point index, instance id) of every point of every predicted instance."""
        if self.pred_pairs is not None:
            return np.asarray(self.pred_pairs[0], np.int64), np.asarray(self.pred_pairs[1], np.int64)
        inst = np.asarray(self.pred_instance, np.int64)
        points = np.flatnonzero(inst >= 0)
        return points, inst[points]


def from_labels(gt_semantic, gt_instance, pred_semantic, pred_instance, confidence=None) -> SceneInstances:
    """Build ``SceneInstances`` from per-point predictions: an instance's class is the majority
    predicted class of its points, its score the mean confidence (1 without confidences)."""
    cls, score = instance_classes(pred_semantic, pred_instance, confidence)
    return SceneInstances(np.asarray(gt_semantic), np.asarray(gt_instance), np.asarray(pred_instance), cls, score)


def label_file_instances(labels: Any) -> tuple[dict[int, int], dict[int, float]]:
    """Class and score of each instance of a label file (``PseudoLabels``): the ones its model
    gave where it holds them (``extras`` ``instance_class`` / ``instance_score``, one per
    instance id, as ``pcweak predict`` writes them), else ``instance_classes``'s rule, which
    only the instances without a given class are derived by."""
    inst = np.asarray(labels.instance)
    given_class, given_score = labels.extras.get("instance_class"), labels.extras.get("instance_score")
    given = np.zeros(0, np.int64)
    if given_class is not None and given_score is not None:
        ids = np.unique(inst[inst >= 0])
        given = ids[ids < min(len(given_class), len(given_score))]
    cls, score = instance_classes(labels.semantic, np.where(np.isin(inst, given), -1, inst), labels.confidence)
    for k in given.tolist():
        cls[k], score[k] = int(given_class[k]), float(given_score[k])
    return cls, score


def instance_classes(pred_semantic, pred_instance, confidence=None) -> tuple[dict[int, int], dict[int, float]]:
    """Class and score of each predicted instance id: the majority predicted class of its points
    (an instance none of whose points has a class is left out) and their mean confidence (1
    without confidences)."""
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
    return cls, score


def _ap(tp: np.ndarray, scores: np.ndarray, n_gt: int) -> float:
    """The evaluator's integration of the precision/recall curve: one point per unique score
    (everything scored at least that high), an artificial (recall 0, precision 1) end, and
    trapezoid-like step widths from the recall neighbours. ``tp`` flags the scored entries
    (matched instances and false positives); ``n_gt`` counts every counted instance, so the
    misses enter the recall."""
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(scores, kind="stable")
    y_true, y_score = tp[order], scores[order]
    cum = np.cumsum(y_true)
    _, uniq_idx = np.unique(y_score, return_index=True)
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


@dataclass
class MatchedInstances:
    """One scene's overlaps between ground-truth and predicted instances, computed once for every
    threshold (``match_instances``): what ``instance_ap`` needs of a scene, without its points.
    ``valid`` (the evaluated class ids) and ``min_region_size`` are those it was matched under."""

    gt_class: np.ndarray      # (G,) class of each GT instance, ascending (class, id)
    gt_size: np.ndarray       # (G,) points
    pred_class: np.ndarray    # (P,) class of each kept prediction, ascending id
    pred_size: np.ndarray     # (P,) points
    pred_score: np.ndarray    # (P,)
    pred_void: np.ndarray     # (P,) points on void
    inter: np.ndarray         # (G, P) shared points (zero across classes)
    iou: np.ndarray           # (G, P)
    valid: tuple[int, ...]
    min_region_size: int


def evaluated_classes(classes: Sequence[str], ignore: Sequence[str] = ()) -> tuple[int, ...]:
    """The ids of the classes AP is computed over: every class of ``classes`` not in ``ignore``."""
    return tuple(c for c, n in enumerate(classes) if n not in ignore)


def match_instances(sc: SceneInstances, classes: Sequence[str], ignore: Sequence[str] = (),
                    min_region_size: int = MIN_REGION_SIZE) -> MatchedInstances:
    """``sc``'s overlaps for ``instance_ap`` (same ``classes``, ``ignore``, ``min_region_size``).
    A caller scoring many scenes matches each as it is read and keeps only this, (G, P) tables,
    instead of every scene's per-point arrays."""
    valid = evaluated_classes(classes, ignore)
    sem, inst = np.asarray(sc.gt_semantic), np.asarray(sc.gt_instance)
    if sem.shape != inst.shape or (sc.pred_pairs is None and sem.shape != np.shape(sc.pred_instance)):
        raise ValueError(f"instance AP: gt_semantic {sem.shape}, gt_instance {inst.shape} and pred_instance "
                         f"{np.shape(sc.pred_instance)} must have one entry per point")
    thing = np.isin(sem, valid) & (inst >= 0)
    pairs = np.stack([sem[thing], inst[thing]], 1)
    keys, gt_of_thing = np.unique(pairs, axis=0, return_inverse=True) if len(pairs) else (np.zeros((0, 2), np.int64), np.zeros(0, np.int64))
    gt_index = np.full(len(sem), -1, np.int64)
    gt_index[thing] = gt_of_thing.ravel()
    G = len(keys)
    pred_ids = [k for k in sorted(sc.pred_class) if sc.pred_class[k] in valid]
    points, pred_of = sc.pairs()
    # each (point, instance) pair's position in pred_ids (ascending), -1 for no kept prediction
    ids = np.array(pred_ids, np.int64)
    if len(ids):
        pos = np.minimum(np.searchsorted(ids, pred_of), len(ids) - 1)
        p_index = np.where(ids[pos] == pred_of, pos, -1)
    else:
        p_index = np.full(len(points), -1, np.int64)
    sizes = np.bincount(p_index[p_index >= 0], minlength=len(pred_ids))
    keep = np.flatnonzero(sizes >= min_region_size)
    new = np.full(len(pred_ids) + 1, -1, np.int64)
    new[keep] = np.arange(len(keep))
    p_index = new[p_index]  # -1 stays -1 through new[-1]
    P = len(keep)
    g_of = gt_index[points]
    both = (g_of >= 0) & (p_index >= 0)
    inter = np.bincount(g_of[both] * P + p_index[both], minlength=G * P).reshape(G, P)
    pcls = np.array([sc.pred_class[pred_ids[j]] for j in keep], np.int64)
    inter[keys[:, 0][:, None] != pcls[None, :]] = 0  # a prediction is compared with GT of its class only
    void = p_index[g_of < 0]
    gt_size = np.bincount(gt_index[gt_index >= 0], minlength=G)
    iou = inter / np.maximum(gt_size[:, None] + sizes[keep][None, :] - inter, 1)
    return MatchedInstances(valid=valid, min_region_size=int(min_region_size), gt_class=keys[:, 0].astype(np.int64), gt_size=gt_size, iou=iou,
                    pred_class=pcls, pred_size=sizes[keep], pred_void=np.bincount(void[void >= 0], minlength=P),
                    pred_score=np.array([float(sc.pred_score.get(pred_ids[j], 1.0)) for j in keep]), inter=inter)


def _class_entries(m: MatchedInstances, c: int, t: float, min_region_size: int, visited: np.ndarray) -> tuple[list[float], list[float], int]:
    """True-positive flags and scores of class ``c`` in one scene at threshold ``t``, and the
    number of counted GT instances; ``visited`` marks predictions already taken (updated)."""
    gts = np.flatnonzero((m.gt_class == c) & (m.gt_size >= min_region_size))
    preds = np.flatnonzero(m.pred_class == c)
    iou = m.iou
    flags, scores = [], []
    for g in gts:
        best = None
        for p in np.flatnonzero(m.inter[g] > 0):
            if visited[p] or not iou[g, p] > t:
                continue
            if best is None:
                best = m.pred_score[p]
                visited[p] = True
            else:  # a second prediction for this instance: the lower score is a false positive
                flags.append(0.0)
                scores.append(min(best, m.pred_score[p]))
                best = max(best, m.pred_score[p])
        if best is not None:
            flags.append(1.0)
            scores.append(best)
    small = m.gt_size < min_region_size
    for p in preds:
        if (iou[:, p] > t).any():
            continue
        ignored = m.pred_void[p] + m.inter[small, p].sum()
        if ignored / m.pred_size[p] <= t:
            flags.append(0.0)
            scores.append(m.pred_score[p])
    return flags, scores, len(gts)


def instance_ap(scenes: Sequence[SceneInstances | MatchedInstances], classes: Sequence[str], ignore: Sequence[str] = (),
                min_region_size: int = MIN_REGION_SIZE) -> dict:
    """AP, AP50, AP25 over the classes except ``ignore`` (the module docstring gives the rules),
    per-class values, and the mean IoU of each counted GT instance with its best predicted mask.
    ``scenes``: each scene's instances, or their overlaps already matched (``match_instances``
    under the same classes, ``ignore`` and ``min_region_size``; ValueError otherwise)."""
    valid = evaluated_classes(classes, ignore)
    matched = [match_instances(sc, classes, ignore, min_region_size) if isinstance(sc, SceneInstances) else sc for sc in scenes]
    for m in matched:
        if m.valid != valid or m.min_region_size != min_region_size:
            raise ValueError(f"instance AP: a scene was matched over classes {list(m.valid)} with min_region_size "
                             f"{m.min_region_size}, but AP is asked over {list(valid)} with {min_region_size}")
    table = np.full((len(valid), len(THRESHOLDS)), np.nan)
    for b, t in enumerate(THRESHOLDS):
        visited = [np.zeros(len(m.pred_class), bool) for m in matched]
        for a, c in enumerate(valid):
            flags, scores, n_gt, has_pred = [], [], 0, False
            for m, vis in zip(matched, visited):
                f, s, n = _class_entries(m, c, float(t), min_region_size, vis)
                flags += f
                scores += s
                n_gt += n
                has_pred |= bool((m.pred_class == c).any())
            if n_gt:
                table[a, b] = _ap(np.array(flags), np.array(scores), n_gt) if has_pred else 0.0
    best_ious = []
    for m in matched:
        for g in np.flatnonzero(m.gt_size >= min_region_size):
            best_ious.append(float(m.iou[g].max()) if m.iou.shape[1] else 0.0)
    res: dict = {"per_class": {}}
    for a, c in enumerate(valid):
        if np.isfinite(table[a]).any():
            res["per_class"][classes[c]] = {"ap": round(float(np.mean(table[a, :-1])), 4),
                                            "ap50": round(float(table[a, 0]), 4), "ap25": round(float(table[a, -1]), 4)}
    has = np.isfinite(table[:, 0])
    res["ap"] = float(np.mean(table[has, :-1])) if has.any() else float("nan")
    res["ap50"] = float(np.mean(table[has, 0])) if has.any() else float("nan")
    res["ap25"] = float(np.mean(table[has, -1])) if has.any() else float("nan")
    res["mean_best_iou"] = float(np.mean(best_ious)) if best_ious else float("nan")
    res["min_region_size"] = int(min_region_size)
    return res

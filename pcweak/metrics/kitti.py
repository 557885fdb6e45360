"""KITTI 3D-detection AP (BEV and 3D; easy / moderate / hard; R40 and R11) on the CPU.

Rotated-box overlaps are exact convex-polygon clipping in numpy (no numba, numpy >= 2 works).
Protocol, as KITTI's devkit: a ground truth counts for a difficulty when its 2D box height,
occlusion and truncation pass that difficulty (min height 40/25/25 px, occlusion <= 0/1/2,
truncation <= 0.15/0.30/0.50); ground truths of the class that fail it, and of the neighbouring
classes (Van for Car, Person_sitting for Pedestrian), are ignored, as are detections matched to
them; detections inside DontCare regions and detections whose 2D box is lower than the minimum
height are ignored. Overlap thresholds Car 0.7, Pedestrian 0.5, Cyclist 0.5. Precision is
interpolated (max precision at recall >= r) and averaged over 40 recall positions 1/40..1 (R40)
or 11 positions 0..1 (R11). The PR curve is built over every detection score (the devkit samples
41 score thresholds; results agree to within sampling).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..classes import KITTI_OBJECT_CLASSES
from ..geometry import rot_z

OVERLAP = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5}
NEIGHBOUR = {"Car": ("Van",), "Pedestrian": ("Person_sitting",), "Cyclist": ()}
DIFFICULTY = {"easy": (40, 0, 0.15), "moderate": (25, 1, 0.30), "hard": (25, 2, 0.50)}


def bev_corners(box: np.ndarray) -> np.ndarray:
    """(4,2) counter-clockwise footprint of a box ``[cx,cy,cz,dx,dy,dz,yaw]``."""
    h = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float64) * box[3:5] / 2
    return h @ rot_z(box[6])[:2, :2].T + box[:2]


def _clip(poly: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: keep the part of ``poly`` left of the directed edge a->b."""
    if len(poly) == 0:
        return poly
    out = []
    side = (b[0] - a[0]) * (poly[:, 1] - a[1]) - (b[1] - a[1]) * (poly[:, 0] - a[0])
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        p, q, sp_, sq = poly[i], poly[j], side[i], side[j]
        if sp_ >= 0:
            out.append(p)
        if (sp_ >= 0) != (sq >= 0):
            t = sp_ / (sp_ - sq)
            out.append(p + t * (q - p))
    return np.array(out).reshape(-1, 2)


def polygon_area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def bev_intersection(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = bev_corners(a), bev_corners(b)
    poly = pa
    for i in range(4):
        poly = _clip(poly, pb[i], pb[(i + 1) % 4])
    return polygon_area(poly)


def box_iou(a: np.ndarray, b: np.ndarray, mode: str = "bev") -> np.ndarray:
    """(A,B) IoU of rotated boxes (M,7): ``bev`` footprint IoU or ``3d`` volume IoU."""
    a = np.asarray(a, np.float64).reshape(-1, 7)
    b = np.asarray(b, np.float64).reshape(-1, 7)
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            if np.linalg.norm(x[:2] - y[:2]) > 0.5 * (np.linalg.norm(x[3:5]) + np.linalg.norm(y[3:5])):
                continue
            inter = bev_intersection(x, y)
            if inter <= 0:
                continue
            if mode == "bev":
                union = x[3] * x[4] + y[3] * y[4] - inter
            else:
                zo = max(0.0, min(x[2] + x[5] / 2, y[2] + y[5] / 2) - max(x[2] - x[5] / 2, y[2] - y[5] / 2))
                inter = inter * zo
                union = x[3] * x[4] * x[5] + y[3] * y[4] * y[5] - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


@dataclass
class KittiFrame:
    """One frame's ground truth and detections (LiDAR-frame boxes ``[cx,cy,cz,l,w,h,yaw]``).

    ``gt_type`` names (incl. Van, Person_sitting, ...); ``gt_bbox2d`` (G,4) image boxes;
    ``gt_occluded`` (G,), ``gt_truncated`` (G,); ``dontcare`` (D,4) image regions;
    detections: ``det_box`` (K,7), ``det_type`` names, ``det_score`` (K,), ``det_bbox2d`` (K,4)
    (optional; without it the height filter and DontCare test are skipped for detections)."""

    gt_box: np.ndarray
    gt_type: list[str]
    gt_bbox2d: np.ndarray
    gt_occluded: np.ndarray
    gt_truncated: np.ndarray
    det_box: np.ndarray
    det_type: list[str]
    det_score: np.ndarray
    det_bbox2d: np.ndarray | None = None
    dontcare: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))


def _iou2d_inside(det: np.ndarray, region: np.ndarray) -> float:
    """Fraction of the detection's 2D box inside a DontCare region (devkit: > 0.5 ignores)."""
    ix = max(0.0, min(det[2], region[2]) - max(det[0], region[0]))
    iy = max(0.0, min(det[3], region[3]) - max(det[1], region[1]))
    area = max((det[2] - det[0]) * (det[3] - det[1]), 1e-9)
    return ix * iy / area


def _frame_stats(f: KittiFrame, cls: str, diff: str, mode: str) -> tuple[list[tuple[float, int]], int]:
    min_h, max_occ, max_trunc = DIFFICULTY[diff]
    gts = np.asarray(f.gt_box).reshape(-1, 7)
    gt_state = []  # 1 valid, -1 ignored, 0 not this class
    for k, t in enumerate(f.gt_type):
        h = f.gt_bbox2d[k, 3] - f.gt_bbox2d[k, 1]
        ok_diff = h >= min_h and f.gt_occluded[k] <= max_occ and f.gt_truncated[k] <= max_trunc
        if t == cls:
            gt_state.append(1 if ok_diff else -1)
        elif t in NEIGHBOUR[cls]:
            gt_state.append(-1)
        else:
            gt_state.append(0)
    gt_state = np.array(gt_state, np.int64)
    det_idx = [k for k, t in enumerate(f.det_type) if t == cls]
    dets = np.asarray(f.det_box).reshape(-1, 7)[det_idx]
    scores = np.asarray(f.det_score)[det_idx]
    ignore_det = np.zeros(len(det_idx), bool)
    if f.det_bbox2d is not None:
        b2 = np.asarray(f.det_bbox2d)[det_idx]
        for j, b in enumerate(b2):
            if b[3] - b[1] < min_h or any(_iou2d_inside(b, r) > 0.5 for r in f.dontcare):
                ignore_det[j] = True
    cand = np.flatnonzero(gt_state != 0)
    iou = box_iou(dets, gts[cand], mode) if len(dets) and len(cand) else np.zeros((len(dets), len(cand)))
    thr = OVERLAP[cls]
    used = np.zeros(len(cand), bool)
    out = []
    for j in np.argsort(-scores, kind="stable"):
        best, bi = thr, -1
        # prefer valid GTs, then ignored ones (a match to an ignored GT is not counted)
        for pref in (1, -1):
            for c in range(len(cand)):
                if not used[c] and gt_state[cand[c]] == pref and iou[j, c] >= best:
                    best, bi = iou[j, c], c
            if bi >= 0:
                break
        if bi >= 0:
            used[bi] = True
            if gt_state[cand[bi]] == 1:
                out.append((float(scores[j]), 1))
        elif not ignore_det[j]:
            out.append((float(scores[j]), 0))
    return out, int((gt_state == 1).sum())


def kitti_ap(frames: list[KittiFrame], classes: tuple[str, ...] = KITTI_OBJECT_CLASSES) -> dict:
    """{mode: {class: {difficulty: {"R40": AP, "R11": AP}}}} in percent, modes ``bev`` and ``3d``;
    NaN where a class has no ground truth at that difficulty."""
    res: dict = {}
    for mode in ("bev", "3d"):
        res[mode] = {}
        for cls in classes:
            res[mode][cls] = {}
            for diff in DIFFICULTY:
                dets, n_gt = [], 0
                for f in frames:
                    d, g = _frame_stats(f, cls, diff, mode)
                    dets += d
                    n_gt += g
                if n_gt == 0:
                    res[mode][cls][diff] = {"R40": float("nan"), "R11": float("nan")}
                    continue
                dets.sort(key=lambda x: -x[0])
                tp = np.cumsum([d[1] for d in dets]) if dets else np.zeros(0)
                fp = np.cumsum([1 - d[1] for d in dets]) if dets else np.zeros(0)
                recall = tp / n_gt if len(dets) else np.zeros(0)
                precision = tp / np.maximum(tp + fp, 1) if len(dets) else np.zeros(0)

                def interp(points: np.ndarray) -> float:
                    vals = [precision[recall >= r - 1e-12].max() if (recall >= r - 1e-12).any() else 0.0 for r in points]
                    return float(100 * np.mean(vals))
                res[mode][cls][diff] = {"R40": interp(np.linspace(1 / 40, 1, 40)), "R11": interp(np.linspace(0, 1, 11))}
    return res


def frame_from_scene(scene, det_box=None, det_type=None, det_score=None, det_bbox2d=None) -> KittiFrame:
    """A ``KittiFrame`` from a KITTI scene (its GT) and optional detections (default: none)."""
    ex = scene.extras
    return KittiFrame(gt_box=np.asarray(scene.boxes), gt_type=[str(t) for t in ex["box_type"]], gt_bbox2d=ex["box_bbox2d"],
                      gt_occluded=ex["box_occluded"], gt_truncated=ex["box_truncated"],
                      det_box=np.zeros((0, 7)) if det_box is None else np.asarray(det_box),
                      det_type=[] if det_type is None else list(det_type),
                      det_score=np.zeros(0) if det_score is None else np.asarray(det_score),
                      det_bbox2d=det_bbox2d, dontcare=ex.get("dontcare_bbox2d", np.zeros((0, 4))))

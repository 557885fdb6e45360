"""KITTI object-detection AP (2D, bird's-eye view, 3D; easy / moderate / hard; R11 and R40) and
AOS, by the rules of KITTI's C++ devkit ``evaluate_object_3d_offline.cpp``.

Inputs are camera-frame objects as in ``label_2`` and result files (``pcweak.kitti_objects``).
The rules, with the devkit function each mirrors (``tests/test_kitti_ap.py`` checks each one on
frames built by hand):

- Ground truth (``cleanData``): an object of the evaluated class counts when its 2D box is at
  least 40 / 25 / 25 px tall, occlusion <= 0 / 1 / 2 and truncation <= 0.15 / 0.30 / 0.50 (easy /
  moderate / hard); one that fails, and the neighbouring class (Van for Car, Person_sitting for
  Pedestrian), is *ignored*: a detection may take it without being a true or a false positive.
  Class names compare case-insensitively. Other classes play no part.
- Detections (``cleanData``): one whose 2D box height, truncated to whole pixels, is below the
  difficulty's minimum is *short*, whatever its class; otherwise one of another class plays no part.
- Matching (``computeStatistics``), per score threshold: ground-truth objects in file order each
  take, among the detections not yet taken and scored at or above the threshold, the one with the
  largest overlap above 0.7 (Car) / 0.5 (Pedestrian, Cyclist) (the same thresholds for 2D, BEV and
  3D); a short detection only when no other qualifies. A counted object taken by a regular
  detection is a true positive; taken by a short one, it is neither a hit nor a miss, though it
  stays in the number of objects; not taken, a miss. A regular detection left untaken is a false
  positive unless more than that threshold of its own area lies in a DontCare region (``criterion
  0``). DontCare regions carry no 3D box (their location is -1000), so they take away false
  positives in the 2D metric only.
- Recall sampling (``getThresholds``): the scores of the true positives (each object taking the
  highest-scored qualifying detection) are sorted; a score is kept as a threshold when its recall
  ``(i+1)/n`` is at least as close to the next of the 41 recall steps 0, 1/40, .., 1 as the
  following score's. Precision is evaluated at each kept threshold, into 41 slots (zero past the
  last), then made non-increasing from the right (``eval_class``). With fewer than 40 objects
  every true positive is a threshold of its own, so AP cannot reach 100 there: the devkit's own
  behaviour, kept.
- AP (the devkit's printout): R11 = sum of the slots 0, 4, .., 40 / 11; R40 = sum of slots 1..40 / 40;
  in percent. AOS (2D only, when no detection has alpha = -10) does the same with the summed
  orientation similarity ``(1 + cos(alpha_gt - alpha_det)) / 2`` of the true positives over
  ``tp + fp``.
- A class with no counted object at a difficulty gives NaN (the devkit would print 0).
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..classes import KITTI_OBJECT_CLASSES, KITTI_OBJECT_TYPES
from ..errors import ReaderError
from ..geometry import convex_intersection, image_box_overlap, polygon_area
from ..kitti_objects import KittiObjects, read_objects
from ..textio import read_text

MIN_OVERLAP = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5}
NEIGHBOUR = {"car": "van", "pedestrian": "person_sitting"}
DIFFICULTY = {"easy": (40, 0, 0.15), "moderate": (25, 1, 0.30), "hard": (25, 2, 0.50)}
METRICS = ("2d", "bev", "3d")
N_SAMPLE_PTS = 41


# ---------------------------------------------------------------- overlaps
def footprint(loc: np.ndarray, hwl: np.ndarray, ry: float) -> np.ndarray:
    """(4,2) bird's-eye corners (camera x, z) of a box, counter-clockwise."""
    h, w, l = hwl
    c, s = math.cos(ry), math.sin(ry)
    x = np.array([l, l, -l, -l]) / 2
    z = np.array([w, -w, -w, w]) / 2
    pts = np.stack([c * x + s * z + loc[0], -s * x + c * z + loc[2]], 1)
    area2 = np.dot(pts[:, 0], np.roll(pts[:, 1], -1)) - np.dot(pts[:, 1], np.roll(pts[:, 0], -1))
    return pts if area2 >= 0 else pts[::-1]


def overlap(det: KittiObjects, ref: KittiObjects, metric: str, criterion: int = -1) -> np.ndarray:
    """(D, R) overlaps of detections with reference objects (ground truth or DontCare regions):
    ``criterion`` -1 IoU, 0 share of the detection's area (``imageBoxOverlap``,
    ``groundBoxOverlap``, ``box3DOverlap``)."""
    out = np.zeros((len(det), len(ref)))
    if not len(det) or not len(ref):
        return out
    if metric == "2d":
        return image_box_overlap(det.bbox, ref.bbox, of_first=criterion != -1)
    fd = [footprint(det.loc[i], det.hwl[i], det.ry[i]) for i in range(len(det))]
    fr = [footprint(ref.loc[j], ref.hwl[j], ref.ry[j]) for j in range(len(ref))]
    rd = [0.5 * math.hypot(*det.hwl[i, 1:]) for i in range(len(det))]
    rr = [0.5 * math.hypot(*ref.hwl[j, 1:]) for j in range(len(ref))]
    area_d, area_r = [polygon_area(f) for f in fd], [polygon_area(f) for f in fr]
    for i in range(len(det)):
        for j in range(len(ref)):
            if math.hypot(det.loc[i, 0] - ref.loc[j, 0], det.loc[i, 2] - ref.loc[j, 2]) > rd[i] + rr[j]:
                continue
            inter = convex_intersection(fd[i], fr[j])
            if inter <= 0:
                continue
            ad, ar = area_d[i], area_r[j]
            if metric == "bev":
                o = inter / (ad + ar - inter) if criterion == -1 else inter / ad
            else:
                dh, rh = det.hwl[i, 0], ref.hwl[j, 0]
                dy, ry_ = det.loc[i, 1], ref.loc[j, 1]
                inter *= max(0.0, min(dy, ry_) - max(dy - dh, ry_ - rh))
                vd, vr = dh * det.hwl[i, 1] * det.hwl[i, 2], rh * ref.hwl[j, 1] * ref.hwl[j, 2]
                denom = vd + vr - inter if criterion == -1 else vd
                o = inter / denom if denom else 0.0
            out[i, j] = o
    return out


# ---------------------------------------------------------------- the devkit's counting
class _Frame:
    """One frame for one class and difficulty: what ``cleanData`` decides, with the overlaps."""

    def __init__(self, gt: KittiObjects, det: KittiObjects, cls: str, diff: str, ov: np.ndarray, ov_dc: np.ndarray,
                 dc: np.ndarray, min_overlap: float) -> None:
        min_h, max_occ, max_trunc = DIFFICULTY[diff]
        c = cls.lower()
        self.ignored_gt = np.full(len(gt), -1, np.int64)
        for i, t in enumerate(gt.type):
            t = t.lower()
            height = gt.bbox[i, 3] - gt.bbox[i, 1]
            bad = gt.occluded[i] > max_occ or gt.truncated[i] > max_trunc or height < min_h
            if t == c and not bad:
                self.ignored_gt[i] = 0
            elif t == c or NEIGHBOUR.get(c) == t:
                self.ignored_gt[i] = 1
        self.n_gt = int((self.ignored_gt == 0).sum())
        heights = np.trunc(np.abs(det.bbox[:, 1] - det.bbox[:, 3]))  # the devkit's int32_t
        self.ignored_det = np.where(heights < min_h, 1, np.where(np.char.lower(det.type.astype(str)) == c, 0, -1)).astype(np.int64)
        self.score = det.score
        self.alpha_det, self.alpha_gt = det.alpha, gt.alpha
        self.relevant = np.flatnonzero(self.ignored_det != -1)
        # candidates per ground truth: relevant detections above the overlap threshold, in order
        self.cand = [[(int(j), float(ov[j, i])) for j in self.relevant if ov[j, i] > min_overlap] if self.ignored_gt[i] != -1 else []
                     for i in range(len(gt))]
        self.dc_hit = [np.flatnonzero(ov_dc[:, k] > min_overlap) for k in range(len(dc))]

    def stats(self, compute_fp: bool, thresh: float = 0.0, aos: bool = False) -> tuple[int, int, int, list[float], float]:
        """(tp, fp, fn, true-positive scores, orientation similarity or -1): ``computeStatistics``."""
        assigned = np.zeros(len(self.score), bool)
        below = self.score < thresh if compute_fp else np.zeros(len(self.score), bool)
        tp = fn = 0
        v: list[float] = []
        delta: list[float] = []
        for i, cands in enumerate(self.cand):
            if self.ignored_gt[i] == -1:
                continue
            det_idx, found, max_ov, assigned_short = -1, False, 0.0, False
            best_score = -1e7
            for j, o in cands:
                if assigned[j] or below[j]:
                    continue
                if not compute_fp:
                    if self.score[j] > best_score:
                        det_idx, best_score, found = j, self.score[j], True
                elif (o > max_ov or assigned_short) and self.ignored_det[j] == 0:
                    det_idx, max_ov, found, assigned_short = j, o, True, False
                elif not found and self.ignored_det[j] == 1:
                    det_idx, found, assigned_short = j, True, True
            if not found:
                if self.ignored_gt[i] == 0:
                    fn += 1
            elif self.ignored_gt[i] == 1 or self.ignored_det[det_idx] == 1:
                assigned[det_idx] = True
            else:
                tp += 1
                v.append(float(self.score[det_idx]))
                if aos:
                    delta.append(float(self.alpha_gt[i] - self.alpha_det[det_idx]))
                assigned[det_idx] = True
        if not compute_fp:
            return tp, 0, fn, v, -1.0
        regular = (self.ignored_det == 0) & ~below
        fp = int((regular & ~assigned).sum())
        for hits in self.dc_hit:
            for j in hits:
                if regular[j] and not assigned[j]:
                    assigned[j] = True
                    fp -= 1
        similarity = -1.0
        if aos and (tp or fp):
            similarity = float(sum((1.0 + math.cos(d)) / 2.0 for d in delta))
        return tp, fp, fn, v, similarity


def recall_thresholds(scores: Sequence[float], n_gt: int) -> list[float]:
    """The devkit's ``getThresholds``: the scores kept to sample 41 recall steps."""
    v = sorted(scores, reverse=True)
    out, current = [], 0.0
    for i, s in enumerate(v):
        left = (i + 1) / n_gt
        right = (i + 2) / n_gt if i < len(v) - 1 else left
        if (right - current) < (current - left) and i < len(v) - 1:
            continue
        out.append(s)
        current += 1.0 / (N_SAMPLE_PTS - 1.0)
    return out


def _running_max(vals: list[float], n: int) -> list[float]:
    """``vals[i] = max_element(vals[i:])`` for i < n, with C++'s comparison (NaN never wins)."""
    out = list(vals)
    for i in range(n):
        best = vals[i]
        for x in vals[i + 1:]:
            if best < x:
                best = x
        out[i] = best
    return out


def _ap(vals: list[float]) -> dict[str, float]:
    return {"R11": 100.0 * sum(vals[0::4]) / 11.0, "R40": 100.0 * sum(vals[1:]) / 40.0}


def _eval_class(frames: list[_Frame], aos: bool) -> tuple[dict[str, float], dict[str, float] | None, int]:
    n_gt = sum(f.n_gt for f in frames)
    if n_gt == 0:
        nan = {"R11": float("nan"), "R40": float("nan")}
        return nan, (dict(nan) if aos else None), 0
    v = [s for f in frames for s in f.stats(False)[3]]
    thresholds = recall_thresholds(v, n_gt)
    precision, orient = [0.0] * N_SAMPLE_PTS, [0.0] * N_SAMPLE_PTS
    for t, th in enumerate(thresholds[:N_SAMPLE_PTS]):
        tp = fp = 0
        sim = 0.0
        for f in frames:
            a, b, _, _, s = f.stats(True, th, aos)
            tp, fp = tp + a, fp + b
            if s != -1:
                sim += s
        precision[t] = tp / (tp + fp) if tp + fp else float("nan")
        orient[t] = sim / (tp + fp) if tp + fp else float("nan")
    n = min(len(thresholds), N_SAMPLE_PTS)
    return _ap(_running_max(precision, n)), (_ap(_running_max(orient, n)) if aos else None), n_gt


def kitti_ap(gt: Sequence[KittiObjects], det: Sequence[KittiObjects], classes: Sequence[str] = KITTI_OBJECT_CLASSES,
             metrics: Sequence[str] = METRICS, progress: Callable[[str], None] | None = None) -> dict:
    """``{metric: {class: {difficulty: {"R11", "R40"}}}}`` in percent for ``metrics`` among 2d /
    bev / 3d, plus ``aos`` (2D orientation, when every detection has an alpha), ``n_gt``
    (counted objects per class and difficulty) and, where a count is below 40, ``notes``. ``gt[i]`` and ``det[i]`` are frame i's ground
    truth (incl. DontCare, Van, ...) and detections (with scores). A metric is left out for a
    class whose detections all lack what it needs (2D box x1 < 0; location -1000), as the devkit
    does; a class with no detection at all scores 0."""
    if len(gt) != len(det):
        raise ValueError(f"kitti_ap: {len(gt)} ground-truth frames but {len(det)} detection frames")
    for k, d in enumerate(det):
        if d.score is None:
            raise ValueError(f"kitti_ap: detections of frame {k} have no scores")
    aos_ok = all((d.alpha != -10).all() for d in det)
    res: dict = {m: {} for m in metrics}
    res["n_gt"] = {}
    if aos_ok and "2d" in metrics:
        res["aos"] = {}
    for m in metrics:
        if progress:
            progress(m)
        ovs, dcs = [], []
        for g, d in zip(gt, det):
            dc = g.select(np.char.lower(g.type.astype(str)) == "dontcare")
            ovs.append(overlap(d, g, m, -1))
            dcs.append((dc, overlap(d, dc, m, 0)))
        for cls in classes:
            of_cls = [d.select(np.char.lower(d.type.astype(str)) == cls.lower()) for d in det]
            need = {"2d": lambda o: (o.bbox[:, 0] >= 0).any(), "bev": lambda o: (o.loc[:, 0] != -1000).any(),
                    "3d": lambda o: (o.loc[:, 1] != -1000).any()}[m]
            if any(len(o) for o in of_cls) and not any(need(o) for o in of_cls if len(o)):
                continue
            res[m][cls] = {}
            for diff in DIFFICULTY:
                frames = [_Frame(g, d, cls, diff, ov, ovd, dc, MIN_OVERLAP[cls]) for g, d, ov, (dc, ovd) in zip(gt, det, ovs, dcs)]
                ap, orient, n_gt = _eval_class(frames, aos_ok and m == "2d")
                res[m][cls][diff] = ap
                res["n_gt"].setdefault(cls, {})[diff] = n_gt
                if orient is not None:
                    res["aos"].setdefault(cls, {})[diff] = orient
    small = sorted({f"{c} {d}: {n}" for c, per in res["n_gt"].items() for d, n in per.items() if 0 < n < N_SAMPLE_PTS - 1})
    if small:
        res["notes"] = [f"fewer than 40 counted objects ({', '.join(small)}): the devkit's recall sampling takes one threshold "
                        "per true positive there, so AP stays below 100 even for perfect detections (R40 at most (n-1)/40)"]
    return res


# ---------------------------------------------------------------- result folders
def read_ids(path: str | os.PathLike, example: str = "000001") -> list[str]:
    """Frame or scene ids, one per line (KITTI's ImageSets/val.txt, ScanNet's
    scannetv2_val.txt), blank lines skipped."""
    p = Path(path)
    if not p.is_file():
        raise ReaderError(f"{p}: --ids file not found")
    ids = [line.strip() for line in read_text(p, "an --ids file").splitlines() if line.strip()]
    if not ids:
        raise ReaderError(f"{p}: no ids in it (one id per line, e.g. {example})")
    return ids


def result_folder(path: str | os.PathLike) -> Path:
    """The folder holding ``<id>.txt`` result files: ``path/data`` when it holds some (the devkit's
    layout, which also puts its own stats_*.txt in ``path``), else ``path`` itself."""
    p = Path(path)
    if not p.is_dir():
        raise ReaderError(f"{p}: detections folder not found")
    if (p / "data").is_dir() and any((p / "data").glob("*.txt")):  # the devkit's <results>/data (stats files beside it)
        p = p / "data"
    if not any(p.glob("*.txt")):
        raise ReaderError(f"{p}: no <frame id>.txt result files in it")
    return p


def result_ids(folder: Path) -> list[str]:
    """The frame ids of the ``<id>.txt`` result files in ``folder``, sorted."""
    return sorted(p.stem for p in folder.glob("*.txt"))


def detections_that_count_nowhere(det: Sequence[KittiObjects], files: Sequence[Path],
                                  classes: Sequence[str] = KITTI_OBJECT_CLASSES) -> list[str]:
    """What a result writer got wrong that the devkit scores without a word, one line each with
    the number of detections and the first file: a type that is none of KITTI's (``Vehicle``, a
    class index: such a detection plays no part, so its class scores as if undetected); a 2D
    box turned inside out (x2 < x1 or y2 < y1 where x1 >= 0 says one is given; a box clipped to
    the image's edge may have no width, which is no mistake): it overlaps nothing, so it is
    never a hit; dimensions ``h w l`` of zero or below for an evaluated class with a location
    (its bird's-eye and 3D overlap mean nothing)."""
    known = {t.lower() for t in KITTI_OBJECT_TYPES}
    evaluated = {c.lower() for c in classes}
    found: dict[str, list] = {}  # what -> [count, first file]

    def note(what: str, n: int, file: Path) -> None:
        if n:
            entry = found.setdefault(what, [0, file])
            entry[0] += n

    for d, file in zip(det, files):
        names = d.type.astype(str)
        types = np.char.lower(names)
        for t in sorted({str(t) for t in names if t.lower() not in known}):
            note(f"type {t!r}", int((names == t).sum()), file)
        given = d.bbox[:, 0] >= 0
        note("a 2D box whose x2 < x1 or y2 < y1 (x, y, width, height written for x1, y1, x2, y2?)",
             int((given & ((d.bbox[:, 2] < d.bbox[:, 0]) | (d.bbox[:, 3] < d.bbox[:, 1]))).sum()), file)
        placed = np.isin(types, list(evaluated)) & (d.loc[:, 0] != -1000)
        note("dimensions h w l of 0 or below", int((placed & (d.hwl <= 0).any(1)).sum()), file)
    why = {"type": f"none of KITTI's types ({', '.join(KITTI_OBJECT_TYPES)}); the devkit counts such detections nowhere",
           "a 2D": "such a box overlaps nothing, so it is never a hit",
           "dimensions": "the bird's-eye and 3D overlaps of such a box mean nothing"}
    return [f"{n} detection{'s' if n > 1 else ''} with {what} (first in {file}): "
            f"{next(v for k, v in why.items() if what.startswith(k))}" for what, (n, file) in found.items()]


def evaluate_result_files(label_dir: str | os.PathLike, detections: str | os.PathLike, ids: Sequence[str] | None = None,
                          classes: Sequence[str] = KITTI_OBJECT_CLASSES, progress: Callable[[str], None] | None = None) -> dict:
    """Score a folder of KITTI result files against ``label_dir`` (``<root>/training/label_2``):
    every ``<id>.txt`` of the folder, or the frames ``ids`` (each must have a result file, as
    the devkit requires). Returns ``kitti_ap``'s dict plus ``frames`` and the folders used."""
    label_dir, det_dir = Path(label_dir), result_folder(detections)
    if not label_dir.is_dir():
        raise ReaderError(f"{label_dir}: label_2 folder not found (expected <root>/training/label_2)")
    if ids is None:
        ids = result_ids(det_dir)
    gt = [read_objects(label_dir / f"{i}.txt") for i in ids]
    det = [read_objects(det_dir / f"{i}.txt", results=True) for i in ids]
    suspicious = detections_that_count_nowhere(det, [det_dir / f"{i}.txt" for i in ids], classes)
    for line in suspicious:
        warnings.warn(line)
    out = kitti_ap(gt, det, classes, progress=progress)
    if suspicious:
        out["notes"] = suspicious + out.get("notes", [])
    out.update({"frames": len(ids), "labels": str(label_dir), "detections": str(det_dir)})
    return out

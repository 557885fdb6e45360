"""What 2D masks say about a point graph: which points each view saw under which mask.

``MaskViews`` holds, per usable frame, the scene points the frame's depth camera sees and the
mask id under each (0 = seen, under no mask). ``MaskEvidence`` turns it into evidence for the
label walk (``propagate(..., groups=...)``):

- Grouping, per graph edge (a, b): in each frame where both nodes are seen (each by at least
  ``min_seen`` points) and at least one lies under a mask, the two agree when the same mask
  holds most of both. ``agree`` = agreeing frames / such frames, ``n`` = such frames. The
  edge's affinity w becomes w^(1 - link * r * agree) * exp(-cut * r * (1 - agree)), with
  r = n / (n + 1) the weight of the evidence: nodes one mask keeps covering are joined across
  creases and colour changes, nodes the masks keep apart are cut. One frame's mistake (a merge
  of two objects, a split) is outvoted by the frames that saw them right, which a union of
  masks across frames is not.
- Class evidence (optional): per-mask class scores (a vision-language model's), softmax per
  mask, averaged over the frames whose majority mask covers the node and weighted by how many
  frames do and how much they agree; ``prior_weight`` times it is added to the walk's seed mass, so unseeded objects get a class from the masks while
  seeds still decide where they lie.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ..camera import DEPTH_SCALE_OFF, depth_test, why_unseen
from ..errors import SceneError
from ..scene import Frame, Scene

_log = logging.getLogger(__name__)


ASPECT_TOLERANCE = 0.05  # ScanNet's colour (1296x968) and depth (640x480) images differ by 0.4 %


def _scaled(frame: Frame, shape: tuple[int, int]) -> Frame:
    """The frame seen at ``shape`` (H,W): depth resampled by nearest neighbour, K scaled. A
    mask map whose width / height ratio is not the depth map's (beyond ``ASPECT_TOLERANCE``)
    was made for another camera or frame: SceneError naming the frame."""
    d = frame.depth
    if d.shape == shape:
        return frame
    if abs((shape[1] / shape[0]) / (d.shape[1] / d.shape[0]) - 1) > ASPECT_TOLERANCE:
        raise SceneError(f"masks: frame {frame.name}: a {shape[1]}x{shape[0]} mask map does not fit its "
                         f"{d.shape[1]}x{d.shape[0]} depth image (another width / height ratio: made for another frame?)")
    sy, sx = shape[0] / d.shape[0], shape[1] / d.shape[1]
    K = frame.intrinsics.copy()
    K[0] *= sx
    K[1] *= sy
    rows = np.minimum((np.arange(shape[0]) / sy).astype(int), d.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) / sx).astype(int), d.shape[1] - 1)
    return Frame(frame.name, frame.pose, K, depth=d[rows][:, cols])


def _valid_pose(pose: np.ndarray) -> bool:
    R = pose[:3, :3]
    return bool(np.isfinite(pose).all() and abs(np.linalg.det(R) - 1) < 1e-2 and np.allclose(pose[3], [0, 0, 0, 1], atol=1e-6))


# Median over a scene's frames of the share of the points projecting onto a depth reading that
# agree with it (camera.depth_test): 0.50-0.72 with the right poses on the shared scan and
# synthetic rooms, 0.04-0.11 with every pose shifted 0.3 m, 0.12-0.34 turned 5 degrees, 0.26-0.41
# shifted 0.1 m (docs/results.md). Below this the poses or the depth are taken to be off.
POSE_AGREEMENT_WARN = 0.15
AGREEMENT_MIN_POINTS = 100  # a frame with fewer points on its depth readings tells nothing


def _unseen_text(why: str, frames: list[tuple[str, float | None]]) -> str:
    """``frames 0, 10, ...: why`` for frames that see none of a scene's points (``why_unseen``),
    a depth factor given as the range over them."""
    names = [n for n, _ in frames]
    head = f"frame{'s' if len(names) > 1 else ''} {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}"
    if why == DEPTH_SCALE_OFF:
        lo, hi = (f"{x:.3g}" if x < 100 else f"{x:.0f}" for x in (min(r for _, r in frames), max(r for _, r in frames)))
        why = why.format(lo if lo == hi else f"{lo}-{hi}")
    return f"{head}: {why}"


def check_mask_scores(owner: str, scores: np.ndarray, num_masks: int, num_classes: int) -> np.ndarray:
    """``scores`` as (num_masks, C) float64 class scores, one row per global mask id (each
    frame's ids 1..m, in frame order: the layout of ``scores.npy``), logits or probabilities, -inf
    for a class ruled out; SceneError naming ``owner`` for another shape, words or flags, NaN or
    +inf (which the softmax would spread over every class)."""
    sc = np.asarray(scores)
    if sc.dtype.kind not in "fiu" or sc.ndim != 2:
        raise SceneError(f"{owner}: expected a (masks, classes) array of numbers, got {sc.shape} {sc.dtype}")
    if sc.shape != (num_masks, num_classes):
        raise SceneError(f"{owner}: shape {sc.shape}, but the masks hold {num_masks} mask ids (each frame's 1..m, in "
                         f"frame order) and the scene has {num_classes} classes")
    sc = sc.astype(np.float64)
    bad = np.isnan(sc) | (sc == np.inf)
    if bad.any():
        raise SceneError(f"{owner}: {int(bad.any(1).sum())} rows hold NaN or +inf (-inf rules a class out; other "
                         "scores are logits or probabilities)")
    return sc


@dataclass
class MaskViews:
    """Per used frame k: ``points[k]`` (V_k,) int64 visible point indices, ``labels[k]`` (V_k,)
    int64 mask id under each (0 = none), ``offset[k]`` the global id of the frame's mask 1 minus
    one (global ids run over all frames' masks in order, the layout of ``scores.npy``).
    ``frame[k]`` is the index into the given masks list; ``num_masks`` counts every mask id,
    skipped frames' included; ``skipped`` names frames with invalid poses or no depth."""
    num_points: int
    points: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    offset: list[int] = field(default_factory=list)
    frame: list[int] = field(default_factory=list)
    num_masks: int = 0
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def from_masks(cls, scene: Scene, masks: Sequence[tuple[int, np.ndarray]], abs_tol: float = 0.03,
                   rel_tol: float = 0.02) -> "MaskViews":
        """Project the scene into each masked frame (depth-tested, ``camera.visible_points``);
        mask maps of another resolution than the depth map get scaled intrinsics."""
        mv = cls(scene.num_points)
        unseen: dict[str, list[tuple[str, float | None]]] = {}  # why -> (frame, depth ratio) that see none of the points
        agreement: list[float] = []  # per frame: visible over measured points (camera.depth_test)
        for k, (fi, label_map) in enumerate(masks):
            if not 0 <= fi < len(scene.frames):
                raise SceneError(f"masks: frame index {fi} out of range ({len(scene.frames)} frames)")
            f = scene.frames[fi]
            lm = np.asarray(label_map)
            if lm.ndim != 2 or lm.dtype.kind not in "iu":
                raise SceneError(f"masks: frame {f.name}: expected an (H,W) integer label map, got {lm.shape} {lm.dtype}")
            if lm.size and lm.min() < 0:  # a negative id would name another frame's mask
                raise SceneError(f"masks: frame {f.name}: mask id {int(lm.min())}; ids are 0 (no mask) or 1..m")
            top = int(lm.max()) if lm.size else 0
            if not _valid_pose(f.pose) or f.depth is None:
                mv.skipped.append(f.name)
                mv.num_masks += top
                continue
            test = depth_test(scene.coord, _scaled(f, lm.shape), abs_tol=abs_tol, rel_tol=rel_tol)
            u, v, pts = test.u, test.v, np.flatnonzero(test.visible)
            measured = int(test.measured.sum())
            if measured >= AGREEMENT_MIN_POINTS:
                agreement.append(len(pts) / measured)
            if not len(pts):
                why, ratio = why_unseen(test)
                unseen.setdefault(why, []).append((f.name, ratio))
            mv.points.append(pts)
            mv.labels.append(lm[v[pts], u[pts]].astype(np.int64))
            mv.offset.append(mv.num_masks - 1)
            mv.frame.append(k)
            mv.num_masks += top
            if (k + 1) % max(10, -(-len(masks) // 10)) == 0 or k + 1 == len(masks):  # about ten lines
                _log.info("masks projected into %d of %d frames", k + 1, len(masks))
        if mv.skipped:
            warnings.warn(f"lift_masks: skipped {len(mv.skipped)} frames with invalid poses or no depth: {mv.skipped[:10]}")
        if unseen:
            n_unseen, used = sum(map(len, unseen.values())), len(mv.points)
            why = "; ".join(_unseen_text(k, v) for k, v in sorted(unseen.items(), key=lambda kv: -len(kv[1])))
            if n_unseen == used:  # nothing can be lifted: a mistake in the frames, not a view of empty space
                raise SceneError(f"masks: no frame sees any of the scene's points ({why})")
            warnings.warn(f"lift_masks: {n_unseen} of {used} frames see none of the scene's points ({why})")
        if agreement and np.median(agreement) < POSE_AGREEMENT_WARN:
            warnings.warn(f"lift_masks: of the points that project onto the frames' depth readings only "
                          f"{100 * np.median(agreement):.0f} % agree with them (median over {len(agreement)} frames; "
                          f"about half or more where frames are well posed): are the poses camera-to-world, in the "
                          f"scene's coordinates, and the depth in metres?")
        return mv

    def membership(self, min_points: int = 1) -> sp.csr_matrix:
        """(num_masks, N) 0/1 matrix: mask m holds point i; masks under ``min_points`` seen
        points are left empty."""
        rows, cols = [], []
        for pts, lab, off in zip(self.points, self.labels, self.offset):
            m = lab > 0
            gid = lab[m] + off
            cnt = np.bincount(gid, minlength=self.num_masks)
            keep = cnt[gid] >= min_points
            rows.append(gid[keep])
            cols.append(pts[m][keep])
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(self.num_masks, self.num_points))

    def node_masks(self, node: np.ndarray, n_nodes: int, min_seen: int = 3) -> np.ndarray:
        """(F,S) int64: the mask id (global, 0-based) holding most of each node's seen points in
        each used frame; -1 = the node is unmasked there (most of its seen points under no
        mask), -2 = not seen by at least ``min_seen`` points."""
        out = np.full((len(self.points), n_nodes), -2, np.int64)
        for k, (pts, lab, off) in enumerate(zip(self.points, self.labels, self.offset)):
            if not len(pts):  # a frame that sees none of the scene's points
                continue
            nd = node[pts]
            top = int(lab.max()) + 1
            key, cnt = np.unique(nd * top + lab, return_counts=True)
            kn, kl = key // top, key % top
            order = np.lexsort((cnt, kn))  # per node, its most frequent mask last
            last = np.r_[kn[order][1:] != kn[order][:-1], True]
            nn, ll = kn[order][last], kl[order][last]
            seen = np.bincount(nd, minlength=n_nodes)[nn] >= min_seen
            out[k, nn[seen]] = np.where(ll[seen] > 0, ll[seen] + off, -1)
        return out


def edge_agreement(nm: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(agree, n) per edge (a, b) from an (F,S) table ``nm`` of each node's mask (or group) per
    view, as ``MaskViews.node_masks`` makes it: n counts the views that see both nodes with at
    least one under a mask, agree the share of them that put both under the same one."""
    ma, mb = nm[:, a], nm[:, b]
    both = (ma > -2) & (mb > -2) & ((ma >= 0) | (mb >= 0))
    n = both.sum(0)
    agree = (both & (ma == mb)).sum(0) / np.maximum(n, 1)
    return agree, n


def moved_affinities(C: sp.coo_matrix, agree: np.ndarray, weight: np.ndarray, link: float, cut: float) -> sp.csr_matrix:
    """The affinities ``C`` (COO) with each edge's w moved to w^(1 - link * r * agree) *
    exp(-cut * r * (1 - agree)), r = ``weight`` in [0, 1] how far the evidence is trusted: a
    grouping that keeps two nodes together joins them across a crease, one that keeps them apart
    cuts their edge."""
    logw = np.log(np.maximum(C.data, 1e-300)) * (1.0 - link * weight * agree) - cut * weight * (1.0 - agree)
    return sp.csr_matrix((np.exp(logw), (C.row, C.col)), shape=C.shape)


@dataclass
class MaskEvidence:
    """Mask views plus how much the walk trusts them (see the module docstring; ``lift_masks``
    holds the defaults). ``scores``: (num_masks, C) class scores, -inf for classes ruled out
    (scene tags). ``groups``: (N,) int64 3D segment per point (-1: none), handed to the forest
    after the walk (``refine_probabilities``), which decides the class of those no seed lies in.
    """
    views: MaskViews
    link: float
    cut: float
    prior_weight: float
    prior_agreement: float
    scores: np.ndarray | None = None
    min_seen: int = 3
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.link <= 1 or not self.cut >= 0:
            raise ValueError(f"mask link must lie in [0, 1] and mask cut be >= 0, got {self.link} and {self.cut}")
        if not self.prior_weight >= 0 or not self.prior_agreement >= 0:
            raise ValueError(f"prior_weight and prior_agreement must be >= 0, got {self.prior_weight} and {self.prior_agreement}")

    def reweight(self, W: sp.csr_matrix, nm: np.ndarray) -> sp.csr_matrix:
        """The affinity matrix with every edge's weight moved by its mask agreement, weighed by
        r = n / (n + 1) of the n frames that tell (module docstring)."""
        C = W.tocoo()
        agree, n = edge_agreement(nm, C.row, C.col)
        return moved_affinities(C, agree, n / (n + 1.0), self.link, self.cut)

    def prior(self, nm: np.ndarray, num_classes: int) -> np.ndarray | None:
        """(S,C) mean class probability of the masks covering each node over the v frames that
        cover it, times v / (v + 1) and the mean's top probability to the power
        ``prior_agreement`` (0 where no mask covers it), or None without scores."""
        if self.scores is None or not self.prior_weight:
            return None
        sc = np.asarray(self.scores, np.float64)
        finite = np.isfinite(sc).any(1)
        p = np.zeros_like(sc)
        mx = np.where(finite, np.max(np.where(np.isfinite(sc), sc, -np.inf), 1), 0.0)
        p[finite] = np.exp(sc[finite] - mx[finite, None])
        p /= np.maximum(p.sum(1, keepdims=True), 1e-300)
        S = nm.shape[1]
        total = np.zeros((S, num_classes))
        for row in nm:
            on = row >= 0
            total[on] += p[row[on]]
        cnt = (nm >= 0).sum(0)
        mean = np.where(cnt[:, None] > 0, total / np.maximum(cnt, 1)[:, None], 0.0)
        # trust grows with the views and with how much they agree (the mean's top probability)
        return mean * (cnt / (cnt + 1.0))[:, None] * mean.max(1, keepdims=True) ** self.prior_agreement

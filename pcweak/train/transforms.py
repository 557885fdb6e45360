"""Point-cloud augmentations and voxelisation (numpy in, numpy/torch out), all seeded.

A sample is a dict of per-point arrays: ``coord`` (N,3) float32, ``color`` (N,3) float32 in
[0,1], ``normal`` (N,3) float32, and label arrays; augmentations change the geometric and
colour fields only, so labels stay aligned with the original points.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..geometry import column_bounds


@dataclass
class Augment:
    """Rotation about z, flips, scaling, jitter and colour jitter (train only)."""

    rotate: float = np.pi          # max |angle| about z (rad)
    flip: bool = True              # random flips of x and y
    scale: tuple[float, float] = (0.9, 1.1)
    jitter: float = 0.005          # std (m), clipped at 4 std
    color_jitter: float = 0.05     # std of additive colour noise; brightness/contrast +-10 %

    def __call__(self, s: dict, rng: np.random.Generator) -> dict:
        s = dict(s)
        c = s["coord"].astype(np.float32)
        lo, hi = column_bounds(c)
        centre = (lo + hi) / 2
        c = c - centre
        a = rng.uniform(-self.rotate, self.rotate)
        R = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]], np.float32)
        if self.flip:
            R = R @ np.diag([rng.choice([-1, 1]), rng.choice([-1, 1]), 1]).astype(np.float32)
        k = rng.uniform(*self.scale)
        c = (c @ R.T) * k
        if self.jitter:
            c = c + np.clip(rng.normal(0, self.jitter, c.shape), -4 * self.jitter, 4 * self.jitter).astype(np.float32)
        s["coord"] = (c + centre).astype(np.float32)
        if s.get("normal") is not None:
            s["normal"] = (s["normal"] @ R.T).astype(np.float32)
        if s.get("color") is not None and self.color_jitter:
            col = s["color"] * rng.uniform(0.9, 1.1) + rng.uniform(-0.1, 0.1)
            col = (col - col.mean()) * rng.uniform(0.9, 1.1) + col.mean()
            s["color"] = np.clip(col + rng.normal(0, self.color_jitter, col.shape), 0, 1).astype(np.float32)
        return s


def region_mask(coord: np.ndarray, rng: np.random.Generator, grid: int = 4, ratio: float = 0.75) -> np.ndarray:
    """CPCM's RegionMask: (N,) bool, True for points in a random ``ratio`` of the cells of a
    ``grid``^3 quantile grid (equal-count bins per axis)."""
    cells = np.zeros(len(coord), np.int64)
    for d in range(3):
        edges = np.quantile(coord[:, d], np.linspace(0, 1, grid + 1)[1:-1])
        cells = cells * grid + np.searchsorted(edges, coord[:, d], side="right")
    chosen = rng.permutation(grid ** 3)[: int(round(ratio * grid ** 3))]
    return np.isin(cells, chosen)


FEATURE_WIDTH: dict[str, int] = {"color": 3, "normal": 3, "intensity": 1}


def feature_width(names: Sequence[str]) -> int:
    """Input channels F that ``features`` gives for ``names``; ValueError for an unknown name."""
    bad = [n for n in names if n not in FEATURE_WIDTH]
    if bad:
        raise ValueError(f"feature_names: unknown {bad}; expected names from {sorted(FEATURE_WIDTH)}")
    return sum(FEATURE_WIDTH[n] for n in names)


def features(s: dict, use: tuple[str, ...]) -> np.ndarray:
    """(N,F) float32 input features from the named fields (missing ones are zeros)."""
    n = len(s["coord"])
    parts = []
    for name in use:
        width = FEATURE_WIDTH[name]
        v = s.get(name)
        parts.append(np.zeros((n, width), np.float32) if v is None else np.asarray(v, np.float32).reshape(n, width))
    return np.concatenate(parts, 1) if parts else np.zeros((n, 0), np.float32)


def voxelize_sample(coord: np.ndarray, feat: np.ndarray, voxel_size: float) -> dict:
    """Mean features per voxel; returns grid_coord (V,3) int32, feat (V,F), inverse (N,) int64
    and point_feat (N, F + 3) float32: each point's own features and its offset from its
    voxel's centre in voxel units (in [-0.5, 0.5)), what ``models.point_head`` reads."""
    from .. import ops
    c = torch.from_numpy(np.ascontiguousarray(coord, np.float32))
    v = ops.voxelize(c, voxel_size)
    pf = torch.from_numpy(np.ascontiguousarray(feat, np.float32))
    f = ops.scatter(pf, v.inverse, len(v.counts), "mean") if feat.shape[1] else torch.zeros((len(v.counts), 0))
    rel = (c.double() - c.double().min(0).values) / voxel_size - v.grid_coord.double()[v.inverse] - 0.5 if len(c) else c.double()
    offset = rel.clamp(-0.5, 0.5).float()  # float rounding at a voxel face
    return {"grid_coord": v.grid_coord, "feat": f.float(), "inverse": v.inverse, "point_feat": torch.cat([pf, offset], 1)}


def voxel_labels(inverse: torch.Tensor, labels: np.ndarray, n_vox: int, weight: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Label of each voxel by a weighted vote of its labelled points: the label whose points'
    weights sum highest wins (ties: the smaller label); its weight is the mean weight of those
    points. Voxels without labelled points get -1 and weight 0. A vote rather than one
    representative point: a coarse voxel often holds two classes, and the model predicts one
    class per voxel, so the majority is the target that maximises point accuracy after the
    inverse map. Returns (V,) int64 labels, (V,) float32 weights."""
    inv = np.asarray(inverse, np.int64)
    lab = np.asarray(labels, np.int64)
    w = np.ones(len(lab), np.float64) if weight is None else np.asarray(weight, np.float64)
    out_lab = np.full(n_vox, -1, np.int64)
    out_w = np.zeros(n_vox, np.float32)
    k = lab >= 0
    if k.any():
        span = int(lab[k].max()) + 1
        pair = inv[k] * span + lab[k]
        uniq, at = np.unique(pair, return_inverse=True)
        total = np.bincount(at, weights=w[k], minlength=len(uniq))
        count = np.bincount(at, minlength=len(uniq))
        vox, cls = uniq // span, uniq % span
        # per voxel the pair with the largest total (then the smaller label): sort and keep the first
        order = np.lexsort((cls, -total, vox))
        first = order[np.r_[True, vox[order][1:] != vox[order][:-1]]]
        out_lab[vox[first]] = cls[first]
        out_w[vox[first]] = (total[first] / count[first]).astype(np.float32)
    return torch.from_numpy(out_lab), torch.from_numpy(out_w)

"""Label a scene too large to label point by point: one point per voxel, labels carried back.

A terrestrial laser scan (Semantic3D's scans hold 10^7 - 5 x 10^8 points) or a dense
photogrammetric cloud outgrows the labellers' memory (propagation holds about 1.7 GB per
million points). ``subsample`` groups the scene's points into cubic voxels of edge ``size``
(metres) and keeps one point of each, the one nearest its voxel's mean, with its own colour,
normal, intensity and segment (a mean would blend two surfaces where a voxel straddles an
edge). The weak labels follow: a voxel that holds a labelled point is labelled and represented
by it (by the first, where it holds several; a warning counts the labelled points of another
class or instance lost that way, as a voxel too large for the labels loses them).
``Subsampled.carry_back`` gives every point the labels of a kept point near it, chosen by
position, colour and normal (``label_sources``), and a labelled point its own label again.
Boxes, frames, 2D masks and scene tags live in the scene's frame, not on its points, and are
used as they are.

Per-point ground truth is not carried to the subsampled scene: a labeller never reads it, and
scores are taken on the scene's own points after the labels are carried back.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..scene import PseudoLabels, Scene, WeakLabels

_log = logging.getLogger(__name__)  # pcweak label shows one line per stage for one scene


def check_voxel(size: float | None, where: str = "voxel") -> float | None:
    """``size`` as a float, or None for none; ValueError naming ``where`` unless it is a finite
    number of metres > 0."""
    if size is None:
        return None
    try:
        v = float(size)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {size!r} is not a number of metres") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{where}: {size!r} must be a finite number of metres > 0")
    return v


def voxel_groups(coord: np.ndarray, size: float, where: str = "voxel") -> tuple[np.ndarray, int]:
    """(N,) int64 the voxel of edge ``size`` (metres) each point of ``coord`` (N,3) lies in,
    numbered 0..M-1 in (x, y, z) order, and M; ValueError naming ``where`` when the scene spans
    more voxels along an axis than the voxel keys hold (``ops.voxelize``)."""
    import torch
    from .. import ops
    c = torch.from_numpy(np.ascontiguousarray(coord, np.float32))
    try:
        v = ops.voxelize(c, float(size))
    except ValueError as e:
        raise ValueError(f"{where}: {size:g} m is too small for scene extent "
                         f"{np.ptp(coord, 0).max():.0f} m ({e})") from None
    return v.inverse.numpy(), len(v.counts)


def _mean(values: np.ndarray, inverse: np.ndarray, m: int) -> np.ndarray:
    """(M,C) float64 mean of ``values`` (N,C) over each group of ``inverse``."""
    count = np.bincount(inverse, minlength=m).astype(np.float64)
    return np.stack([np.bincount(inverse, values[:, j].astype(np.float64), minlength=m) for j in range(values.shape[1])], 1) \
        / np.maximum(count, 1)[:, None]


def representatives(coord: np.ndarray, inverse: np.ndarray, m: int) -> np.ndarray:
    """(M,) int64 the point of each voxel nearest its points' mean (ties: the smaller index)."""
    centre = _mean(coord, inverse, m)
    d = ((coord.astype(np.float64) - centre[inverse]) ** 2).sum(1)
    order = np.lexsort((d, inverse))
    return order[np.r_[True, inverse[order][1:] != inverse[order][:-1]]]


CARRY_NEIGHBOURS = 8  # kept points a point chooses its labels among
CARRY_COLOR_SCALE = 0.1  # colour distance (RGB in [0,1]) that costs as much as a voxel's edge of distance
CARRY_NORMAL_SCALE = 0.1  # 1 - |cos| between normals that costs as much
CARRY_CHUNK = 1 << 18  # points a chunk of the carrying back takes at once (8 neighbours each)
# what subsampling and carrying back hold beyond the labeller (bytes): per point of the scene its
# voxel, the sort that picks kept points (offsets, distances, the voxel means gathered in float64)
# and the carried labels; fixed, one chunk's neighbours, distances, costs and colour differences
CARRY_BYTES_PER_POINT = 72.0
CARRY_FIXED_BYTES = CARRY_CHUNK * CARRY_NEIGHBOURS * 48.0


def carry_bytes(points: int) -> float:
    """The memory (bytes) that subsampling a scene of ``points`` points and carrying the labels
    back hold beyond what the labeller holds for the voxels (``pcweak label``'s budget)."""
    return CARRY_FIXED_BYTES + CARRY_BYTES_PER_POINT * points


def label_sources(scene: Scene, kept: Scene, size: float, neighbours: int = CARRY_NEIGHBOURS) -> np.ndarray:
    """(N,) int64 for each point of ``scene`` the point of ``kept`` (its subsample at voxels of
    ``size`` metres) whose labels it takes: of its ``neighbours`` nearest kept points, the one
    of least cost ``(distance / size)^2 + |colour difference|^2 / CARRY_COLOR_SCALE^2 + (1 - |cos
    between normals|) / CARRY_NORMAL_SCALE``, the colour and normal terms where both scenes have
    them. The point kept for a voxel may lie across an edge from the voxel's other points (a cup's
    rim on a table); the cost picks a neighbour on their side (``pcweak bench voxel`` sets it
    beside ``neighbours=1``, the nearest kept point: docs/results.md)."""
    from scipy.spatial import cKDTree
    tree = cKDTree(kept.coord)
    if neighbours < 1:
        raise ValueError(f"neighbours: {neighbours} is not an integer >= 1")
    k = min(int(neighbours), kept.num_points)
    out = np.empty(scene.num_points, np.int64)
    color = scene.color is not None and kept.color is not None
    normal = scene.normal is not None and kept.normal is not None
    for start in range(0, scene.num_points, CARRY_CHUNK):
        stop = min(start + CARRY_CHUNK, scene.num_points)
        d, nn = tree.query(scene.coord[start:stop], k=k, workers=-1)
        nn = nn.reshape(stop - start, k)
        cost = (d.reshape(stop - start, k) / size) ** 2
        if color:
            cost += ((scene.color[start:stop, None, :] - kept.color[nn]) ** 2).sum(-1) / CARRY_COLOR_SCALE ** 2
        if normal:
            cost += (1.0 - np.abs((scene.normal[start:stop, None, :] * kept.normal[nn]).sum(-1))) / CARRY_NORMAL_SCALE
        out[start:stop] = nn[np.arange(stop - start), cost.argmin(1)]
        if scene.num_points > 4 * CARRY_CHUNK:
            _log.info("labels carried back to %s of %s points", f"{stop:,}", f"{scene.num_points:,}")
    return out


@dataclass
class Subsampled:
    """A scene reduced to one point per voxel (``scene``, ``weak``) beside the scene and weak labels
    it was made from (``original``, ``original_weak``), the original index of each kept point
    (``kept`` (M,) int64), the voxel edge (``size``, metres) and what subsampling cost
    (``seconds``). Nothing of the original's size is held beyond the original itself: the
    labeller runs while this is alive (each point's voxel, 8 bytes a point, is not kept; the
    carrying back finds each point's source by its neighbours)."""
    scene: Scene
    weak: WeakLabels
    original: Scene
    original_weak: WeakLabels
    kept: np.ndarray
    size: float
    seconds: float = 0.0

    def carry_back(self, pseudo: PseudoLabels, keep_seeds: bool = True, neighbours: int = CARRY_NEIGHBOURS) -> PseudoLabels:
        """``pseudo`` (labels of the subsampled scene) on every original point: each takes the
        semantic, instance, confidence and per-point extras of the kept point ``label_sources``
        chooses for it among its ``neighbours`` nearest; with ``keep_seeds`` a labelled point (``original_weak.point_index``) takes
        its own class (and instance where given) again, as a labeller that keeps its seeds leaves
        them. Boxes and per-box extras are kept as they are; ``stats`` gains ``voxel`` (m),
        ``voxel_points`` (M) and ``points`` (N)."""
        t = time.perf_counter()
        m = self.scene.num_points
        source = label_sources(self.original, self.scene, self.size, neighbours)
        semantic = pseudo.semantic[source]
        instance = pseudo.instance[source]
        confidence = pseudo.confidence[source]
        w = self.original_weak
        if keep_seeds and w.point_index is not None and len(w.point_index):
            semantic[w.point_index] = w.point_semantic
            if w.point_instance is not None:
                instance[w.point_index] = w.point_instance
        boxes = 0 if pseudo.box is None else len(pseudo.box)
        extras = {k: (v[source] if v.ndim and len(v) == m and len(v) != boxes else v) for k, v in pseudo.extras.items()}
        stats = {**json.loads(pseudo.stats), "voxel": self.size, "voxel_points": m, "points": len(source)}
        out = dataclasses.replace(pseudo, semantic=semantic, instance=instance, confidence=confidence, extras=extras,
                                  stats=json.dumps(stats, sort_keys=True))
        out.timing = {**pseudo.timing, "subsample": self.seconds, "carry_back": time.perf_counter() - t}
        return out


def lost_seeds(weak: WeakLabels, cells: np.ndarray) -> int:
    """How many of ``weak``'s labelled points lie in a voxel (``cells`` (K,) int64, the voxel of
    each) whose first labelled point has another class, or another instance where instances are
    given: those points do not seed the labeller of the subsampled scene."""
    voxels, first = np.unique(cells, return_index=True)
    at = np.searchsorted(voxels, cells)
    other = weak.point_semantic != weak.point_semantic[first][at]
    if weak.point_instance is not None:
        other |= weak.point_instance != weak.point_instance[first][at]
    return int(other.sum())


def _warn_lost_seeds(weak: WeakLabels, cells: np.ndarray, size: float) -> None:
    lost = lost_seeds(weak, cells)
    if lost:
        what = "class or instance" if weak.point_instance is not None else "class"
        warnings.warn(f"scene {weak.scene!r}, voxel {size:g} m: {lost} of its {len(cells)} labelled points share a voxel "
                      f"with a labelled point of another {what} and do not seed the labeller (they keep their own "
                      f"labels in the output); a smaller voxel keeps them apart")


def subsample(scene: Scene, weak: WeakLabels, size: float) -> Subsampled:
    """``scene`` and ``weak`` at one point per voxel of edge ``size`` metres (module docstring).
    ``weak`` is checked against ``scene`` first (its indices must be the scene's)."""
    size = check_voxel(size)
    weak.check_against(scene)
    t = time.perf_counter()
    inv, m = voxel_groups(scene.coord, size)
    rep = representatives(scene.coord, inv, m)
    points = {}
    if weak.point_index is not None:
        cells = inv[weak.point_index]
        _warn_lost_seeds(weak, cells, size)
        _, first = np.unique(cells, return_index=True)
        first = np.sort(first)  # a voxel is labelled, and represented, by its first labelled point
        rep[cells[first]] = weak.point_index[first]
        points = {"point_index": cells[first], "point_semantic": weak.point_semantic[first],
                  "point_instance": None if weak.point_instance is None else weak.point_instance[first]}

    def kept(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values[rep]

    sub_scene = dataclasses.replace(
        scene, coord=scene.coord[rep], color=kept(scene.color), normal=kept(scene.normal), intensity=kept(scene.intensity),
        segment=kept(scene.segment), semantic=None, instance=None, extras={},
        meta={**scene.meta, "voxel": size, "voxel_of_points": scene.num_points})
    sub_weak = dataclasses.replace(weak, num_points=m, **points)
    _log.info("%s points subsampled to %s voxels of %g m", f"{scene.num_points:,}", f"{m:,}", size)
    return Subsampled(sub_scene, sub_weak, scene, weak, rep, size, time.perf_counter() - t)

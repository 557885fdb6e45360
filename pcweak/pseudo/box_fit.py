"""Amodal 3D boxes around the visible points of one LiDAR object, and the object geometry a few
fully boxed frames teach.

A LiDAR sees the faces of an object that turn towards the sensor: an L of two faces, or one face.
``fit_box`` finds the heading with the L-shape closeness criterion (Zhang et al., "Efficient
L-Shape Fitting for Vehicle Detection Using Laser Scanners", IV 2017), keeps the visible (near)
faces where they are, and completes what is unseen with the class's size, growing the box away
from the sensor. The box stands on the local ground. ``BoxGeometry`` holds the class sizes:
KITTI's training-set means by default, or the means of the boxes a user provides for some frames
(``fit_box_geometry``), shrunk towards the defaults when there are few of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

import numpy as np

from ..errors import SceneError
from ..geometry import box_iou, oriented_box

# Mean (length, width, height) in metres of KITTI's training boxes per class.
KITTI_SIZE_PRIORS: dict[str, tuple[float, float, float]] = {
    "Car": (3.9, 1.6, 1.56), "Pedestrian": (0.8, 0.6, 1.73), "Cyclist": (1.76, 0.6, 1.73)}


@dataclass(frozen=True)
class BoxGeometry:
    """Per-class box size (length, width, height) in metres, and how many boxes taught it
    (``fit_box_geometry``)."""
    sizes: dict[str, tuple[float, float, float]] = field(default_factory=lambda: dict(KITTI_SIZE_PRIORS))
    counts: dict[str, int] = field(default_factory=dict)

    def size(self, cls: str) -> tuple[float, float, float] | None:
        return self.sizes.get(cls)

    def to_dict(self) -> dict[str, Any]:
        return {"sizes": {k: [round(float(x), 4) for x in v] for k, v in sorted(self.sizes.items())},
                "counts": {k: int(v) for k, v in sorted(self.counts.items())}}

    @classmethod
    def from_dict(cls, d: Any, what: str = "geometry") -> BoxGeometry:
        """Check and read the JSON form (``to_dict``); a clear error names what is wrong."""
        if not isinstance(d, dict) or not isinstance(d.get("sizes"), dict):
            raise ValueError(f"{what}: expected {{'sizes': {{class: [length, width, height]}}, 'counts': {{...}}}}, got {d!r:.120}")
        sizes = {}
        for k, v in d["sizes"].items():
            if not (isinstance(v, (list, tuple)) and len(v) == 3 and all(isinstance(x, (int, float)) and 0 < x < 50 for x in v)):
                raise ValueError(f"{what}: size of {k!r} must be three lengths in metres in (0, 50), got {v!r}")
            sizes[str(k)] = tuple(float(x) for x in v)
        counts = d.get("counts", {})
        if not isinstance(counts, dict) or not all(isinstance(v, int) and v >= 0 for v in counts.values()):
            raise ValueError(f"{what}: counts must map classes to box counts >= 0, got {counts!r:.120}")
        return cls(sizes, {str(k): int(v) for k, v in counts.items()})


class BoxedObject(NamedTuple):
    """One object of a fully boxed frame: its box (7,), class name, visible points (N,3) above
    the ground (or None) and the ground height under it (m)."""
    box: np.ndarray
    cls: str
    points: np.ndarray | None = None
    ground_z: float = 0.0


FOOTPRINT_SCALES = (0.85, 0.9, 0.95, 1.0)


def shrunk_size(sizes: np.ndarray, prior: np.ndarray | None, prior_spread: float = 0.05, box_spread: float = 0.1,
                pseudo_boxes: float = 2.0, shift_spread: float = 0.5, shift_prob: float = 0.1) -> np.ndarray:
    """(3,) class size (m) from the (n,3) sizes of its boxes, shrunk towards ``prior`` (3,).

    Empirical Bayes per dimension. Each box is drawn around the class's true mean size with the
    class's spread s; the true mean is drawn around the prior from a mixture: within
    ``prior_spread`` x prior (standard deviation) of it with probability 1 - ``shift_prob`` (the
    user's boxes follow KITTI's conventions), or within ``shift_spread`` x prior (another dataset's
    conventions: a walking person's box 0.4 m long where KITTI's are 0.8 m). The posterior mean
    weighs the two components by how well each explains the boxes' mean; within each, the prior
    counts as s^2 / spread^2 boxes. So a few boxes that agree among themselves far from the prior
    outweigh it, one box far from it moves the size only part of the way, scattered boxes need many.
    s^2 is the boxes' variance pooled with ``box_spread`` x prior (a typical within-class spread)
    counted as ``pseudo_boxes`` observations, so one box or boxes of one size do not claim
    certainty. Without a prior: the boxes' mean."""
    sizes = np.asarray(sizes, np.float64).reshape(-1, 3)
    mean = sizes.mean(0)
    if prior is None:
        return mean
    prior = np.asarray(prior, np.float64)
    n = len(sizes)
    ss = ((sizes - mean) ** 2).sum(0)
    var = (pseudo_boxes * (box_spread * prior) ** 2 + ss) / (pseudo_boxes + n - 1)
    post, evidence = [], []
    for spread, p in ((prior_spread, 1.0 - shift_prob), (shift_spread, shift_prob)):
        tau2 = (spread * prior) ** 2
        sd = np.sqrt(var / n + tau2)  # the boxes' mean around the prior under this component
        evidence.append(np.log(p) - np.log(sd) - 0.5 * ((mean - prior) / sd) ** 2)
        w = var / tau2  # the prior's weight, in boxes
        post.append((n * mean + w * prior) / (n + w))
    e = np.array(evidence)
    r = np.exp(e - e.max(0))
    r /= r.sum(0)
    return (r * np.array(post)).sum(0)


def fit_box_geometry(objects: Iterable[BoxedObject], prior_spread: float = 0.05, scales: tuple[float, ...] = FOOTPRINT_SCALES,
                     min_objects: int = 5, defaults: dict[str, tuple[float, float, float]] | None = None,
                     sensor: np.ndarray = np.zeros(3)) -> BoxGeometry:
    """Class sizes learned from the objects of fully boxed frames.

    Each class's size is its boxes' mean shrunk towards ``defaults`` (KITTI's means) by
    ``shrunk_size``: the fewer and the more scattered the boxes, the nearer the default. Where at
    least ``min_objects`` of a class come with visible points, the footprint (length and width) is
    then scaled by the factor of ``scales`` under which ``fit_box`` on those points best matches
    their boxes (mean bird's-eye-view IoU): a box grows to the class size only where the object is
    seen in part, so a size a little under the mean costs less on small objects than it gains on
    partial views. Classes without a default and without boxes have no size (their boxes keep the
    visible extents)."""
    defaults = dict(KITTI_SIZE_PRIORS if defaults is None else defaults)
    objects = list(objects)
    acc: dict[str, list[np.ndarray]] = {}
    for o in objects:
        acc.setdefault(str(o.cls), []).append(np.asarray(o.box, np.float64)[3:6])
    sizes, counts = dict(defaults), {}
    for name, rows in acc.items():
        sizes[name] = tuple(float(x) for x in shrunk_size(np.asarray(rows), defaults.get(name), prior_spread))
        counts[name] = len(rows)
    for name in acc:
        seen = [o for o in objects if o.cls == name and o.points is not None and len(o.points) >= 3]
        if len(seen) < min_objects:
            continue
        L, W, H = sizes[name]
        best = max(scales, key=lambda sc: np.mean([
            box_iou(np.asarray(o.box, np.float64)[None], fit_box(o.points, name, o.ground_z, sensor,
                                                                 BoxGeometry({name: (L * sc, W * sc, H)}))[None], "bev")[0, 0]
            for o in seen]))
        sizes[name] = (L * best, W * best, H)
    return BoxGeometry(sizes, counts)


GROUND_QUERIES_AT_ONCE = 64


def local_ground(coord: np.ndarray, query: np.ndarray, radius: float = 3.0, quantile: float = 0.05, tree=None) -> np.ndarray:
    """(Q,) ground height under each query point: the ``quantile`` of z among scan points within
    ``radius`` m in bird's-eye view (the query's own z where it has no neighbour)."""
    from scipy.spatial import cKDTree
    tree = cKDTree(coord[:, :2]) if tree is None else tree
    out = np.empty(len(query))
    for a in range(0, len(query), GROUND_QUERIES_AT_ONCE):  # each answer a list of its 10^3-10^4 neighbours
        for i, nb in enumerate(tree.query_ball_point(query[a:a + GROUND_QUERIES_AT_ONCE, :2], radius, workers=-1), a):
            out[i] = np.quantile(coord[nb, 2], quantile) if len(nb) else query[i, 2]
    return out


def lshape_yaw(xy: np.ndarray, step_deg: float = 1.0, min_distance: float = 0.01, size: tuple[float, float] | None = None,
               overflow_tol: float = 0.3, trim: float = 0.0) -> float:
    """Heading in [0, pi/2) of the rectangle whose edges the (N,2) points hug: the closeness
    criterion (each point scores 1 / its distance to the nearer of the two edges the points lie
    closest to, distances floored at ``min_distance`` m), searched every ``step_deg`` degrees."""
    th = np.radians(np.arange(0.0, 90.0, step_deg))
    c1 = xy @ np.stack([np.cos(th), np.sin(th)])  # (N,T) along the first edge direction
    c2 = xy @ np.stack([-np.sin(th), np.cos(th)])

    def edge_distance(c: np.ndarray) -> np.ndarray:
        lo, hi = c - c.min(0), c.max(0) - c
        return np.where(np.linalg.norm(lo, axis=0) <= np.linalg.norm(hi, axis=0), lo, hi)

    d = np.maximum(np.minimum(edge_distance(c1), edge_distance(c2)), min_distance)
    score = (1.0 / d).sum(0)
    if size is not None:
        e1, e2 = (np.diff(np.quantile(c, [trim, 1 - trim], axis=0), axis=0)[0] for c in (c1, c2))
        L, W = max(size), min(size)
        over = np.minimum(np.maximum(e1 - L, 0) + np.maximum(e2 - W, 0), np.maximum(e1 - W, 0) + np.maximum(e2 - L, 0))
        score = np.where(over <= over.min() + overflow_tol, score, -np.inf)
    return float(th[int(np.argmax(score))])


def _extents(xy: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of the (N,2) points along the box axes (cos, sin) and (-sin, cos) of ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    loc = xy @ np.array([[c, -s], [s, c]])
    return loc.min(0), loc.max(0)


def fit_box(pts: np.ndarray, cls: str, ground_z: float, sensor: np.ndarray = np.zeros(3),
            geometry: BoxGeometry | None = None, lshape_min_points: int = 12, overflow_tol: float = 0.3,
            trim: float = 0.01, trim_min_points: int = 50) -> np.ndarray:
    """(7,) box ``[x,y,z,l,w,h,yaw]`` around an object's (N,3) visible points, standing on
    ``ground_z``, completed with the class size of ``geometry`` (KITTI means by default) away
    from the ``sensor``.

    Heading: with ``lshape_min_points`` points or more, the L-shape fit among the headings under
    which the points fit in the class's footprint best (overflow within ``overflow_tol`` m of the
    least: a car seen from behind shows its roof lines inside the outline, which the closeness
    criterion alone turns askew); with fewer, the minimum-area rectangle. Length goes along the
    longer visible side, unless that side is shorter than 0.6 of the class length: then a face
    across the viewing ray is taken for the width (a car seen from behind), a face along it for
    the length. An axis whose visible extent is below the class size grows to it on the side
    away from the sensor (the unseen side)."""
    pts = np.asarray(pts, np.float64)
    size = (geometry or BoxGeometry()).size(cls)
    trim = trim if len(pts) >= trim_min_points else 0.0
    if len(pts) >= lshape_min_points:
        yaw = lshape_yaw(pts[:, :2] - pts[:, :2].mean(0), size=None if size is None else size[:2], overflow_tol=overflow_tol,
                         trim=trim)
    else:
        yaw = float(oriented_box(pts)[6])
    lo, hi = _extents(pts[:, :2], yaw)
    ext = hi - lo
    L, W, H = size if size is not None else (float(ext.max()), float(ext.min()), float(np.ptp(pts[:, 2])))
    wide = W > L  # a class wider than long (pedestrians in some label sets): fit as long, turn at the end
    if wide:
        L, W = W, L
    centre_loc = (lo + hi) / 2
    long_axis = int(ext[1] > ext[0])
    c, s = math.cos(yaw), math.sin(yaw)
    axes = np.array([[c, s], [-s, c]])
    centre = axes.T @ centre_loc
    if ext[long_axis] < 0.6 * L:
        # a partial view, mostly one face: across the viewing ray it is the front or back (the
        # width), along it the side (the length)
        ray = centre - sensor[:2]
        ray = ray / max(float(np.linalg.norm(ray)), 1e-9)
        if abs(float(axes[long_axis] @ ray)) < math.cos(math.radians(45)):
            long_axis = 1 - long_axis
    dims = np.empty(2)
    for k, prior in ((long_axis, L), (1 - long_axis, W)):
        dims[k] = ext[k]
        if ext[k] < prior:
            away = float(np.sign(axes[k] @ (centre - sensor[:2]))) or 1.0
            centre = centre + axes[k] * away * (prior - ext[k]) / 2  # grow on the unseen (far) side
            dims[k] = prior
    if long_axis == 1:
        yaw += math.pi / 2
    top = max(float(pts[:, 2].max()), ground_z + 0.5 * H)
    h = max(top - ground_z, H * 0.8)
    length, width = dims[long_axis], dims[1 - long_axis]
    if wide:
        length, width, yaw = width, length, yaw + math.pi / 2
    yaw = (yaw + math.pi / 2) % math.pi - math.pi / 2
    return np.array([centre[0], centre[1], ground_z + h / 2, length, width, h, yaw])


def check_geometry(geometry: Any, what: str = "geometry") -> BoxGeometry | None:
    """``geometry`` as a BoxGeometry: None, a BoxGeometry, or its ``to_dict`` form."""
    if geometry is None or isinstance(geometry, BoxGeometry):
        return geometry
    try:
        return BoxGeometry.from_dict(geometry, what)
    except ValueError as e:
        raise SceneError(str(e)) from None

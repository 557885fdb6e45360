"""3D pseudo boxes for every LiDAR object from one click each (WS3D) or from its cluster label
(MixSup), with the object geometry taught by a few fully boxed frames.

Clicks: each click is a point on an object with its class. The object's points are the
above-ground points connected to the click (links of at most ``link_radius`` m) within the
class's reach (the diagonal of its footprint, a click can sit at either end); points reached
from several clicks go to the nearest click. Clusters: the labelled points of each cluster are
the object's points (ground points dropped). Either way ``box_fit.fit_box`` turns the points
into an amodal box with the class sizes of ``geometry`` (``fit_box_geometry`` on the boxed
frames; KITTI's means without them). A weak file that holds boxes is a fully boxed frame: its
boxes are the pseudo boxes, with confidence 1 (``given_boxes``, which ``registry.label`` calls
for such a frame instead of the labeller, for every box labeller alike). Each box names its
weak label in ``extras``: ``click_index`` (the clicked point) or ``cluster`` (the position of
its cluster among the sorted distinct ``point_instance`` ids), which self-training checks
detections against (``pseudo.agreement``).
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterable

import numpy as np

from ..errors import SceneError
from ..geometry import points_in_boxes, radius_components
from ..scene import PseudoLabels, Scene, WeakLabels
from .box_fit import BoxedObject, BoxGeometry, check_geometry, fit_box, fit_box_geometry, local_ground


class GroundHeights:
    """Local ground height (``box_fit.local_ground``, m) under points of one scan, evaluated at
    the centre of each ``cell`` m bird's-eye-view cell and kept: the labellers ask about the same
    cells again and again (each frustum, each grown cluster, each box's footprint; 3-5 times per
    cell on a KITTI-like frame), so each cell is computed once per scan.

    ``coord``: the scan's (N,3) points; ``.tree``, the ``cKDTree`` over ``coord[:, :2]`` built
    here, serves the callers' own bird's-eye-view queries too."""

    def __init__(self, coord: np.ndarray, radius: float = 3.0, cell: float = 0.5):
        from scipy.spatial import cKDTree
        self.coord, self.radius, self.cell = coord, float(radius), float(cell)
        self.tree = cKDTree(coord[:, :2])
        self._known: dict[tuple[int, int], float] = {}

    def __call__(self, query: np.ndarray) -> np.ndarray:
        """(Q,) float64 ground height under each of the (Q,>=2) ``query`` points."""
        key = np.floor(np.asarray(query, np.float64)[:, :2] / self.cell).astype(np.int64)
        uk, inv = np.unique(key, axis=0, return_inverse=True)
        cells = [(int(a), int(b)) for a, b in uk]
        new = [i for i, c in enumerate(cells) if c not in self._known]
        if new:
            centres = np.concatenate([(uk[new] + 0.5) * self.cell, np.zeros((len(new), 1))], 1)
            for i, z in zip(new, local_ground(self.coord, centres, self.radius, tree=self.tree)):
                self._known[cells[i]] = float(z)
        return np.array([self._known[c] for c in cells], np.float64)[inv.ravel()]


def boxes_to_pseudo(scene: Scene, boxes: np.ndarray, box_semantic: np.ndarray, box_confidence: np.ndarray, method: str,
                    params: dict[str, Any], stats: dict[str, Any], extras: dict[str, np.ndarray] | None = None) -> PseudoLabels:
    """PseudoLabels of a LiDAR scene from its pseudo boxes: points inside a box take its class,
    instance (the box index) and confidence; the others are background (where the scene has
    that class, confidence 0.5) or unlabelled."""
    B = np.asarray(boxes, np.float64).reshape(-1, 7)
    sem = np.asarray(box_semantic, np.int64).reshape(-1)
    conf = np.asarray(box_confidence, np.float32).reshape(-1)
    semantic = np.full(scene.num_points, -1, np.int64)
    instance = np.full(scene.num_points, -1, np.int64)
    confidence = np.full(scene.num_points, 0.5, np.float32)
    if "background" in scene.classes:
        semantic[:] = scene.classes.index("background")
    if len(B):
        inside = points_in_boxes(scene.coord, B)
        hit = inside.any(1)
        first = inside.argmax(1)
        semantic[hit] = sem[first[hit]]
        instance[hit] = first[hit]
        confidence[hit] = conf[first[hit]]
    return PseudoLabels(semantic=semantic, instance=instance, confidence=confidence, method=method, classes=scene.classes,
                        box=B.astype(np.float32), box_semantic=sem, box_confidence=conf, extras=extras or {},
                        params=json.dumps(params, sort_keys=True), stats=json.dumps(stats))


def given_boxes(scene: Scene, weak: WeakLabels, method: str, params: dict[str, Any]) -> PseudoLabels:
    """A fully boxed frame's own boxes (``weak.box``) as its pseudo-labels, confidence 1."""
    sem = weak.box_semantic if weak.box_semantic is not None else np.full(len(weak.box), -1, np.int64)
    return boxes_to_pseudo(scene, weak.box, sem, np.ones(len(weak.box), np.float32), method, params,
                           {"boxed_frame": True, "boxes": int(len(weak.box))})


def _confidence(n_points: int, pts: np.ndarray, box: np.ndarray) -> float:
    """More points, more trust; a visible extent well past the box (an object merged with its
    surroundings) halves it."""
    c = 1.0 - math.exp(-n_points / 30.0)
    cz, sz = math.cos(box[6]), math.sin(box[6])
    loc = (pts[:, :2] - box[:2]) @ np.array([[cz, -sz], [sz, cz]])
    if (np.ptp(loc, 0) > 1.3 * box[3:5] + 0.2).any():
        c *= 0.5
    return c


def _fit_all(scene: Scene, groups: list[np.ndarray], classes: list[int], geometry: BoxGeometry | None,
             ground: GroundHeights, min_points: int, trim: float) -> tuple[list[np.ndarray], list[int], list[float], list[int], list[int]]:
    boxes, sem, conf, counts, source = [], [], [], [], []
    for k, (idx, c) in enumerate(zip(groups, classes)):
        if len(idx) < min_points:
            continue
        pts = scene.coord[idx].astype(np.float64)
        name = scene.classes[c] if 0 <= c < len(scene.classes) else ""
        gz = float(np.median(ground(pts)))
        b = fit_box(pts, name, gz, geometry=geometry, trim=trim)
        boxes.append(b)
        sem.append(int(c))
        conf.append(_confidence(len(idx), pts, b))
        counts.append(int(len(idx)))
        source.append(k)
    return boxes, sem, conf, counts, source


def click_objects(scene: Scene, click_index: np.ndarray, click_class: np.ndarray, geometry: BoxGeometry | None = None,
                  ground_tol: float = 0.2, ground_radius: float = 3.0, link_radius: float = 1.0, reach: float = 1.0,
                  ground: GroundHeights | None = None, join_parts: bool = False) -> list[np.ndarray]:
    """The points of the object each click (a point index with its class id) is on: see the
    module docstring. ``reach`` scales each class's search radius (its footprint diagonal);
    ``ground``: the scan's ``GroundHeights`` (made with ``ground_radius`` when None)."""
    geometry = geometry or BoxGeometry()
    coord = scene.coord
    ground = GroundHeights(coord, ground_radius) if ground is None else ground
    tree = ground.tree
    clicks = np.asarray(click_index, np.int64)
    radius = []
    for c in np.asarray(click_class, np.int64):
        size = geometry.size(scene.classes[c]) if 0 <= c < len(scene.classes) else None
        radius.append(reach * (math.hypot(size[0], size[1]) if size is not None else 2.0))
    near = [np.asarray(nb, np.int64) for nb in
            (tree.query_ball_point(coord[clicks, :2], radius, workers=-1) if len(clicks) else [])]
    cand = np.unique(np.concatenate(near + [clicks])) if len(clicks) else np.zeros(0, np.int64)
    if not len(cand):
        return []
    g = ground(coord[cand].astype(np.float64))
    keep = (coord[cand, 2] - g > ground_tol) | np.isin(cand, clicks)
    cand = cand[keep]
    pos = {int(p): i for i, p in enumerate(cand)}
    comp = radius_components(coord[cand], link_radius)
    owner = np.full(len(cand), -1, np.int64)
    best = np.full(len(cand), np.inf)
    comp_size = np.bincount(comp)
    for k, (p, nb) in enumerate(zip(clicks, near)):
        members = np.unique(np.array([pos[int(q)] for q in nb if int(q) in pos] + [pos[int(p)]], np.int64))
        if join_parts:  # pieces wholly within reach: the same object cut by an occluder's shadow
            inside = np.bincount(comp[members], minlength=len(comp_size))
            whole = (inside == comp_size) & (inside > 0)
            whole[comp[pos[int(p)]]] = True
            members = members[whole[comp[members]]]
        else:
            members = members[comp[members] == comp[pos[int(p)]]]
        d = np.linalg.norm(coord[cand[members], :2] - coord[p, :2], axis=1) / max(radius[k], 1e-6)
        closer = d < best[members]
        owner[members[closer]], best[members[closer]] = k, d[closer]
    return [cand[owner == k] for k in range(len(clicks))]


def click_boxes(scene: Scene, weak: WeakLabels, geometry: Any = None, *, ground_tol: float = 0.2, ground_radius: float = 3.0,
                link_radius: float = 1.0, reach: float = 1.0, min_points: int = 3, trim: float = 0.01) -> PseudoLabels:
    """One pseudo box per click (``weak.point_index`` / ``point_semantic``), see the module
    docstring; clicks on fewer than ``min_points`` object points give no box. ``geometry``: a
    ``BoxGeometry`` or its ``to_dict`` form (None: KITTI's mean sizes). ``trim``: the share of
    an object's points (from 50 points on) each side may leave outside the class footprint when
    the heading is chosen (mirrors stick out of KITTI's car boxes). Distances in metres."""
    geo = check_geometry(geometry)
    params = {"ground_tol": ground_tol, "ground_radius": ground_radius, "link_radius": link_radius, "reach": reach,
              "min_points": min_points, "trim": trim, "geometry": None if geo is None else geo.to_dict()}
    if weak.point_index is None or weak.point_semantic is None:
        raise SceneError(f"weak labels of {scene.name!r}: click-boxes needs clicks (point_index, point_semantic) or boxes")
    ground = GroundHeights(scene.coord, ground_radius)
    ok = weak.point_semantic >= 0
    idx, cls = weak.point_index[ok], weak.point_semantic[ok]
    groups = click_objects(scene, idx, cls, geo, ground_tol, ground_radius, link_radius, reach, ground)
    boxes, sem, conf, counts, source = _fit_all(scene, groups, list(cls), geo, ground, min_points, trim)
    return boxes_to_pseudo(scene, np.array(boxes).reshape(-1, 7), np.array(sem, np.int64), np.array(conf), "click-boxes", params,
                           {"clicks": int(len(idx)), "boxes": len(boxes), "object_points": counts},
                           {"click_index": np.asarray(idx[source], np.int64)})


def cluster_objects(scene: Scene, weak: WeakLabels, ground_tol: float = 0.2, ground_radius: float = 3.0,
                    ground: GroundHeights | None = None) -> tuple[list[np.ndarray], list[int]]:
    """Each labelled cluster's (``point_instance``) above-ground points and majority class;
    ``ground``: the scan's ``GroundHeights`` (made with ``ground_radius`` when None)."""
    if weak.point_index is None or weak.point_semantic is None or weak.point_instance is None:
        raise SceneError(f"weak labels of {scene.name!r}: cluster-boxes needs cluster labels "
                         "(point_index, point_semantic, point_instance) or boxes")
    ground = GroundHeights(scene.coord, ground_radius) if ground is None else ground
    ok = (weak.point_semantic >= 0) & (weak.point_instance >= 0)
    idx, sem, inst = weak.point_index[ok], weak.point_semantic[ok], weak.point_instance[ok]
    groups, classes = [], []
    if not len(idx):
        return groups, classes
    g = ground(scene.coord[idx].astype(np.float64))
    above = scene.coord[idx, 2] - g > ground_tol
    for k in np.unique(inst):
        m = inst == k
        sel = m & above
        groups.append(idx[sel] if sel.sum() >= 3 else idx[m])
        classes.append(int(np.bincount(sem[m]).argmax()))
    return groups, classes


def cluster_boxes(scene: Scene, weak: WeakLabels, geometry: Any = None, *, ground_tol: float = 0.2, ground_radius: float = 3.0,
                  min_points: int = 3, trim: float = 0.01) -> PseudoLabels:
    """One pseudo box per labelled cluster (MixSup's cluster-level labels), see the module
    docstring and ``click_boxes`` for the settings."""
    geo = check_geometry(geometry)
    params = {"ground_tol": ground_tol, "ground_radius": ground_radius, "min_points": min_points, "trim": trim,
              "geometry": None if geo is None else geo.to_dict()}
    ground = GroundHeights(scene.coord, ground_radius)
    groups, classes = cluster_objects(scene, weak, ground_tol, ground_radius, ground)
    boxes, sem, conf, counts, source = _fit_all(scene, groups, classes, geo, ground, min_points, trim)
    return boxes_to_pseudo(scene, np.array(boxes).reshape(-1, 7), np.array(sem, np.int64), np.array(conf), "cluster-boxes",
                           params, {"clusters": len(groups), "boxes": len(boxes), "object_points": counts},
                           {"cluster": np.asarray(source, np.int64)})


def boxed_objects(scene: Scene, boxes: np.ndarray, box_semantic: np.ndarray, ground_tol: float = 0.2,
                  ground_radius: float = 3.0) -> list[BoxedObject]:
    """The objects of a fully boxed frame, with their visible above-ground points."""
    ground = GroundHeights(scene.coord, ground_radius)
    B = np.asarray(boxes, np.float64).reshape(-1, 7)
    inside = points_in_boxes(scene.coord, B) if len(B) else np.zeros((scene.num_points, 0), bool)
    out = []
    for k, c in enumerate(np.asarray(box_semantic, np.int64).reshape(-1)):
        if not 0 <= c < len(scene.classes):
            continue
        idx = np.flatnonzero(inside[:, k])
        pts, gz = None, float(B[k, 2] - B[k, 5] / 2)
        if len(idx):
            g = ground(scene.coord[idx].astype(np.float64))
            idx = idx[scene.coord[idx, 2] - g > ground_tol]
            pts, gz = scene.coord[idx].astype(np.float64), float(np.median(g))
        out.append(BoxedObject(B[k], scene.classes[c], pts, gz))
    return out


def learn_box_geometry(frames: Iterable[tuple[Scene, WeakLabels]], **kwargs: Any) -> BoxGeometry:
    """``fit_box_geometry`` on the frames whose weak labels hold boxes (the others are skipped)."""
    objects: list[BoxedObject] = []
    for scene, weak in frames:
        if weak.box is not None and weak.box_semantic is not None:
            objects += boxed_objects(scene, weak.box, weak.box_semantic)
    return fit_box_geometry(objects, **kwargs)

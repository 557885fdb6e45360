"""3D pseudo boxes from 2D image boxes (FGR-like), for KITTI-style LiDAR + camera scenes.

For every image box: the LiDAR points that project inside it (camera in front) form a frustum;
ground points are removed against the local ground height (a low z-quantile of the scan within
``ground_radius`` metres in bird's-eye view; one global plane is off by most of a metre at 60 m
on real roads); the rest is clustered (ball-query connected components). A frustum also holds
whatever stands in front of the object or behind it, often more points than the object itself
when the object is far or half hidden. So each cluster is grown in the whole scan (above-ground
points within the class's footprint diagonal + 1 m, linked at ``cluster_radius``) and its
*spill* is measured: the share of the grown points projecting into the image whose projection
falls outside the image box (enlarged by ``pad``; beyond the image border, where an object the
border cuts continues, nothing can be judged). The object lies within its own image box; an
occluder or the background continues outside it. The object is the largest cluster with spill <= ``max_spill`` (nearest on
ties; the largest of all when none qualifies, at half the confidence). One cluster is one object:
where two image boxes would take the same cluster (an occluder whose own image box lies inside
the occluded object's), the box whose area the cluster's projection fills best keeps it and the
other takes its next choice. ``box_fit.fit_box`` turns its points into an amodal box (L-shape heading, the
class's size completing what the sensor does not see, standing on the ground); the class sizes
are those the fully boxed frames teach (``geometry``), as for click and cluster boxes, or where
no frame has 3D boxes, the footprints the image boxes teach (``learn_sizes_from_image_boxes``).
Where that box projects poorly onto its image box (a far or half-hidden object: a few points
leave heading and position open), ``match_image_box`` moves and turns it until its projection
matches the image box (FGR's frustum constraint; KITTI's annotated image boxes match the
projections of its 3D boxes at IoU 0.98-0.99 for cars).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np
import torch

from .. import ops
from ..camera import project
from ..errors import SceneError
from ..geometry import box_corners, graph_components, image_box_overlap, projected_hull
from ..params import Seed
from ..scene import PseudoLabels, Scene
from .box_fit import BoxGeometry, check_geometry, fit_box
from .object_boxes import GroundHeights, boxes_to_pseudo

def _in_image_box(uv: np.ndarray, z: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(N,) bool: projected points ``uv`` (N,2) px in front of the camera (depth ``z`` > 0.5 m)
    inside ``box`` = (x1, y1, x2, y2) px."""
    x1, y1, x2, y2 = box
    return (z > 0.5) & (uv[:, 0] >= x1) & (uv[:, 0] <= x2) & (uv[:, 1] >= y1) & (uv[:, 1] <= y2)


def _components(points: np.ndarray, radius: float) -> np.ndarray:
    """(N,) component id of each of ``points`` (N,3), linked within ``radius`` m (ball query, 32
    neighbours)."""
    pts = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    nb = ops.ball_query(pts, pts, radius, 32).idx.numpy()
    r = np.repeat(np.arange(len(points)), nb.shape[1])
    c = nb.ravel()
    ok = c >= 0
    return graph_components(len(points), r[ok], c[ok])


def _grow(coord: np.ndarray, ground: GroundHeights, members: np.ndarray, reach: float, link: float,
          ground_tol: float) -> np.ndarray:
    """Indices of the above-ground points within ``reach`` m (bird's-eye view) of the cluster
    ``members`` (point indices) that are linked to it at ``link`` m: the cluster as the whole
    scan, not only the frustum, shows it."""
    near = np.asarray(ground.tree.query_ball_point(coord[members, :2].mean(0), reach), np.int64)
    near = near[coord[near, 2] - ground(coord[near].astype(np.float64)) > ground_tol]
    near = np.union1d(near, members)
    comp = _components(coord[near], link)
    return near[np.isin(comp, comp[np.isin(near, members)])]


class FrustumObject(NamedTuple):
    """The LiDAR object an image box holds: index of the image box, class name, the object's
    (N,3) points above the ground, the ground height under it (m), its frame index, and whether
    every cluster of its frustum spilled out of the image box (a less trusted choice)."""
    box2d: int
    cls: str
    points: np.ndarray
    ground_z: float
    frame: int
    spilled: bool


def frustum_objects(scene: Scene, box2d: Any, box2d_semantic: Any, box2d_frame: Any | None = None, geometry: Any = None, *,
                    shrink: float = 0.02, ground_tol: float = 0.2, ground_radius: float = 3.0, cluster_radius: float = 0.6,
                    min_points: int = 3, max_spill: float = 0.2, pad: float = 0.1) -> Iterator[FrustumObject]:
    """The object of each image box (those with fewer than ``min_points`` object points are
    skipped); see the module docstring and ``frustum_boxes`` for the arguments."""
    geo = check_geometry(geometry)
    b2 = np.asarray(box2d, np.float64).reshape(-1, 4)
    lab = np.asarray(box2d_semantic, np.int64).reshape(-1)
    frm = np.zeros(len(b2), np.int64) if box2d_frame is None else np.asarray(box2d_frame, np.int64).reshape(-1)
    if not scene.frames:
        raise SceneError(f"scene {scene.name!r}: no camera frame to project into (KITTI needs calib and image_2)")
    ground = GroundHeights(scene.coord, ground_radius)
    projected: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # each frame's projection of the scan, once
    found: list[tuple[int, str, int, list[tuple[np.ndarray, float, int, float, float]]]] = []
    for k in range(len(b2)):
        fi = int(frm[k])
        if fi not in projected:
            f = scene.frames[fi]
            projected[fi] = project(scene.coord, f.intrinsics, f.pose)
        uv, z = projected[fi]
        x1, y1, x2, y2 = b2[k]
        dx, dy = shrink * (x2 - x1), shrink * (y2 - y1)
        idx = np.flatnonzero(_in_image_box(uv, z, (x1 + dx, y1 + dy, x2 - dx, y2 - dy)))
        g = ground(scene.coord[idx].astype(np.float64))
        idx = idx[scene.coord[idx, 2] - g > ground_tol]
        if len(idx) < min_points:
            continue
        comp = _components(scene.coord[idx], cluster_radius)
        sizes = np.bincount(comp)
        cls = scene.classes[lab[k]] if 0 <= lab[k] < len(scene.classes) else ""
        size = (geo or BoxGeometry()).size(cls)
        reach = (math.hypot(size[0], size[1]) if size is not None else 2.0) + 1.0
        outer = (x1 - pad * (x2 - x1), y1 - pad * (y2 - y1), x2 + pad * (x2 - x1), y2 + pad * (y2 - y1))
        hw = scene.frame_image_size(fi)
        image = (0.0, 0.0, float(hw[1] - 1), float(hw[0] - 1)) if hw is not None else (-np.inf, -np.inf, np.inf, np.inf)
        cands = []  # (members, spill, size, distance, how well the members' projection fills the image box)
        for i in np.flatnonzero(sizes >= min_points):
            members = idx[comp == i]
            grown = _grow(scene.coord, ground, members, reach, cluster_radius, ground_tol)
            seen = _in_image_box(uv[grown], z[grown], image)  # beyond the image border nothing can be judged
            spill = 1.0 - _in_image_box(uv[grown][seen], z[grown][seen], outer).mean() if seen.any() else 1.0
            span = np.concatenate([uv[members].min(0), uv[members].max(0)])
            cands.append((members, float(spill), len(members), float(np.linalg.norm(scene.coord[members].mean(0))),
                          float(image_box_overlap(span, b2[k])[0, 0])))
        # the choice rule: spill within max_spill, then largest, then nearest
        found.append((k, cls, fi, sorted(cands, key=lambda c: (c[1] > max_spill, -c[2], c[3]))))
    # one cluster is one object: where two image boxes would take the same cluster (an occluder
    # whose own image box lies inside the occluded object's), the box it fills best keeps it and
    # the other takes its next choice
    claimed = np.zeros(scene.num_points, bool)
    chosen: dict[int, tuple[str, int, np.ndarray, bool]] = {}
    for k, cls, fi, cands in sorted(found, key=lambda t: -(t[3][0][4] if t[3] else 0.0)):
        for members, spill, _, _, _ in cands:
            if claimed[members].mean() <= 0.5:
                claimed[members] = True
                chosen[k] = (cls, fi, members, spill > max_spill)
                break
    for k in sorted(chosen):
        cls, fi, members, spilled = chosen[k]
        obj = scene.coord[members].astype(np.float64)
        gz = float(np.median(ground(obj)))
        yield FrustumObject(k, cls, obj, gz, fi, bool(spilled))


def match_image_box(box: np.ndarray, points: np.ndarray, box2d: np.ndarray, P: np.ndarray,
                    image_size: tuple[int, int] | None, span: float = 1.0, step: float = 0.2, yaw_step_deg: float = 5.0,
                    margin: float = 0.05) -> np.ndarray:
    """(7,) the box of ``box``'s size, moved by up to ``span`` m in x and y (grid ``step``) and
    turned to any heading (every ``yaw_step_deg`` degrees), that maximises the IoU of its
    projection (``P``: 3x4 LiDAR-to-pixel matrix, clipped to ``image_size`` (height, width))
    with ``box2d`` (4,) ``[x1,y1,x2,y2]`` px plus the share of the object's (N,3) ``points``
    inside its footprint (enlarged by ``margin`` m): the image box fixes the extent the points
    leave open, the points keep the box on the object."""
    box, points = np.asarray(box, np.float64), np.asarray(points, np.float64)
    off = np.arange(-span, span + 1e-9, step)
    yaw = box[6] + np.radians(np.arange(-90.0, 90.0, yaw_step_deg))
    dx, dy, th = (a.ravel() for a in np.meshgrid(off, off, yaw, indexing="ij"))
    cand = np.tile(box, (len(dx), 1))
    cand[:, 0] += dx
    cand[:, 1] += dy
    cand[:, 6] = th
    iou = image_box_overlap(projected_hull(box_corners(cand), P, image_size), np.asarray(box2d, np.float64))[:, 0]
    c, s = np.cos(th)[:, None], np.sin(th)[:, None]
    rx, ry = points[None, :, 0] - cand[:, None, 0], points[None, :, 1] - cand[:, None, 1]
    inside = ((np.abs(rx * c + ry * s) <= cand[:, None, 3] / 2 + margin)
              & (np.abs(ry * c - rx * s) <= cand[:, None, 4] / 2 + margin)).mean(1)
    best = cand[int(np.argmax(iou + inside))]
    best[6] = (best[6] + math.pi / 2) % math.pi - math.pi / 2
    return best


def frustum_boxes(scene: Scene, box2d: Any, box2d_semantic: Any, box2d_frame: Any | None = None, geometry: Any = None, *,
                  shrink: float = 0.02, ground_tol: float = 0.2, ground_radius: float = 3.0, cluster_radius: float = 0.6,
                  min_points: int = 3, trim: float = 0.01, max_spill: float = 0.2, pad: float = 0.1,
                  image_fit_below: float = 0.85, image_fit_elongation: float = 1.5, seed: Seed = 0) -> PseudoLabels:
    """Pseudo 3D boxes (and per-point labels) from image boxes; see the module docstring.

    Args: box2d (B,4) ``[x1,y1,x2,y2]`` px in the frames given by ``box2d_frame`` (default 0),
    box2d_semantic (B,) class ids of ``scene.classes``. ``geometry``: a ``BoxGeometry`` or its
    ``to_dict`` form (None: KITTI's mean sizes); ``trim`` as in ``click_boxes``. ``shrink``: the
    share of the image box's width and height cut from each side before the frustum is taken (an
    edge pixel may be background; more cuts a car's outline, which turns its heading).
    ``max_spill`` (share) and ``pad`` (share of the image box's width and height) choose the
    object among the clusters. A fitted box whose projection overlaps its image box at IoU below
    ``image_fit_below`` is matched to it (``match_image_box``; 0 turns this off), for classes
    whose footprint is at least ``image_fit_elongation`` times longer than wide: turning a
    near-square footprint hardly changes its projection, so there the match would follow the
    error of the box's height into depth instead. Boxes with fewer
    than ``min_points`` object points are dropped (their confidence would be 0). Distances in
    metres."""
    geo = check_geometry(geometry)
    boxes, sem, conf, counts, source = [], [], [], [], []
    spilled = matched = 0
    sensor = np.zeros(3)
    lab = np.asarray(box2d_semantic, np.int64).reshape(-1)
    b2 = np.asarray(box2d, np.float64).reshape(-1, 4)
    projections: dict[int, np.ndarray] = {}  # each frame's scene-to-pixel matrix, once
    for o in frustum_objects(scene, box2d, box2d_semantic, box2d_frame, geo, shrink=shrink, ground_tol=ground_tol,
                             ground_radius=ground_radius, cluster_radius=cluster_radius, min_points=min_points,
                             max_spill=max_spill, pad=pad):
        b = fit_box(o.points, o.cls, o.ground_z, sensor, geometry=geo, trim=trim)
        size = (geo or BoxGeometry()).size(o.cls)
        if image_fit_below > 0 and size is not None and max(size[:2]) >= image_fit_elongation * min(size[:2]):
            if o.frame not in projections:
                projections[o.frame] = scene.frames[o.frame].projection()
            P = projections[o.frame]
            hw = scene.frame_image_size(o.frame)
            if image_box_overlap(projected_hull(box_corners(b), P, hw), b2[o.box2d])[0, 0] < image_fit_below:
                b = match_image_box(b, o.points, b2[o.box2d], P, hw)
                matched += 1
        boxes.append(b)
        sem.append(lab[o.box2d])
        source.append(o.box2d)
        counts.append(len(o.points))
        # more points, more trust; no cluster that stays within the image box halves it
        conf.append(float(1 - np.exp(-len(o.points) / 30.0)) * (0.5 if o.spilled else 1.0))
        spilled += o.spilled
    params = {"shrink": shrink, "ground_tol": ground_tol, "ground_radius": ground_radius, "cluster_radius": cluster_radius,
              "min_points": min_points, "trim": trim, "max_spill": max_spill, "pad": pad, "image_fit_below": image_fit_below,
              "image_fit_elongation": image_fit_elongation, "seed": seed, "geometry": None if geo is None else geo.to_dict()}
    return boxes_to_pseudo(scene, np.array(boxes, np.float64).reshape(-1, 7), np.asarray(sem, np.int64), np.asarray(conf),
                           "boxes2d-frustum", params, {"object_points": counts, "spilled": spilled, "matched_to_image_box": matched}, {"box2d_index": np.asarray(source, np.int64)})


FOOTPRINT_GRID = tuple(np.round(np.arange(0.4, 1.31, 0.1), 2))


def learn_sizes_from_image_boxes(frames: Iterable[tuple[Scene, Any]], geometry: Any = None, *, min_objects: int = 5,
                                 min_points: int = 10, grid: tuple[float, ...] = FOOTPRINT_GRID, refine: float = 0.05,
                                 tolerance: float = 0.005, border_px: float = 2.0, progress: Any = None,
                                 **frustum_kw: Any) -> BoxGeometry:
    """Class footprints that 2D image boxes teach, for frames that have no 3D box at all.

    A 3D box of the right length and width, fitted to the object's points (``fit_box``), projects
    onto the image box drawn around the object; one too long or too wide projects wider. So each
    class's length and width are the multiples of the starting size (``geometry``'s, KITTI's means
    by default) under which the boxes fitted to the objects of ``frustum_objects`` project best
    onto their image boxes (mean image IoU): searched on ``grid`` x ``grid``, then in steps of
    ``refine`` around the best, taking the pair nearest to (1, 1) among those within
    ``tolerance`` of the best (a size the image boxes cannot tell apart stays the prior's). The
    height stays the starting one (``fit_box`` takes the visible top and uses the class height
    only as a floor, so image boxes say little about it). Only objects with ``min_points`` points
    or more whose image box does not touch the image border (``border_px``: a truncated box hides
    the extent) and whose cluster stayed inside it teach; classes with fewer than ``min_objects``
    such objects keep the starting size. ``frames``: (scene, weak labels with ``box2d``) pairs;
    ``frustum_kw``: ``frustum_objects``'s settings. ``counts`` of the result: the image boxes
    that taught each class."""
    from ..geometry import box_corners, projected_hull
    geo = check_geometry(geometry) or BoxGeometry()
    taught: dict[str, list[tuple[np.ndarray, float, np.ndarray, np.ndarray, tuple[int, int] | None]]] = {}
    for scene, weak in frames:
        if weak.box2d is None or not len(weak.box2d):
            continue
        b2 = np.asarray(weak.box2d, np.float64).reshape(-1, 4)
        for o in frustum_objects(scene, b2, weak.box2d_semantic, weak.box2d_frame, geo, **frustum_kw):
            hw = scene.frame_image_size(o.frame)
            x1, y1, x2, y2 = b2[o.box2d]
            inside = hw is None or (min(x1, y1) > border_px and x2 < hw[1] - 1 - border_px and y2 < hw[0] - 1 - border_px)
            if o.spilled or len(o.points) < min_points or not inside:
                continue
            taught.setdefault(o.cls, []).append((o.points, o.ground_z, b2[o.box2d], scene.frames[o.frame].projection(), hw))
        if progress is not None:
            progress(scene.name)
    sizes, counts = dict(geo.sizes), {}
    sensor = np.zeros(3)
    for cls, objs in sorted(taught.items()):
        if len(objs) < min_objects or geo.size(cls) is None:
            continue
        L, W, H = geo.size(cls)
        scores: dict[tuple[float, float], float] = {}

        def score(pairs: list[tuple[float, float]]) -> None:
            for a, b in pairs:
                if (a, b) not in scores:
                    g = BoxGeometry({cls: (L * a, W * b, H)})
                    scores[(a, b)] = float(np.mean([
                        image_box_overlap(projected_hull(box_corners(fit_box(pts, cls, gz, sensor, g)), P, hw), box)[0, 0]
                        for pts, gz, box, P, hw in objs]))

        score([(a, b) for a in grid for b in grid])
        a0, b0 = max(scores, key=scores.get)
        score([(round(a0 + i * refine, 3), round(b0 + j * refine, 3)) for i in (-1, 0, 1) for j in (-1, 0, 1)
               if a0 + i * refine > 0 and b0 + j * refine > 0])
        best = max(scores.values())
        sl, sw = min((k for k, v in scores.items() if v >= best - tolerance), key=lambda k: abs(math.log(k[0])) + abs(math.log(k[1])))
        sizes[cls] = (L * sl, W * sw, H)
        counts[cls] = len(objs)
    return BoxGeometry(sizes, counts)

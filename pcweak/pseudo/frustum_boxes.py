"""3D pseudo boxes from 2D image boxes (FGR-like), for KITTI-style LiDAR + camera scenes.

For every image box: the LiDAR points that project inside it (camera in front) form a frustum;
ground points are removed against the local ground height (a low z-quantile of the scan within
``ground_radius`` metres in bird's-eye view; one global plane is off by most of a metre at 60 m
on real roads); the rest is clustered (ball-query connected components). A frustum also holds
whatever stands in front of the object or behind it, often more points than the object itself
when the object is far or half hidden. So each cluster is grown in the whole scan (above-ground
points within the class's footprint diagonal + 1 m, linked at ``cluster_radius``) and its
*spill* is measured: the share of the grown points whose projection falls outside the image box
(enlarged by ``pad``). The object lies within its own image box; an occluder or the background
continues outside it. The object is the largest cluster with spill <= ``max_spill`` (nearest on
ties; the largest of all when none qualifies, at half the confidence). ``box_fit.fit_box`` turns its points into an amodal box (L-shape heading, the
class's size completing what the sensor does not see, standing on the ground); the class sizes
are those the fully boxed frames teach (``geometry``), as for click and cluster boxes.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .. import ops
from ..camera import project
from ..errors import SceneError
from ..scene import PseudoLabels, Scene
from .box_fit import BoxGeometry, check_geometry, fit_box
from .object_boxes import boxes_to_pseudo, ground_under

def _in_image_box(uv: np.ndarray, z: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(N,) bool: projected points ``uv`` (N,2) px in front of the camera (depth ``z`` > 0.5 m)
    inside ``box`` = (x1, y1, x2, y2) px."""
    x1, y1, x2, y2 = box
    return (z > 0.5) & (uv[:, 0] >= x1) & (uv[:, 0] <= x2) & (uv[:, 1] >= y1) & (uv[:, 1] <= y2)


def _components(points: np.ndarray, radius: float) -> np.ndarray:
    """(N,) component id of each of ``points`` (N,3), linked within ``radius`` m (ball query, 32
    neighbours)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    pts = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    nb = ops.ball_query(pts, pts, radius, 32).idx.numpy()
    r = np.repeat(np.arange(len(points)), nb.shape[1])
    c = nb.ravel()
    ok = c >= 0
    return connected_components(coo_matrix((np.ones(ok.sum()), (r[ok], c[ok])), shape=(len(points), len(points))),
                                directed=False)[1]


def _grow(coord: np.ndarray, tree: Any, members: np.ndarray, reach: float, link: float, ground_tol: float,
          ground_radius: float) -> np.ndarray:
    """Indices of the above-ground points within ``reach`` m (bird's-eye view) of the cluster
    ``members`` (point indices) that are linked to it at ``link`` m: the cluster as the whole
    scan, not only the frustum, shows it."""
    near = np.asarray(tree.query_ball_point(coord[members, :2].mean(0), reach), np.int64)
    near = near[coord[near, 2] - ground_under(coord, coord[near].astype(np.float64), tree, ground_radius) > ground_tol]
    near = np.union1d(near, members)
    comp = _components(coord[near], link)
    return near[np.isin(comp, comp[np.isin(near, members)])]


def frustum_boxes(scene: Scene, box2d: Any, box2d_semantic: Any, box2d_frame: Any | None = None, geometry: Any = None, *,
                  shrink: float = 0.02, ground_tol: float = 0.2, ground_radius: float = 3.0, cluster_radius: float = 0.6,
                  min_points: int = 3, trim: float = 0.01, max_spill: float = 0.2, pad: float = 0.1,
                  seed: int = 0) -> PseudoLabels:
    """Pseudo 3D boxes (and per-point labels) from image boxes; see the module docstring.

    Args: box2d (B,4) ``[x1,y1,x2,y2]`` px in the frames given by ``box2d_frame`` (default 0),
    box2d_semantic (B,) class ids of ``scene.classes``. ``geometry``: a ``BoxGeometry`` or its
    ``to_dict`` form (None: KITTI's mean sizes); ``trim`` as in ``click_boxes``. ``shrink``: the
    share of the image box's width and height cut from each side before the frustum is taken (an
    edge pixel may be background; more cuts a car's outline, which turns its heading).
    ``max_spill`` (share) and ``pad`` (share of the image box's width and height) choose the
    object among the clusters. Boxes with fewer
    than ``min_points`` object points are dropped (their confidence would be 0). Distances in
    metres."""
    geo = check_geometry(geometry)
    b2 = np.asarray(box2d, np.float64).reshape(-1, 4)
    lab = np.asarray(box2d_semantic, np.int64).reshape(-1)
    frm = np.zeros(len(b2), np.int64) if box2d_frame is None else np.asarray(box2d_frame, np.int64).reshape(-1)
    if not scene.frames:
        raise SceneError(f"scene {scene.name!r}: no camera frame to project into (KITTI needs calib and image_2)")
    from scipy.spatial import cKDTree
    tree = cKDTree(scene.coord[:, :2])
    boxes, sem, conf, counts, source = [], [], [], [], []
    spilled = 0
    sensor = np.zeros(3)
    projected: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # each frame's projection of the scan, once
    for k in range(len(b2)):
        fi = int(frm[k])
        if fi not in projected:
            f = scene.frames[fi]
            projected[fi] = project(scene.coord, f.intrinsics, f.pose)
        uv, z = projected[fi]
        x1, y1, x2, y2 = b2[k]
        dx, dy = shrink * (x2 - x1), shrink * (y2 - y1)
        idx = np.flatnonzero(_in_image_box(uv, z, (x1 + dx, y1 + dy, x2 - dx, y2 - dy)))
        g = ground_under(scene.coord, scene.coord[idx].astype(np.float64), tree, ground_radius)
        idx = idx[scene.coord[idx, 2] - g > ground_tol]
        if len(idx) < min_points:
            continue
        comp = _components(scene.coord[idx], cluster_radius)
        sizes = np.bincount(comp)
        cls = scene.classes[lab[k]] if 0 <= lab[k] < len(scene.classes) else ""
        size = (geo or BoxGeometry()).size(cls)
        reach = (math.hypot(size[0], size[1]) if size is not None else 2.0) + 1.0
        outer = (x1 - pad * (x2 - x1), y1 - pad * (y2 - y1), x2 + pad * (x2 - x1), y2 + pad * (y2 - y1))
        spill = np.ones(len(sizes))
        dist = np.zeros(len(sizes))
        for i in np.flatnonzero(sizes >= min_points):
            members = idx[comp == i]
            dist[i] = np.linalg.norm(scene.coord[members].mean(0))
            grown = _grow(scene.coord, tree, members, reach, cluster_radius, ground_tol, ground_radius)
            spill[i] = 1.0 - _in_image_box(uv[grown], z[grown], outer).mean()
        best = int(np.lexsort((dist, -sizes, spill > max_spill))[0])
        obj = scene.coord[idx[comp == best]].astype(np.float64)
        if len(obj) < min_points:
            continue
        gz = float(np.median(ground_under(scene.coord, obj, tree, ground_radius)))
        boxes.append(fit_box(obj, cls, gz, sensor, geometry=geo, trim=trim))
        sem.append(lab[k])
        source.append(k)
        counts.append(len(obj))
        # more points, more trust; no cluster that stays within the image box halves it
        outside = bool(spill[best] > max_spill)
        conf.append(float(1 - np.exp(-len(obj) / 30.0)) * (0.5 if outside else 1.0))
        spilled += outside
    params = {"shrink": shrink, "ground_tol": ground_tol, "ground_radius": ground_radius, "cluster_radius": cluster_radius,
              "min_points": min_points, "trim": trim, "max_spill": max_spill, "pad": pad, "seed": seed, "geometry": None if geo is None else geo.to_dict()}
    return boxes_to_pseudo(scene, np.array(boxes, np.float64).reshape(-1, 7), np.asarray(sem, np.int64), np.asarray(conf),
                           "boxes2d-frustum", params, {"object_points": counts, "spilled": spilled}, {"box2d_index": np.asarray(source, np.int64)})

"""3D pseudo boxes from 2D image boxes (FGR-like), for KITTI-style LiDAR + camera scenes.

For every image box: the LiDAR points that project inside it (camera in front) form a frustum;
ground points are removed against the local ground height (a low z-quantile of the scan within
``ground_radius`` metres in bird's-eye view; one global plane is off by most of a metre at 60 m
on real roads); the rest is
clustered (ball-query connected components) and the largest cluster, nearest first on ties, is
the object. ``box_fit.fit_box`` turns its points into an amodal box (L-shape heading, the
class's size completing what the sensor does not see, standing on the ground).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import ops
from ..camera import project
from ..errors import SceneError
from ..scene import PseudoLabels, Scene
from .box_fit import fit_box
from .object_boxes import boxes_to_pseudo, ground_under

def frustum_boxes(scene: Scene, box2d: Any, box2d_semantic: Any, box2d_frame: Any | None = None, *, shrink: float = 0.05,
                  ground_tol: float = 0.2, ground_radius: float = 3.0, cluster_radius: float = 0.6, min_points: int = 3,
                  seed: int = 0) -> PseudoLabels:
    """Pseudo 3D boxes (and per-point labels) from image boxes; see the module docstring.

    Args: box2d (B,4) ``[x1,y1,x2,y2]`` px in the frames given by ``box2d_frame`` (default 0),
    box2d_semantic (B,) class ids of ``scene.classes``. Boxes with fewer than ``min_points``
    object points are dropped (their confidence would be 0)."""
    b2 = np.asarray(box2d, np.float64).reshape(-1, 4)
    lab = np.asarray(box2d_semantic, np.int64).reshape(-1)
    frm = np.zeros(len(b2), np.int64) if box2d_frame is None else np.asarray(box2d_frame, np.int64).reshape(-1)
    if not scene.frames:
        raise SceneError(f"scene {scene.name!r}: no camera frame to project into (KITTI needs calib and image_2)")
    from scipy.spatial import cKDTree
    tree = cKDTree(scene.coord[:, :2])
    boxes, sem, conf, counts, source = [], [], [], [], []
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
        inside = (z > 0.5) & (uv[:, 0] >= x1 + dx) & (uv[:, 0] <= x2 - dx) & (uv[:, 1] >= y1 + dy) & (uv[:, 1] <= y2 - dy)
        idx = np.flatnonzero(inside)
        g = ground_under(scene.coord, scene.coord[idx].astype(np.float64), tree, ground_radius)
        idx = idx[scene.coord[idx, 2] - g > ground_tol]
        if len(idx) < min_points:
            continue
        pts = torch.from_numpy(np.ascontiguousarray(scene.coord[idx]))
        nb = ops.ball_query(pts, pts, cluster_radius, 32).idx.numpy()
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        r = np.repeat(np.arange(len(idx)), nb.shape[1])
        c = nb.ravel()
        ok = c >= 0
        _, comp = connected_components(coo_matrix((np.ones(ok.sum()), (r[ok], c[ok])), shape=(len(idx), len(idx))), directed=False)
        sizes = np.bincount(comp)
        dist = np.array([np.linalg.norm(scene.coord[idx[comp == i]].mean(0)) for i in range(len(sizes))])
        best = int(np.lexsort((dist, -sizes))[0])
        obj = scene.coord[idx[comp == best]].astype(np.float64)
        if len(obj) < min_points:
            continue
        cls = scene.classes[lab[k]] if 0 <= lab[k] < len(scene.classes) else ""
        gz = float(np.median(ground_under(scene.coord, obj, tree, ground_radius)))
        boxes.append(fit_box(obj, cls, gz, sensor))
        sem.append(lab[k])
        source.append(k)
        counts.append(len(obj))
        conf.append(float(1 - np.exp(-len(obj) / 30.0)))
    params = {"shrink": shrink, "ground_tol": ground_tol, "ground_radius": ground_radius, "cluster_radius": cluster_radius,
              "min_points": min_points, "seed": seed}
    return boxes_to_pseudo(scene, np.array(boxes, np.float64).reshape(-1, 7), np.asarray(sem, np.int64), np.asarray(conf),
                           "boxes2d-frustum", params, {"object_points": counts}, {"box2d_index": np.asarray(source, np.int64)})

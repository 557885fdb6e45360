"""3D pseudo boxes from 2D image boxes (FGR-like), for KITTI-style LiDAR + camera scenes.

For every image box: the LiDAR points that project inside it (camera in front) form a frustum;
ground points are removed against the local ground height (a low z-quantile of the scan within
``ground_radius`` metres in bird's-eye view; one global plane is off by most of a metre at 60 m
on real roads); the rest is
clustered (ball-query connected components) and the largest cluster, nearest first on ties, is
the object. Its bird's-eye footprint gets a minimum-area rectangle (the L-shape of what the
sensor sees); sparse or partial objects are completed with the class's size prior, extending
the box away from the sensor (the far side is the unseen one). The box stands on the ground.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from .. import ops
from ..camera import project
from ..errors import SceneError
from ..geometry import oriented_box, points_in_boxes
from ..scene import PseudoLabels, Scene

PRIORS = {"Car": (3.9, 1.6, 1.56), "Pedestrian": (0.8, 0.6, 1.73), "Cyclist": (1.76, 0.6, 1.73)}


def local_ground(coord: np.ndarray, query: np.ndarray, radius: float = 3.0, quantile: float = 0.05, tree=None) -> np.ndarray:
    """(Q,) ground height under each query point: the ``quantile`` of z among scan points within
    ``radius`` m in bird's-eye view (the query's own z where it has no neighbour)."""
    from scipy.spatial import cKDTree
    tree = cKDTree(coord[:, :2]) if tree is None else tree
    out = np.empty(len(query))
    for i, nb in enumerate(tree.query_ball_point(query[:, :2], radius, workers=-1)):
        out[i] = np.quantile(coord[nb, 2], quantile) if len(nb) else query[i, 2]
    return out


def fit_box(pts: np.ndarray, cls: str, ground_z: float, sensor: np.ndarray = np.zeros(3)) -> np.ndarray:
    """Oriented box around an object's points standing on ``ground_z``, completed with the class
    prior away from the sensor."""
    b = oriented_box(pts)
    L, W, H = PRIORS.get(cls, (b[3], b[4], b[5]))
    # length along the longer fitted side
    if b[4] > b[3]:
        b[3], b[4], b[6] = b[4], b[3], b[6] + np.pi / 2
    centre = b[:2].copy()
    if b[3] < 0.6 * L:
        # a partial view: mostly one face. A face across the viewing ray is the front or back
        # (the object's width); a face along the ray is its side (its length).
        ray = (centre - sensor[:2]) / max(np.linalg.norm(centre - sensor[:2]), 1e-9)
        face = np.array([np.cos(b[6]), np.sin(b[6])])
        if abs(face @ ray) < np.cos(np.radians(45)):
            b[3], b[4], b[6] = b[4], b[3], b[6] + np.pi / 2
    c, s = np.cos(b[6]), np.sin(b[6])
    axes = [np.array([c, s]), np.array([-s, c])]
    for k, (prior, fitted) in enumerate(((L, b[3]), (W, b[4]))):
        if fitted < prior:
            ax = axes[k]
            away = np.sign(ax @ (centre - sensor[:2])) or 1.0
            centre = centre + ax * away * (prior - fitted) / 2  # grow on the unseen (far) side
            b[3 + k] = prior
    top = max(float(pts[:, 2].max()), ground_z + 0.5 * H)
    h = max(top - ground_z, H * 0.8)
    yaw = (b[6] + np.pi / 2) % np.pi - np.pi / 2
    return np.array([centre[0], centre[1], ground_z + h / 2, b[3], b[4], h, yaw])


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
        g = local_ground(scene.coord, scene.coord[idx].astype(np.float64), ground_radius, tree=tree)
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
        gz = float(np.median(local_ground(scene.coord, obj, ground_radius, tree=tree)))
        boxes.append(fit_box(obj, cls, gz, sensor))
        sem.append(lab[k])
        source.append(k)
        counts.append(len(obj))
        conf.append(float(1 - np.exp(-len(obj) / 30.0)))
    B = np.array(boxes, np.float64).reshape(-1, 7)
    semantic = np.full(scene.num_points, -1, np.int64)
    instance = np.full(scene.num_points, -1, np.int64)
    if "background" in scene.classes:
        semantic[:] = scene.classes.index("background")
    if len(B):
        inside = points_in_boxes(scene.coord, B)
        hit = inside.any(1)
        first = inside.argmax(1)
        semantic[hit] = np.asarray(sem)[first[hit]]
        instance[hit] = first[hit]
    return PseudoLabels(semantic=semantic, instance=instance, confidence=np.where(instance >= 0, np.asarray(conf + [0])[instance], 0.5).astype(np.float32),
                        method="boxes2d-frustum", classes=scene.classes, box=B.astype(np.float32), box_semantic=np.asarray(sem, np.int64),
                        box_confidence=np.asarray(conf, np.float32), extras={"box2d_index": np.asarray(source, np.int64)},
                        params=json.dumps({"shrink": shrink, "ground_tol": ground_tol, "ground_radius": ground_radius,
                                           "cluster_radius": cluster_radius, "min_points": min_points, "seed": seed}, sort_keys=True),
                        stats=json.dumps({"object_points": counts}))

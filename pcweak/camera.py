"""Pinhole projection, depth-tested visibility and label-map rendering for posed frames."""
from __future__ import annotations

import numpy as np

from .scene import Frame


def project(points: np.ndarray, K: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (N,3) world points with intrinsics K (3,3) and camera-to-world ``pose`` (4,4).

    Returns ``uv`` (N,2) float64 pixel coordinates (pixel centres at integers) and ``z`` (N,)
    float64 depth along the optical axis (<= 0 means behind the camera)."""
    w2c = np.linalg.inv(pose)
    pc = np.asarray(points, np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    z = pc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (pc @ K.T)[:, :2] / z[:, None]
    return uv, z


def visible_points(points: np.ndarray, frame: Frame, abs_tol: float = 0.03, rel_tol: float = 0.02,
                   depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which (N,3) points the frame's depth camera sees.

    A point is visible when it projects inside the depth image, lies in front of the camera and
    its depth agrees with the depth map within ``abs_tol + rel_tol * z`` metres (the tolerance
    grows with depth, as depth noise does). Returns ``mask`` (N,) bool and the integer pixel
    ``u``, ``v`` (N,) int64 of every point (meaningful where ``mask``).
    """
    return depth_test(points, frame, abs_tol, rel_tol, depth)[:3]


def depth_test(points: np.ndarray, frame: Frame, abs_tol: float = 0.03, rel_tol: float = 0.02,
               depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``visible_points``' mask, u and v, and (N,) bool ``measured``: the points that project
    inside the image, in front of the camera, onto a depth reading (a superset of the visible
    ones). Visible over measured is about a half or more in a well-posed frame of a room (the
    rest lie behind nearer surfaces) and a few per cent where the pose is off by decimetres."""
    d = frame.depth if depth is None else depth
    if d is None:
        raise ValueError(f"frame {frame.name}: no depth map; visibility needs depth")
    h, w = d.shape
    uv, z = project(points, frame.intrinsics, frame.pose)
    with np.errstate(invalid="ignore"):
        u = np.floor(uv[:, 0] + 0.5)
        v = np.floor(uv[:, 1] + 0.5)
        inside = (z > 1e-6) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    u = np.where(inside, u, 0).astype(np.int64)
    v = np.where(inside, v, 0).astype(np.int64)
    dm = d[v, u]
    measured = inside & (dm > 0)
    mask = measured & (np.abs(dm - z) <= abs_tol + rel_tol * z)
    return mask, u, v, measured


DEPTH_SCALE_OFF = "the depth map reads {} times the points' distance (is the depth in metres?)"


def why_unseen(points: np.ndarray, frame: Frame, depth: np.ndarray | None = None) -> tuple[str, float | None]:
    """Why ``frame`` sees none of the (N,3) ``points`` (``visible_points`` found none), as the
    likely mistake in words: no point in front of the camera inside its image (the pose is not
    camera-to-world in the points' coordinates), the depth map a constant factor off the points'
    depth (``DEPTH_SCALE_OFF``, with that factor, the median over the projected points, as the
    second value; None otherwise), or the points hidden behind nearer depth readings."""
    d = frame.depth if depth is None else depth
    h, w = d.shape
    uv, z = project(points, frame.intrinsics, frame.pose)
    with np.errstate(invalid="ignore"):
        u, v = np.floor(uv[:, 0] + 0.5), np.floor(uv[:, 1] + 0.5)
        inside = (z > 1e-6) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    if not inside.any():
        return "no point lies in front of the camera inside its image (is the pose camera-to-world, in the scene's coordinates?)", None
    dm = d[v[inside].astype(np.int64), u[inside].astype(np.int64)]
    measured = dm > 0
    if not measured.any():
        return "the depth map has no reading where the points project", None
    ratio = float(np.median(dm[measured] / z[inside][measured]))
    if not 0.8 <= ratio <= 1.25:
        return DEPTH_SCALE_OFF, ratio
    return "every point that projects into the image lies behind a nearer depth reading", None


def backproject(depth: np.ndarray, K: np.ndarray, pose: np.ndarray, stride: int = 1
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World points of every valid depth pixel: returns (P,3) float64 points and their v, u."""
    v, u = np.nonzero(depth[::stride, ::stride] > 0)
    v, u = v * stride, u * stride
    z = depth[v, u].astype(np.float64)
    x = (u - K[0, 2]) * z / K[0, 0]
    y = (v - K[1, 2]) * z / K[1, 1]
    pc = np.stack([x, y, z], axis=1)
    return pc @ pose[:3, :3].T + pose[:3, 3], v, u


def render_label_map(points: np.ndarray, labels: np.ndarray, frame: Frame, max_dist: float = 0.05,
                     depth: np.ndarray | None = None, tree=None) -> np.ndarray:
    """(H,W) int64 map of the label of the surface each depth pixel sees (-1 = none).

    Each valid depth pixel is back-projected and takes the label of the nearest scene point
    within ``max_dist`` metres: a depth-tested rendering of per-point labels, exact wherever the
    depth map is. ``tree`` may be a prebuilt ``scipy.spatial.cKDTree`` over ``points``."""
    from scipy.spatial import cKDTree
    d = frame.depth if depth is None else depth
    out = np.full(d.shape, -1, np.int64)
    world, v, u = backproject(d, frame.intrinsics, frame.pose)
    if not len(world):
        return out
    tree = cKDTree(points) if tree is None else tree
    dist, idx = tree.query(world, k=1, distance_upper_bound=max_dist, workers=-1)
    ok = np.isfinite(dist)
    out[v[ok], u[ok]] = np.asarray(labels)[idx[ok]]
    return out

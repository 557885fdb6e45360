"""Pinhole projection, depth-tested visibility and label-map rendering for posed frames."""
from __future__ import annotations

from typing import NamedTuple

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
    t = depth_test(points, frame, abs_tol, rel_tol, depth)
    return t.visible, t.u, t.v


class DepthTest(NamedTuple):
    """``depth_test``'s result for N points: ``visible``, ``u``, ``v`` as ``visible_points``
    gives them; ``measured`` (N,) bool: projected inside the image, in front of the camera, onto
    a depth reading (a superset of the visible ones); ``z`` (N,) the points' depth in metres and
    ``reading`` (N,) the depth map's value where they land (meaningful where ``measured``)."""
    visible: np.ndarray
    u: np.ndarray
    v: np.ndarray
    measured: np.ndarray
    z: np.ndarray
    reading: np.ndarray


def depth_test(points: np.ndarray, frame: Frame, abs_tol: float = 0.03, rel_tol: float = 0.02,
               depth: np.ndarray | None = None) -> DepthTest:
    """``visible_points`` with what tells a well-posed frame from one that is not: visible over
    measured is about a half or more in a well-posed frame of a room (the rest lie behind nearer
    surfaces) and a few per cent where the pose is off by decimetres (``DepthTest``)."""
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
    visible = measured & (np.abs(dm - z) <= abs_tol + rel_tol * z)
    return DepthTest(visible, u, v, measured, z, dm)


DEPTH_SCALE_OFF = "the depth map reads {} times the points' distance (is the depth in metres?)"


def why_unseen(test: DepthTest) -> tuple[str, float | None]:
    """Why a frame sees none of the points (``test.visible`` is empty), as the likely mistake in
    words: no point lands on a depth reading in front of the camera inside its image (the pose is
    not camera-to-world in the points' coordinates), the depth map a constant factor off the
    points' depth (``DEPTH_SCALE_OFF``, with that factor, the median over the points that land on
    a reading, as the second value; None otherwise), or the points behind nearer readings."""
    m = test.measured
    if not m.any():
        return ("no point lands on a depth reading in front of the camera inside its image "
                "(is the pose camera-to-world, in the scene's coordinates?)"), None
    ratio = float(np.median(test.reading[m] / test.z[m]))
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

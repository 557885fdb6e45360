"""Vectorised ray casting against oriented boxes (z-rotation) and a ground plane.

Used by the synthetic generators to render depth/colour frames and LiDAR scans; the scenes are
unions of boxes, so casting is exact and needs no mesh library.
"""
from __future__ import annotations

import numpy as np


def cast_boxes(origin: np.ndarray, dirs: np.ndarray, boxes: np.ndarray, max_t: float = np.inf,
               eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First hit of each ray with a set of boxes.

    Args:
        origin: (3,) or (R,3) ray origins; dirs: (R,3) directions (need not be unit).
        boxes: (M,7) ``[cx,cy,cz,dx,dy,dz,yaw]``.
    Returns:
        t (R,) float64 ray parameter of the hit (inf = none), hit box index (R,) int64 (-1 = none),
        normal (R,3) float64 world-frame outward normal of the face hit.
    """
    dirs = np.asarray(dirs, np.float64)
    R = len(dirs)
    o = np.broadcast_to(np.asarray(origin, np.float64), (R, 3))
    best_t = np.full(R, np.inf)
    best_i = np.full(R, -1, np.int64)
    best_axis = np.zeros(R, np.int64)
    best_sign = np.ones(R)
    inv_dd = 1.0 / np.maximum(np.einsum("ij,ij->i", dirs, dirs), 1e-300)
    origin_arr = np.asarray(origin, np.float64)
    one_origin = origin_arr.ndim == 1
    for m, b in enumerate(np.asarray(boxes, np.float64).reshape(-1, 7)):
        # only the rays that pass within the box's bounding sphere can hit it (most rays miss most
        # boxes); the slab test below runs on those alone, element by element as on all rays
        if one_origin:
            po_one = origin_arr - b[:3]
            along, pp = dirs @ po_one, float(po_one @ po_one)
        else:
            po_all = o - b[:3]
            along, pp = np.einsum("ij,ij->i", po_all, dirs), np.einsum("ij,ij->i", po_all, po_all)
        radius2 = float((b[3:6] ** 2).sum() / 4) * (1 + 1e-6) + 1e-9
        cand = np.flatnonzero((pp - along * along * inv_dd <= radius2) & ((along <= 0) | (pp <= radius2)))
        if not len(cand):
            continue
        c, s = np.cos(b[6]), np.sin(b[6])
        po, dc = (np.broadcast_to(po_one, (len(cand), 3)) if one_origin else po_all[cand]), dirs[cand]
        ol = np.stack([po[:, 0] * c + po[:, 1] * s, -po[:, 0] * s + po[:, 1] * c, po[:, 2]], 1)
        dl = np.stack([dc[:, 0] * c + dc[:, 1] * s, -dc[:, 0] * s + dc[:, 1] * c, dc[:, 2]], 1)
        h = b[3:6] / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / dl
            t1 = (-h - ol) * inv
            t2 = (h - ol) * inv
        t1 = np.where(np.isnan(t1), -np.inf, t1)
        t2 = np.where(np.isnan(t2), np.inf, t2)
        tlo = np.minimum(t1, t2)
        thi = np.maximum(t1, t2)
        axis = np.argmax(tlo, axis=1)
        tmin = tlo[np.arange(len(cand)), axis]
        tmax = thi.min(axis=1)
        hit = (tmax >= tmin) & (tmin > eps) & (tmin < best_t[cand]) & (tmin <= max_t)
        if not hit.any():
            continue
        ix = cand[hit]
        best_t[ix] = tmin[hit]
        best_i[ix] = m
        best_axis[ix] = axis[hit]
        # the entry face is the -h side where the local direction is positive
        best_sign[ix] = -np.sign(dl[hit, axis[hit]])
    normal = np.zeros((R, 3))
    ok = best_i >= 0
    if ok.any():
        bx = np.asarray(boxes, np.float64).reshape(-1, 7)[best_i[ok]]
        nl = np.zeros((ok.sum(), 3))
        nl[np.arange(ok.sum()), best_axis[ok]] = best_sign[ok]
        c, s = np.cos(bx[:, 6]), np.sin(bx[:, 6])
        normal[ok] = np.stack([nl[:, 0] * c - nl[:, 1] * s, nl[:, 0] * s + nl[:, 1] * c, nl[:, 2]], 1)
    return best_t, best_i, normal


def cast_plane_z(origin: np.ndarray, dirs: np.ndarray, z: float) -> np.ndarray:
    """(R,) ray parameter where rays meet the horizontal plane ``z`` from above (inf = never)."""
    o = np.broadcast_to(np.asarray(origin, np.float64), dirs.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (z - o[:, 2]) / dirs[:, 2]
    return np.where((dirs[:, 2] < 0) & (t > 0), t, np.inf)


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4,4) camera-to-world pose (x right, y down, z forward) at ``position`` looking at ``target``."""
    f = np.asarray(target, np.float64) - position
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    if np.linalg.norm(r) < 1e-6:
        r = np.array([1.0, 0.0, 0.0])
    r /= np.linalg.norm(r)
    d = np.cross(f, r)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = r, d, f, position
    return T


def pixel_rays(K: np.ndarray, pose: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """World directions (h*w,3) of pixel centres whose camera-z component is 1, and the origin."""
    v, u = np.mgrid[0:h, 0:w]
    x = (u.ravel() - K[0, 2]) / K[0, 0]
    y = (v.ravel() - K[1, 2]) / K[1, 1]
    cam = np.stack([x, y, np.ones_like(x)], 1)
    return cam @ pose[:3, :3].T, pose[:3, 3].copy()

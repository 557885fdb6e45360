"""Local geometric descriptors for propagation affinities.

``fpfh_features`` wraps Open3D's Fast Point Feature Histograms (Rusu et al. 2009): a 33-bin
histogram of the angles between each point's normal and its neighbours' within ``radius``. It
tells a flat wall from the rounded edge of a sofa or the thin rim of a sink where colour and a
single normal do not. Computed on a voxel-averaged copy of the cloud (one descriptor per voxel,
shared by its points), which bounds the cost on dense clouds.
"""
from __future__ import annotations

import functools
import hashlib
import threading
from typing import Any, Callable, TypeVar

import numpy as np

from ..errors import SceneError
from ..geometry import column_bounds
from ..open3d_lib import open3d

F = TypeVar("F", bound=Callable[..., Any])
_shared_lock = threading.Lock()
_shared: dict[tuple[Any, ...], np.ndarray] | None = None  # open while a ``shares_shape_features`` call runs
_shared_depth = 0


def shares_shape_features(fn: F) -> F:
    """Decorates a function during whose call ``shape_features`` of a whole cloud is computed
    once per (cloud, k), on any thread, and its rows reused by later calls, also those asking
    for a subset of points (the rows are the same to the bit: each point's neighbourhood is its
    own). Propagation's l0 partition and its forest both ask for k = 30; the memory is freed
    when the outermost such call returns. The call may also keep one neighbour table per cloud
    (``share_neighbours``)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _shared, _shared_depth
        with _shared_lock:
            _shared_depth += 1
            if _shared is None:
                _shared = {}
        try:
            return fn(*args, **kwargs)
        finally:
            with _shared_lock:
                _shared_depth -= 1
                if not _shared_depth:
                    _shared = None
    return wrapper  # type: ignore[return-value]


def _cloud_key(c: np.ndarray) -> tuple[Any, ...]:
    """The identity of a float32 (N,3) cloud in the shared store: its shape and bytes' hash."""
    return (c.shape, hashlib.blake2b(np.ascontiguousarray(c).tobytes(), digest_size=16).digest())


def share_neighbours(coord: np.ndarray, k: int) -> None:
    """Inside a ``shares_shape_features`` call: one search for the ``k`` nearest neighbours of
    every point of the (N,3) cloud, kept for the call; a later search of the whole cloud for
    j <= k neighbours (the kNN graph, normals, shape features: ``shared_neighbours``) takes its
    first j columns instead of searching again. Ties are broken by index, so those columns are
    that search's result to the bit. Outside such a call it does nothing; ``forget_neighbours``
    drops the table before the call ends."""
    import torch

    from .. import ops
    if _shared is None:
        return
    c = np.ascontiguousarray(coord, dtype=np.float32)
    t = torch.from_numpy(c)
    # int32 ids where they fit: half the memory of the (N,k) table
    idx = ops.knn(t, t, max(1, min(int(k), len(c)))).idx.to(torch.int32 if len(c) < 2**31 else torch.int64)
    with _shared_lock:
        if _shared is not None:
            _shared[("neighbours",) + _cloud_key(c)] = idx


def forget_neighbours(coord: np.ndarray) -> None:
    """Drops ``share_neighbours``' table of this (N,3) cloud (its readers are done), so that the
    rest of the call runs without its memory."""
    if _shared is None:
        return
    with _shared_lock:
        if _shared is not None:
            _shared.pop(("neighbours",) + _cloud_key(np.asarray(coord, np.float32)), None)


def shared_neighbours(coord: np.ndarray, k: int) -> Any:
    """(N,k) integer torch tensor (a view of the table, int32 below 2^31 points): each point's
    ``k`` nearest neighbours (itself included) from ``share_neighbours``' table of this (N,3)
    cloud (as float32), or None where no table with that many columns is kept."""
    if _shared is None:
        return None
    key = ("neighbours",) + _cloud_key(np.asarray(coord, np.float32))
    with _shared_lock:
        idx = None if _shared is None else _shared.get(key)
    if idx is None or idx.shape[1] < k:
        return None
    return idx[:, :k]


# A cloud sampled along scan lines (a spinning LiDAR's rings) has most points' nearest
# neighbours on their own line, so their neighbourhoods are linear where the surface is not.
# Share of points whose 11 nearest neighbours have linearity above 0.9, measured 2026-12-03:
# ScanNet scans and synthetic rooms 0.000-0.003, KITTI / SemanticKITTI / synthetic LiDAR frames
# 0.29-0.51 (docs/results.md); a cloud above SCAN_LINE_SHARE is taken as scan lines.
SCAN_LINE_LINEARITY = 0.9
SCAN_LINE_SHARE = 0.1
# Normals on scan lines: 16 neighbours lie mostly on one ring, so a ring's range noise tilts the
# plane they fit (with 1 cm of noise a third of a ground ring's normals lean over 25 degrees);
# 20 reach the rings on either side. Chosen by leave-one-scene-out over the LiDAR scans
# (16 / 20 / 24 / 30 / 40; docs/results.md).
SCAN_LINE_NORMAL_NEIGHBOURS = 20


def scan_line_share(coord: np.ndarray, k: int = 11, sample: int = 5000) -> float:
    """Share of the (N,3) cloud's points (at most ``sample``, taken evenly through it) whose
    ``k`` nearest neighbours, themselves included, lie on a line (``shape_features``'
    linearity above ``SCAN_LINE_LINEARITY``); 0.0 for fewer than ``k`` points."""
    c = np.asarray(coord, np.float32)
    if len(c) < k:
        return 0.0
    query = np.unique(np.linspace(0, len(c) - 1, min(sample, len(c))).astype(np.int64))
    return float(np.mean(shape_features(c, k, query)[:, 0] > SCAN_LINE_LINEARITY))


def along_scan_lines(coord: np.ndarray) -> bool:
    """Whether the (N,3) cloud was sampled along scan lines (a spinning LiDAR's rings): more
    than ``SCAN_LINE_SHARE`` of its points lie on a line with their neighbours. Propagation
    builds its graph with more neighbours on such a cloud, and budgets its memory by it."""
    return scan_line_share(coord) > SCAN_LINE_SHARE


def fpfh_features(coord: np.ndarray, normal: np.ndarray | None = None, radius: float = 0.1, voxel: float | None = 0.03,
                  max_nn: int = 30) -> np.ndarray:
    """(N,33) float32 FPFH descriptors, each row normalised to sum 1 (0 where no neighbour).

    Args: coord (N,3) float; normal (N,3) float, unoriented is fine (estimated when None);
    radius: neighbourhood in metres; voxel: edge of the averaging voxels (None: every point)."""
    o3d = open3d()
    c = np.asarray(coord, np.float64)
    if c.ndim != 2 or c.shape[1] != 3 or len(c) == 0:
        raise SceneError(f"fpfh_features: coord must be a non-empty (N,3) array, got {c.shape}")
    if normal is None:
        from .superpoints import estimate_normals
        normal = estimate_normals(c.astype(np.float32))
    n = np.asarray(normal, np.float64)
    if n.shape != c.shape:
        raise SceneError(f"fpfh_features: normal has shape {n.shape} but coord has {c.shape}")
    inv = None
    if voxel:
        cell = np.floor(c / voxel).astype(np.int64)
        lo, hi = column_bounds(cell)
        cell -= lo
        dims = hi - lo + 1
        _, inv = np.unique((cell[:, 0] * dims[1] + cell[:, 1]) * dims[2] + cell[:, 2], return_inverse=True)
        inv = inv.ravel()
        m = int(inv.max()) + 1
        cnt = np.bincount(inv, minlength=m)[:, None].astype(np.float64)
        c_vox = np.stack([np.bincount(inv, weights=c[:, d], minlength=m) for d in range(3)], 1) / cnt
        # unoriented normals: flip each onto its voxel's first normal before averaging
        ref = np.zeros((m, 3))
        ref[inv[::-1]] = n[::-1]
        sign = np.where((n * ref[inv]).sum(1, keepdims=True) < 0, -1.0, 1.0)
        n_vox = np.stack([np.bincount(inv, weights=(n * sign)[:, d], minlength=m) for d in range(3)], 1)
        n_vox /= np.maximum(np.linalg.norm(n_vox, axis=1, keepdims=True), 1e-12)
        c, n = c_vox, n_vox
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(c))
    pc.normals = o3d.utility.Vector3dVector(n)
    f = o3d.pipelines.registration.compute_fpfh_feature(pc, o3d.geometry.KDTreeSearchParamHybrid(radius=radius, max_nn=max_nn))
    F = np.asarray(f.data).T
    F = (F / np.maximum(F.sum(1, keepdims=True), 1e-12)).astype(np.float32)
    return F if inv is None else F[inv]


def shape_features(coord: np.ndarray, k: int = 30, query: np.ndarray | None = None) -> np.ndarray:
    """(M,4) float32 local shape of each point's ``k`` nearest neighbours (itself included),
    from the eigenvalues l1 >= l2 >= l3 of their covariance: linearity (l1 - l2) / l1,
    planarity (l2 - l3) / l1, scattering l3 / l1 (the three sum to 1), and verticality
    |n_z| of the normal (the smallest eigenvalue's direction): 1 on floors, 0 on walls.
    ``query``: (M,) int64 indices of the points to describe (None: all N, M = N)."""
    import torch

    from .superpoints import neighbourhood_pca
    c = np.asarray(coord, np.float32)
    if c.ndim != 2 or c.shape[1] != 3:
        raise SceneError(f"shape_features: coord must be (N,3), got {c.shape}")
    if len(c) == 0 or (query is not None and len(query) == 0):
        return np.zeros((0, 4), np.float32)
    key = None
    if _shared is not None:
        key = (int(k),) + _cloud_key(c)
        with _shared_lock:
            whole = None if _shared is None else _shared.get(key)
        if whole is not None:
            return whole.copy() if query is None else whole[np.asarray(query, np.int64)]
    val, vec = neighbourhood_pca(c, max(1, min(int(k), len(c))), query)  # ascending eigenvalues
    l3, l2, l1 = (val[:, i].clamp_min(0) for i in range(3))
    l1 = l1.clamp_min(1e-12)
    out = torch.stack([(l1 - l2) / l1, (l2 - l3) / l1, l3 / l1, vec[:, 2, 0].abs()], 1).float().numpy()
    if key is not None and query is None:
        with _shared_lock:
            if _shared is not None:
                _shared[key] = out.copy()
    return out

"""Superpoints (over-segmentation) for any cloud.

``scene_superpoints`` uses the dataset's own over-segmentation when the scene has one
(ScanNet's ``segs.json``) and otherwise computes a Felzenszwalb-Huttenlocher segmentation on a
kNN graph whose edge weight is the normal difference, with colour deciding between surfaces
whose normals agree exactly. ``mesh_segments`` is
ScanNet's own segmentator algorithm (FH on the mesh's edges, normal-only weights, convex edges
cheap) for clouds that come with triangles. The union-find runs in the compiled ops extension
(a pure-Python fallback exists); edges are sorted stably, so the result is deterministic.
"""
from __future__ import annotations

import inspect
from typing import Annotated

import numpy as np
import torch

from ..errors import SceneError
from ..geometry import float32_near_origin
from ..params import Count, NonNegative, Range, check_ranges
from ..scene import Scene, check_color_range, check_float, check_int


SPARSE_SUM_WIDTH = 8  # from this many columns on, one sparse product sums them faster than a bincount each


def segment_sum(node: np.ndarray, n_nodes: int, values: np.ndarray) -> np.ndarray:
    """(S,D) float64 sum of the (N,D) ``values`` over the points of each of the ``n_nodes``
    nodes (``node`` (N,) int ids in 0..S-1). Either way each node's sum adds its points in
    index order from 0.0, so the two paths give the same bits: a bincount per column for
    narrow ``values``, one (S,N) sparse product for wide ones (FPFH's 33 columns: about 2x
    faster on 1M points; ``tests/test_descriptors.py`` checks both paths). Values that are not
    float64 are widened ``SPARSE_SUM_WIDTH`` columns at a time, not all at once (FPFH's float32
    columns: 64 MB per million points held instead of 264 MB; each column's sum is the same)."""
    v = np.asarray(values).reshape(len(node), -1)
    if v.shape[1] == 0:
        return np.zeros((n_nodes, 0))
    if v.shape[1] < SPARSE_SUM_WIDTH:
        v = v.astype(np.float64, copy=False)
        return np.stack([np.bincount(node, weights=v[:, d], minlength=n_nodes) for d in range(v.shape[1])], 1)
    import scipy.sparse as sp
    n = len(node)
    # COO to CSR is a stable counting sort, so each row keeps its points in index order
    m = sp.csr_matrix((np.ones(n), (node, np.arange(n))), shape=(n_nodes, n))
    if v.dtype == np.float64:
        return np.asarray(m @ v)
    return np.concatenate([np.asarray(m @ v[:, j:j + SPARSE_SUM_WIDTH].astype(np.float64))
                           for j in range(0, v.shape[1], SPARSE_SUM_WIDTH)], 1)


def segment_mean(node: np.ndarray, n_nodes: int, values: np.ndarray) -> np.ndarray:
    """(S,D) float64 mean of the (N,D) ``values`` over the points of each of the ``n_nodes``
    nodes (``node`` (N,) int ids in 0..S-1); 0 for a node without points."""
    cnt = np.maximum(np.bincount(node, minlength=n_nodes), 1).astype(np.float64)
    return segment_sum(node, n_nodes, values) / cnt[:, None]


GRAPH_LOOKUPS_AT_ONCE = 1 << 22  # neighbour-table entries knn_graph gathers at a time


def knn_graph(coord: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Undirected kNN graph: unique edges (u < v) as two (E,) int64 arrays."""
    from .. import ops
    from .descriptors import shared_neighbours
    c = torch.from_numpy(np.ascontiguousarray(coord, dtype=np.float32))
    table = shared_neighbours(coord, k + 1)
    idx = (table.long() if table is not None else ops.knn(c, c, k + 1).idx)[:, 1:].numpy()
    n = len(coord)
    u = np.repeat(np.arange(n), k)
    v = idx.reshape(-1)
    ok = (v >= 0) & (v != u)
    u, v = u[ok], v[ok]
    # each undirected edge once: keep i->j when i < j, or when i > j and i is not among j's
    # neighbours (then j->i was never listed); only the i > j half is looked up, in int32
    # (1M points, k=10: 0.6 s instead of 3.7 s for all edges in int64, or sorting edge keys), in
    # blocks: at once, the rows gathered for 500k LiDAR points at k=40 took 1.6 GB
    keep = u < v
    cand = np.flatnonzero(~keep)
    small = np.int32 if n < 2**31 else np.int64
    rows = idx.astype(small)
    back = np.empty(len(cand), bool)
    step = max(1, GRAPH_LOOKUPS_AT_ONCE // max(k, 1))  # the gathered rows (step, k): 16 MiB at a time, not (E/2, k) at once
    for a in range(0, len(cand), step):
        c = cand[a:a + step]
        back[a:a + step] = (rows[v[c]] == u[c, None].astype(small)).any(1)
    keep[cand[~back]] = True
    u, v = u[keep], v[keep]
    return np.minimum(u, v), np.maximum(u, v)


# The point spacing (metres) at which sizes given in points (superpoints' smallest sizes) are
# meant: about that of ScanNet's mesh vertices (2.9 cm), where the defaults were chosen.
REFERENCE_SPACING = 0.03


def point_spacing(coord: np.ndarray, sample: int = 20000) -> float:
    """Median distance (metres) from a point to its nearest neighbour, over at most ``sample``
    points taken evenly through the (N,3) cloud (0.0 for fewer than two points)."""
    from .. import ops
    if len(coord) < 2:
        return 0.0
    c = torch.from_numpy(np.ascontiguousarray(coord, dtype=np.float32))
    query = c[torch.from_numpy(np.linspace(0, len(c) - 1, min(sample, len(c))).astype(np.int64))]
    return float(np.median(np.sqrt(ops.knn(c, query, 2).dist2[:, 1].numpy().astype(np.float64))))


# a median nearest-neighbour spacing above this (metres) is no scan in metres: indoor RGB-D and
# vehicle LiDAR lie 1.8-3.5 cm apart (synthetic rooms and frames, ScanNet, KITTI, SemanticKITTI),
# sparse airborne LiDAR under a metre; coordinates in millimetres or centimetres read as metres
# lie 1.8-35 "metres" apart
UNITS_SPACING_LIMIT_M = 1.5


def units_problem(coord: np.ndarray) -> str | None:
    """What suggests that (N,3) ``coord`` is not in metres (its median nearest-neighbour spacing
    above ``UNITS_SPACING_LIMIT_M``), or None: every size and radius pcweak uses is in metres."""
    spacing = point_spacing(coord)
    if not spacing > UNITS_SPACING_LIMIT_M:
        return None
    return (f"its points lie a median {spacing:.3g} m from their nearest neighbours, where scans in metres lie 1-4 cm apart: "
            f"pcweak reads coordinates in metres (from millimetres divide them by 1000, from centimetres by 100)")


def min_size_at(min_size: int, spacing: float, reference: float | None) -> int:
    """A superpoint's smallest size in points, ``min_size`` given at the point spacing
    ``reference`` (metres), for a cloud of median spacing ``spacing``: on a sparser cloud the
    same smallest area holds fewer points, (reference / spacing)^2 as many (at least 1); a
    denser cloud keeps ``min_size`` (larger counts gained nothing there, docs/results.md);
    ``reference`` None keeps it always."""
    if reference is None or not spacing > reference:
        return int(min_size)
    return max(1, int(round(min_size * (reference / spacing) ** 2)))


# points whose neighbours are searched at once, and, within them, whose neighbourhoods are
# decomposed at once (their neighbours' float64 coordinates take k x 24 bytes per point: 47 MB
# for 30 neighbours)
KNN_POINTS_AT_ONCE = 1 << 18
PCA_POINTS_AT_ONCE = 1 << 16


def neighbourhood_pca(coord: np.ndarray, k: int, query: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA of each point's ``k`` nearest neighbours (itself included): (M,3) float64 eigenvalues
    of their scatter matrix, ascending, and (M,3,3) eigenvectors as columns (column 0, the
    smallest, is the unoriented normal). ``query``: (M,) int64 indices of the points to describe
    (None: all N). Computed in blocks of points to bound memory; the neighbours come from
    ``descriptors.share_neighbours``' table where one is kept for this cloud."""
    from .. import ops
    from .descriptors import shared_neighbours
    c = torch.from_numpy(np.ascontiguousarray(coord, dtype=np.float32))
    q = torch.arange(len(c)) if query is None else torch.from_numpy(np.asarray(query, np.int64))
    table = shared_neighbours(coord, k)
    vals, vecs = [], []
    for s in range(0, len(q), KNN_POINTS_AT_ONCE):  # a search each: each builds its index of the cloud
        qs = q[s:s + KNN_POINTS_AT_ONCE]
        found = table[qs].long() if table is not None else ops.knn(c, c[qs], k).idx
        found = torch.where(found >= 0, found, qs[:, None])
        for t in range(0, len(qs), PCA_POINTS_AT_ONCE):
            nb = c[found[t:t + PCA_POINTS_AT_ONCE]].double()
            nb -= nb.mean(1, keepdim=True)
            val, vec = torch.linalg.eigh(nb.transpose(1, 2) @ nb)
            vals.append(val)
            vecs.append(vec)
    if not vals:
        return torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, 3, 3, dtype=torch.float64)
    return torch.cat(vals), torch.cat(vecs)


NORMAL_NEIGHBOURS = 16  # the neighbourhood normals are estimated from


def estimate_normals(coord: np.ndarray, k: int = NORMAL_NEIGHBOURS) -> np.ndarray:
    """(N,3) float32 unit normals from PCA of each point's k nearest neighbours (unoriented)."""
    return neighbourhood_pca(coord, k)[1][:, :, 0].float().numpy()


def _fh_python(u, v, w, n, c, min_size):
    parent = list(range(n))
    size = [1] * n
    th = [c] * n

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(a, b):
        if size[a] < size[b] or (size[a] == size[b] and b < a):
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
        return a
    for a0, b0, we in zip(u.tolist(), v.tolist(), w.tolist()):
        a, b = find(a0), find(b0)
        if a != b and we <= th[a] and we <= th[b]:
            r = join(a, b)
            th[r] = we + c / size[r]
    for a0, b0 in zip(u.tolist(), v.tolist()):
        a, b = find(a0), find(b0)
        if a != b and (size[a] < min_size or size[b] < min_size):
            join(a, b)
    return number_by_first_point(np.array([find(i) for i in range(n)]))


def number_by_first_point(group: np.ndarray) -> np.ndarray:
    """(N,) int64 ids 0..S-1 for the (N,) group labels ``group`` (any ints), numbered in the
    order of each group's first point, as the compiled partitions number theirs."""
    _, first, inv = np.unique(group, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inv.ravel()]


def felzenszwalb(coord: np.ndarray, normal: np.ndarray | None = None, color: np.ndarray | None = None,
                 k: Count = 10, c: Annotated[float, Range(0, low_open=True)] = 0.05, min_size: Count = 30,
                 color_weight: NonNegative = 0.5, edges: tuple[np.ndarray, np.ndarray] | None = None,
                 color_max_normal_diff: Annotated[float | None, Range(0)] = 1e-6) -> np.ndarray:
    """(N,) int64 superpoint ids: FH segmentation on the kNN graph.

    Edge weight = (1 - |n_u . n_v|) + ``color_weight`` * ||rgb_u - rgb_v|| (colours in [0,1]),
    the colour term only on edges whose normal difference 1 - |n_u . n_v| is at most
    ``color_max_normal_diff`` (None: on every edge). Colour thus splits what the normals cannot
    (coplanar objects of synthetic or CAD clouds, whose normals agree exactly), while measured
    scans, whose normals never agree that closely, are cut by their normals alone, as ScanNet's
    segmentator does (docs/results.md: colour on every edge costs real scans dearly, and no
    colour at all merges a noiseless synthetic room into a few superpoints).
    ``c`` is FH's scale parameter (larger -> larger superpoints); components smaller than
    ``min_size`` points are merged into a neighbour. Normals are estimated when not given.
    ``edges`` (u, v) reuses a kNN graph already built with ``knn_graph``."""
    coord = np.asarray(coord, np.float32)
    n = len(coord)
    if n == 0:
        return np.zeros(0, np.int64)
    if normal is None:
        normal = estimate_normals(coord)
    u, v = edges if edges is not None else knn_graph(coord, k)
    w = fh_weights(fh_edge_terms(normal, color if color_weight else None, u, v), color_weight, color_max_normal_diff)
    return segment_graph(u, v, w, n, c, min_size)


def fh_edge_terms(normal: np.ndarray, color: np.ndarray | None, u: np.ndarray,
                  v: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The two terms of ``felzenszwalb``'s edge weight, (E,) float64 each: the normal
    difference 1 - |n_u . n_v| and the colour distance ||rgb_u - rgb_v|| (None without colour)."""
    dn = 1.0 - np.abs((normal[u].astype(np.float64) * normal[v]).sum(1))
    dc = None if color is None else np.linalg.norm(color[u].astype(np.float64) - color[v], axis=1)
    return dn, dc


def fh_weights(terms: tuple[np.ndarray, np.ndarray | None], color_weight: float,
               color_max_normal_diff: float | None) -> np.ndarray:
    """(E,) float64 FH edge weights from ``fh_edge_terms``: the normal term plus
    ``color_weight`` times the colour term, on edges whose normal term is at most
    ``color_max_normal_diff`` (None: on every edge)."""
    dn, dc = terms
    if dc is None or not color_weight:
        return dn
    dc = color_weight * dc
    return dn + (dc if color_max_normal_diff is None else np.where(dn <= color_max_normal_diff, dc, 0.0))


def sort_edges(u: np.ndarray, v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges in ascending weight (a stable sort: ties keep their order), contiguous int64
    ends and float64 weights, as ``segment_sorted`` takes them. The compiled ops' radix sort
    gives numpy's stable order to the index, faster."""
    from ..ops.extension import compiled
    mod = compiled()
    w = np.asarray(w, np.float64)
    order = mod.argsort_stable(torch.from_numpy(w)).numpy() if mod is not None else np.argsort(w, kind="stable")
    return tuple(np.ascontiguousarray(a[order]) for a in (np.asarray(u, np.int64), np.asarray(v, np.int64), np.asarray(w, np.float64)))


def segment_graph(u: np.ndarray, v: np.ndarray, w: np.ndarray, n: int, c: float, min_size: int) -> np.ndarray:
    """(n,) int64 component ids (numbered by first vertex) of FH's graph segmentation.

    Args: u, v (E,) int64 edge ends; w (E,) float64 weights; c FH's scale; components
    smaller than ``min_size`` vertices are merged along the cheapest edges afterwards."""
    return segment_sorted(*sort_edges(u, v, w), n, c, min_size)


def segment_sorted(u: np.ndarray, v: np.ndarray, w: np.ndarray, n: int, c: float, min_size: int) -> np.ndarray:
    """``segment_graph`` on edges already in ``sort_edges``' order (several scales ``c`` of one
    graph then share one sort)."""
    from ..ops.extension import compiled
    mod = compiled()
    if mod is not None:
        return mod.fh_segment(torch.from_numpy(u), torch.from_numpy(v), torch.from_numpy(w), n, float(c), int(min_size)).numpy()
    return _fh_python(u, v, w, n, c, min_size)


def mesh_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The directed edges ScanNet's segmentator weighs: per face ``(i, j, k)`` the three edges
    i -> j, i -> k, k -> j, in face order, so an edge shared by two faces comes twice, once in
    the direction each face gives it (the convexity test ``n_b . (p_b - p_a)`` reads the
    direction, and the cheaper of the two weights is the one that joins); edges from a vertex to
    itself are left out. Two (3F,) int64 arrays at most (start, end).

    Args: faces (F,3) int vertex indices."""
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    u = f[:, [0, 0, 2]].ravel()
    v = f[:, [1, 2, 1]].ravel()
    keep = u != v
    return u[keep], v[keep]


def _mean_unit_face_normal(p: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(N,3) float64: per vertex, the mean of its faces' unit normals (zero if in no face)."""
    fn = np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-30)
    out = np.zeros_like(p)
    cnt = np.zeros(len(p))
    for k in range(3):
        cnt += np.bincount(f[:, k], minlength=len(p))
        for d in range(3):
            out[:, d] += np.bincount(f[:, k], weights=fn[:, d], minlength=len(p))
    return out / np.maximum(cnt, 1)[:, None]


def mesh_segments(vertices: np.ndarray, faces: np.ndarray, k_thresh: Annotated[float, Range(0, low_open=True)] = 0.01,
                  min_verts: Count = 20,
                  normal: np.ndarray | None = None) -> np.ndarray:
    """(N,) int64 segment ids of a triangle mesh, by ScanNet's segmentator algorithm.

    FH on the mesh's edges (``mesh_edges``: each face's three, directed) with weight
    1 - n_a . n_b of the vertex normals, squared when the edge is convex (n_b . (p_b - p_a) >
    0), scale ``k_thresh``; segments with fewer than ``min_verts`` vertices are merged.
    ScanNet's defaults (0.01, 20) made its ``segs.json`` files, on which its instance
    annotation is defined; on scene0000_00's mesh the segments are the same in number (668)
    and 99.8 % of the vertices lie in their segment's majority ScanNet segment, both ways.

    Args: vertices (N,3) float; faces (F,3) int; normal (N,3) oriented vertex normals
    (default: as ScanNet, the mean of the adjacent faces' unit normals, not renormalised, so
    it is shorter at creases)."""
    p = np.asarray(vertices, np.float64)
    f = check_int("mesh_segments", "faces", faces, (None, 3))  # integers, (F,3)
    if len(f) and (f.min() < 0 or f.max() >= len(p)):
        raise SceneError(f"mesh_segments: face indices must lie in [0, {len(p)})")
    nrm = _mean_unit_face_normal(p, f) if normal is None else np.asarray(normal, np.float64)
    u, v = mesh_edges(f)
    d = p[v] - p[u]
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    w = 1.0 - (nrm[u] * nrm[v]).sum(1)
    convex = (nrm[v] * d).sum(1) > 0
    w = np.where(convex, w * w, w)
    return segment_graph(u, v, w, len(p), k_thresh, min_verts)


def scene_superpoints(scene: Scene, method: str = "fh", **params) -> np.ndarray:
    """The scene's own over-segmentation when it has one (unless ``recompute=True``), else
    ``superpoints`` of its points with ``method`` (colour, or LiDAR intensity, from
    ``partition_color``; the scene's normals where it has them)."""
    if scene.segment is not None and not params.get("recompute", False):
        return scene.segment
    params.pop("recompute", None)
    if method == "fh":
        return felzenszwalb(scene.coord, scene.normal, scene.color, **params)
    return superpoints(scene.coord, partition_color(scene), scene.normal, method=method, **params)


def partition_color(scene: Scene) -> np.ndarray | None:
    """What the l0 partition compares besides shape and position: the scene's colour (N,3) in
    [0,1], else its LiDAR intensity as one channel, else None."""
    if scene.color is not None:
        return scene.color
    if scene.intensity is not None:
        return np.asarray(scene.intensity, np.float64).reshape(-1, 1)
    return None


SUPERPOINT_METHODS = ("l0", "fh", "mesh")


def superpoint_hierarchy(coord: np.ndarray, color: np.ndarray | None = None,
                         reference_spacing: float | None = REFERENCE_SPACING, **params) -> np.ndarray:
    """(L,N) int64 nested superpoint ids, finest level first: the l0 partition's levels
    (``l0_partition.l0_hierarchy``; ``params`` are ``L0Config`` fields). ``reference_spacing``:
    the median point spacing (metres) at which the levels' ``min_size`` hold; on a sparser
    cloud they shrink to keep the same smallest area (``min_size_at``), as in the labellers'
    partitions; None takes them as given."""
    from dataclasses import replace

    from .l0_partition import L0Config, l0_hierarchy
    config = L0Config.from_params(**params)
    if reference_spacing is not None:
        spacing = point_spacing(coord)
        config = replace(config, min_size=tuple(min_size_at(m, spacing, reference_spacing) for m in config.min_size))
    return l0_hierarchy(coord, color, config)


def _settings(fn, inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The parameters of ``fn`` but ``inputs`` (its arrays): what ``superpoints`` takes as ``params``."""
    return tuple(p for p in inspect.signature(fn).parameters if p not in inputs)


def superpoints(coord: np.ndarray, color: np.ndarray | None = None, normal: np.ndarray | None = None,
                method: str = "l0", faces: np.ndarray | None = None, reference_spacing: float | None = REFERENCE_SPACING,
                **params) -> np.ndarray:
    """(N,) int64 superpoint ids of a cloud, numbered 0..S-1 by first point.

    ``method``: ``"l0"`` (default) the finest level of the l0 partition over shape, colour,
    position and elevation (``superpoint_hierarchy`` gives all levels; ``params`` are
    ``L0Config`` fields), which follows objects on bare scans; ``"fh"`` Felzenszwalb-Huttenlocher
    on the kNN graph (``felzenszwalb``'s parameters); ``"mesh"`` ScanNet's segmentator on a
    triangle mesh (``faces`` (F,3) required; ``mesh_segments``' parameters).
    ``reference_spacing``: for ``"l0"`` and ``"fh"``, the median point spacing (metres) at
    which sizes in points (``min_size``, given or default) hold; a sparser cloud gets them
    scaled down (``min_size_at``), as propagation's partitions do; None takes them as given.

    Args: coord (N,3) float metres; color (N,3) float in [0,1], (N,1) a LiDAR intensity, or
    None; normal (N,3) or None (estimated where a method needs it); faces (F,3) int vertex
    indices (checked by ``mesh_segments``). The arrays are checked here (shape, finite values,
    colours in [0,1])."""
    if method not in SUPERPOINT_METHODS:
        raise ValueError(f"superpoints: method must be one of {SUPERPOINT_METHODS}, got {method!r}")
    coord = check_float("superpoints", "coord", coord, (None, 3), np.float64)
    coord = float32_near_origin(coord)  # the arrays as pcweak's scenes hold them
    n = len(coord)
    if color is not None:
        color = check_float("superpoints", "color", color, (n, None))
        if color.shape[1] not in (1, 3):
            raise SceneError(f"superpoints.color: expected (N,3) colours or (N,1) intensities, got {color.shape[1]} columns")
        if color.shape[1] == 3:
            check_color_range("superpoints: color", color)
    if normal is not None:
        normal = check_float("superpoints", "normal", normal, (n, 3))
    if method == "l0":
        return superpoint_hierarchy(coord, color, reference_spacing, **params)[0]
    fn, known = ((felzenszwalb, _settings(felzenszwalb, ("coord", "normal", "color", "edges"))) if method == "fh" else
                 (mesh_segments, _settings(mesh_segments, ("vertices", "faces", "normal"))))
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"{method} superpoints: unknown parameter(s) {unknown}; known: {list(known)}")
    check_ranges(fn, f"{method} superpoints", params)
    if method == "fh":
        if reference_spacing is not None:
            size = params.pop("min_size", inspect.signature(felzenszwalb).parameters["min_size"].default)
            params["min_size"] = min_size_at(size, point_spacing(coord), reference_spacing)
        return felzenszwalb(coord, normal, color, **params)
    if faces is None:
        raise ValueError("superpoints: method 'mesh' needs faces (F,3)")
    return mesh_segments(coord, faces, normal=normal, **params)

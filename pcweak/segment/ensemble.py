"""Several partitions of one cloud, for a labeller to vote over (``propagate``'s
``partition.method="ensemble"``, the default for scenes without their own segments).

Every partition of bare points cuts some objects wrongly: Felzenszwalb-Huttenlocher (FH) on
normals merges coplanar objects with what they lie against, FH with colour on every edge cuts
textured surfaces apart and joins same-coloured neighbours, the l0 partition groups by colour,
shape and height but joins across creases. Their errors fall in different places, so a walk run
on each and the class probabilities averaged per point labels better than the walk on any one
of them (docs/results.md, "Label propagation", with how the members were chosen). The members
are fixed multiples of the FH settings the caller gives, so ``c`` still sets the scale.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .superpoints import fh_edge_terms, fh_weights, segment_sorted, sort_edges

# (multiple of c, multiple of color_weight) of the FH members; None: normals alone (the colour
# term only where normals agree to ``color_max_normal_diff``), a number: colour on every edge
FH_MEMBERS: tuple[tuple[float, float | None], ...] = ((1.0, None), (0.4, None), (4.0, None), (1.0, 0.2), (10.0, 0.6))
# the first levels of ``l0_partition.L0Config``'s default hierarchy taken as members
L0_LEVELS = 2


def l0_members(coord: np.ndarray, color: np.ndarray | None, edges: tuple[np.ndarray, np.ndarray],
               l0_min_size: tuple[int, ...] | None = None) -> np.ndarray:
    """(L0_LEVELS, N) int64: the ensemble's l0 members, the first levels of ``L0Config``'s
    default hierarchy (``l0_min_size``: their smallest superpoints in points, None: the
    config's) on the kNN ``edges``."""
    from .l0_partition import L0Config, l0_hierarchy
    d = L0Config()
    config = L0Config(regularization=d.regularization[:L0_LEVELS], min_size=(l0_min_size or d.min_size)[:L0_LEVELS])
    return l0_hierarchy(coord, color, config, edges=edges)


def partition_ensemble(coord: np.ndarray, normal: np.ndarray, color: np.ndarray | None,
                       edges: tuple[np.ndarray, np.ndarray], c: float = 0.05, min_size: int = 30,
                       color_weight: float = 0.5, color_max_normal_diff: float | None = 1e-6,
                       l0_min_size: tuple[int, ...] | None = None,
                       l0_edges: tuple[np.ndarray, np.ndarray] | None = None) -> list[np.ndarray]:
    """The member partitions of a cloud, each (N,) int64 ids 0..S-1; the first is plain FH at
    ``c`` (what ``partition.method="fh"`` gives). Members that would repeat another (colour
    members of a cloud without colour) are left out.

    Args: coord (N,3) float metres; normal (N,3); color (N,3) in [0,1], or (N,1) LiDAR
    intensity, or None; edges: the cloud's kNN graph (``knn_graph``); c, min_size,
    color_weight, color_max_normal_diff: FH's settings (``felzenszwalb``); l0_min_size: the
    l0 levels' smallest superpoints in points (None: ``L0Config``'s); l0_edges: the graph the
    l0 levels are cut on, where it is not ``edges`` (None: ``edges``). A caller that can use
    the time the l0 levels take (propagation: normals, FH members and their walks) submits
    ``l0_members`` itself and calls ``fh_members``."""
    # the l0 levels (most of the time on a large cloud, in a kernel that releases the GIL) are
    # built on a second thread while the FH members are cut here: the same partitions, sooner
    # where there is a second core
    with ThreadPoolExecutor(1) as pool:
        l0_levels = pool.submit(l0_members, coord, color, edges if l0_edges is None else l0_edges, l0_min_size)
        members = fh_members(normal, color, edges, len(coord), c, min_size, color_weight, color_max_normal_diff)
        members.extend(l0_levels.result())
    return members


def fh_members(normal: np.ndarray, color: np.ndarray | None, edges: tuple[np.ndarray, np.ndarray], n: int,
               c: float, min_size: int, color_weight: float, color_max_normal_diff: float | None) -> list[np.ndarray]:
    """The ensemble's FH members (``FH_MEMBERS``), each (n,) int64 ids, as ``felzenszwalb``
    with those settings gives them; members whose edge weights are the same (scales of one
    weighting) share one sort of the edges."""
    u, v = edges
    terms = fh_edge_terms(normal, color, u, v)
    sorted_edges: dict[float | None, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    members = []
    for c_mult, w_mult in FH_MEMBERS:
        if w_mult is not None and color is None:
            continue
        if w_mult not in sorted_edges:
            w = fh_weights(terms, color_weight * (w_mult or 1.0), color_max_normal_diff if w_mult is None else None)
            sorted_edges[w_mult] = sort_edges(u, v, w)
        members.append(segment_sorted(*sorted_edges[w_mult], n, c * c_mult, min_size))
    return members


def common_refinement(members: list[np.ndarray]) -> np.ndarray:
    """(N,) int64 ids 0..S-1 of the cells where every member partition agrees (two points share
    a cell when they share a superpoint in every member): the finest partition whose cells a
    vote over the members labels uniformly."""
    out = np.zeros(len(members[0]), np.int64)
    for m in members:
        out = np.unique(out * (int(m.max()) + 1) + m, return_inverse=True)[1].astype(np.int64)
    return out

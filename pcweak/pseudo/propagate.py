"""Label propagation from sparse seeds over a superpoint graph, in five configured stages
(``PropagateConfig``): partition -> node features -> affinity graph -> solver -> refine (a
per-scene classifier trained on the walk's sure points, ``pseudo/refine.py``).

Semantic: label spreading (Zhou et al. 2004) — F <- alpha * S F + (1 - alpha) * Y with
S = D^-1/2 W D^-1/2 — iterated with sparse products; per-node class probabilities are the
normalised rows of F, confidence their maximum; nodes the walk never reaches get -1
(``solver.min_reach``; ``graph.bridge`` joins the pieces of the graph so that every node is
reached). ``solver.name="harmonic"`` solves the absorbing random walk instead, ``"geodesic"``
labels each node with the class of its cheapest path from a seed.
Instance: one walk per clicked instance; after every step the walks' probabilities are
renormalised across instances at each node (RWSeg's competition); a node joins the winning
instance when its probability passes ``solver.instance_threshold`` and the instance's class
agrees with the node's semantic label.

The graph's nodes are superpoints (the scene's own, Felzenszwalb-Huttenlocher or l0 ones) or
points; a scene without its own superpoints is walked on several partitions and the class
probabilities averaged per point (``partition.method="ensemble"``). Edges join nodes whose
points are kNN neighbours, with affinity
exp(-w_dist d^2/sd^2 - w_color |dc|^2/sc^2 - w_normal (1 - |n.n|)/sn - w_feat |df|^2/sf^2
- w_fpfh |dh|^2/sh^2), h the nodes' mean FPFH descriptors (``descriptors.fpfh_features``);
the normal term of a convex crease (``edge_convexity``) is scaled by ``convex_factor``; nodes
of the floor are also joined to their nearest floor nodes (``floor_edges``). What says which
points belong together (``groups``: class-agnostic 3D proposals, ``group_evidence``, or 2D
masks through depth, ``mask_views``) then joins and cuts the edges.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from itertools import chain
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import SceneError
from ..geometry import float32_near_origin, joined_to
from ..parallel import return_freed_memory
from ..params import COUNT_RANGE, build_config
from ..scene import PseudoLabels, check_color_range, clashing_seeds, to_numpy
from ..segment.descriptors import (SCAN_LINE_NORMAL_NEIGHBOURS, along_scan_lines, forget_neighbours, share_neighbours,
                                   shares_shape_features)
from ..segment.ensemble import common_refinement, fh_members, l0_members, partition_ensemble
from ..segment.l0_partition import L0Config
from ..segment.superpoints import (NORMAL_NEIGHBOURS, REFERENCE_SPACING, estimate_normals, felzenszwalb, knn_graph, min_size_at, point_spacing,
                                   segment_mean, segment_sum)
from .group_evidence import GroupingConfig, check_groups, grouped_affinities
from .mask_views import MaskEvidence
from .refine import RefineConfig, point_descriptors, refine_probabilities, top_two
from .room_geometry import above_floor, edge_convexity, floor_edges, floor_level, orient_normals, warn_if_not_z_up
from .solvers import geodesic, harmonic, spread

_log = logging.getLogger(__name__)  # one line per finished stage (pcweak label shows them for one scene)

SOLVERS = ("spread", "harmonic", "geodesic")
PARTITIONS = ("ensemble", "fh", "l0", "points")


@dataclass(frozen=True)
class PartitionConfig:
    """Stage 1, the graph's nodes. ``method``: ``"ensemble"`` (default) the walk on each of
    several partitions (``segment.ensemble.partition_ensemble``: FH at multiples of ``c`` and
    ``color_weight``, and two l0 levels), class probabilities averaged per point; ``"fh"``
    Felzenszwalb-Huttenlocher superpoints on the kNN graph (``felzenszwalb``'s ``c``,
    ``min_size``, ``color_weight``, ``color_max_normal_diff``), ``"l0"`` the finest level of
    the l0 partition (``segment.l0_partition``; ``l0_regularization`` and ``l0_min_size``, None
    for its defaults) or ``"points"`` (every point its own node); a scene's own
    over-segmentation (``segment``) replaces any of them. ``split_below``: a seed whose normal and
    its node's dominant normal disagree (|cos| below it) seeds only its own surface, carved out
    of the node (``split_seed_surfaces``); 0 = off. ``reference_spacing``: the sizes in points
    (``min_size``, ``l0_min_size``, the ensemble's l0 levels) hold at this median point spacing
    (metres; ScanNet's mesh vertices lie 2.9 cm apart, and the defaults were chosen there); on
    a sparser cloud each shrinks by (reference_spacing / spacing)^2, so a superpoint keeps its
    smallest area (``segment.superpoints.min_size_at``); None: counts as given."""
    method: str = "ensemble"
    c: float = 0.05
    min_size: int = 30
    color_weight: float = 0.5
    color_max_normal_diff: float | None = 1e-6
    l0_regularization: float | None = None
    l0_min_size: int | None = None
    split_below: float = 0.3
    reference_spacing: float | None = REFERENCE_SPACING

    def __post_init__(self) -> None:
        if self.reference_spacing is not None and not self.reference_spacing > 0:
            raise ValueError(f"partition.reference_spacing must be > 0 metres (or null for off), got {self.reference_spacing}")
        if self.method not in PARTITIONS:
            raise ValueError(f"partition.method must be one of {PARTITIONS}, got {self.method!r}")
        if not 0 <= self.split_below <= 1:
            raise ValueError(f"partition.split_below must lie in [0, 1], got {self.split_below}")
        if not self.c > 0 or not self.min_size >= 1:
            raise ValueError(f"partition.c must be > 0 and partition.min_size >= 1, got {self.c} and {self.min_size}")
        if not self.color_weight >= 0:  # a negative weight would join points the more their colours differ
            raise ValueError(f"partition.color_weight must be >= 0 (0 for off), got {self.color_weight}")
        if self.color_max_normal_diff is not None and not self.color_max_normal_diff >= 0:
            raise ValueError(f"partition.color_max_normal_diff must be >= 0 (or null: colour wherever), "
                             f"got {self.color_max_normal_diff}")
        if (self.l0_regularization is not None and not self.l0_regularization > 0) or (self.l0_min_size is not None and self.l0_min_size < 1):
            raise ValueError(f"partition.l0_regularization must be > 0 and partition.l0_min_size >= 1, "
                             f"got {self.l0_regularization} and {self.l0_min_size}")


@dataclass(frozen=True)
class FeatureConfig:
    """Stage 2, per-node descriptors: mean FPFH (``descriptors.fpfh_features``, ``fpfh_radius``
    metres on ``fpfh_voxel`` voxels), computed only when ``graph.w_fpfh`` > 0."""
    fpfh_radius: float = 0.1
    fpfh_voxel: float = 0.03

    def __post_init__(self) -> None:
        if not self.fpfh_radius > 0 or not self.fpfh_voxel > 0:
            raise ValueError(f"features.fpfh_radius and features.fpfh_voxel must be > 0, got {self.fpfh_radius} and {self.fpfh_voxel}")


@dataclass(frozen=True)
class GraphConfig:
    """Stage 3, the affinity graph (``affinity_graph``): nodes whose points are among each
    other's ``k`` nearest neighbours are joined with affinity exp(-sum of weighted, scaled
    squared differences); a sigma of None scales by the median over the graph's edges.
    ``convex_factor`` scales the normal term on convex creases (1 = off); ``floor_links`` joins
    each floor node to that many nearest floor nodes (0 = off); ``bridge`` joins the graph's
    pieces so that every node is reached; ``contact_power`` > 0 weights an edge by the length
    of the shared border. ``k_scan_lines`` replaces ``k`` on a cloud sampled along scan lines
    (``descriptors.along_scan_lines``: a spinning LiDAR's rings), whose
    ``k`` nearest neighbours lie on the point's own ring and leave the rings unjoined; set it to
    ``k`` to keep one graph for every cloud. The l0 partitions are cut on ``L0Config.k``
    neighbours whatever these are (``l0_edges``)."""
    k: int = 10
    k_scan_lines: int = 40
    w_dist: float = 1.0
    w_color: float = 1.0
    w_normal: float = 1.0
    w_feat: float = 1.0
    w_fpfh: float = 3.0
    sigma_dist: float | None = None
    sigma_color: float = 0.1
    sigma_normal: float = 0.1
    sigma_feat: float | None = None
    sigma_fpfh: float | None = 0.1
    contact_power: float = 0.0
    convex_factor: float = 0.1
    convex_threshold: float = 0.1
    floor_links: int = 6
    floor_band: float = 0.08
    floor_color_weight: float = 0.3
    bridge: bool = False

    def __post_init__(self) -> None:
        if not self.k >= 1:
            raise ValueError(f"graph.k must be >= 1, got {self.k}")
        if not self.k_scan_lines >= 1:
            raise ValueError(f"graph.k_scan_lines must be >= 1, got {self.k_scan_lines}")
        for name in ("w_dist", "w_color", "w_normal", "w_feat", "w_fpfh", "contact_power"):
            if not getattr(self, name) >= 0:  # a negative weight would join nodes the more they differ
                raise ValueError(f"graph.{name} must be >= 0 (0 for off), got {getattr(self, name)}")
        if not self.convex_factor >= 0:  # a negative factor would make convex creases stronger than flat ground
            raise ValueError(f"graph.convex_factor must be >= 0, got {self.convex_factor}")
        if not self.floor_links >= 0 or not self.floor_band > 0 or not self.floor_color_weight >= 0:
            raise ValueError(f"graph.floor_links must be >= 0, graph.floor_band > 0 and graph.floor_color_weight >= 0, "
                             f"got {self.floor_links}, {self.floor_band} and {self.floor_color_weight}")
        for name in ("sigma_dist", "sigma_color", "sigma_normal", "sigma_feat", "sigma_fpfh"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"graph.{name} must be > 0 (or null for the median), got {v}")


@dataclass(frozen=True)
class SolverConfig:
    """Stage 4, from seeds to labels. ``name``: ``"spread"`` (label spreading, ``alpha`` the
    restart weight, at most ``iterations`` sparse products), ``"harmonic"`` (absorbing random
    walker, one sparse solve) or ``"geodesic"`` (per class the cheapest path from a seed, edge
    cost -log(affinity) + ``geodesic_hop``, confidence exp(-cost gap / ``geodesic_temperature``)).
    ``class_balance``: each class's seed mass is divided by its seed count to this power (0 =
    off). Nodes whose walk mass is at most ``min_reach``, or whose confidence is below
    ``min_confidence``, get -1, and so does a point labelled ``floor`` (a class of that name)
    more than ``floor_band`` metres above the floor (``above_floor``; None = off), unless it lies
    on a raised floor level a seed labelled floor stands on (``raised_floor``): furniture of a
    class no seed names is otherwise taken by the floor, the room's largest flat class, and a
    pseudo-label left out is better than a wrong one for the model trained on it. A node joins
    a clicked instance when that instance's walk probability passes ``instance_threshold`` and
    its class agrees."""
    name: str = "spread"
    alpha: float = 0.9
    iterations: int = 300
    class_balance: float = 0.3
    min_confidence: float = 0.0
    min_reach: float = 0.0
    geodesic_hop: float = 3.0
    geodesic_temperature: float = 12.0
    instance_threshold: float = 0.5
    floor_band: float | None = 0.1

    def __post_init__(self) -> None:
        if self.floor_band is not None and not self.floor_band > 0:
            raise ValueError(f"solver.floor_band must be > 0 metres (or null for off), got {self.floor_band}")
        if self.name not in SOLVERS:
            raise ValueError(f"solver.name must be one of {SOLVERS}, got {self.name!r}")
        if not self.min_reach >= 0:  # a negative threshold would label nodes no walk reached
            raise ValueError(f"solver.min_reach must be >= 0, got {self.min_reach}")
        if not self.geodesic_temperature > 0 or not self.geodesic_hop >= 0:  # Dijkstra needs costs >= 0
            raise ValueError(f"solver.geodesic_temperature must be > 0 and solver.geodesic_hop >= 0, "
                             f"got {self.geodesic_temperature} and {self.geodesic_hop}")
        if not 0 < self.alpha < 1 or not self.iterations >= 1:
            raise ValueError(f"solver.alpha must lie in (0, 1) and solver.iterations be >= 1, got {self.alpha} and {self.iterations}")
        if not self.class_balance >= 0:  # a negative power would favour the classes with the most seeds
            raise ValueError(f"solver.class_balance must be >= 0 (0 for off), got {self.class_balance}")
        for name in ("min_confidence", "instance_threshold"):  # probabilities: outside [0, 1] all or nothing passes
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"solver.{name} must lie in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class PropagateConfig:
    """Every setting of ``propagate``, one stage each, and ``grouping``, the trust in 3D proposals
    where they are given; ``dataclasses.asdict`` of it is what a ``PseudoLabels`` made by
    propagation records in ``params``."""
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    grouping: GroupingConfig = field(default_factory=GroupingConfig)


def _np(x: Any, name: str, dtype=None) -> np.ndarray | None:
    if x is None:
        return None
    a = to_numpy(x)
    return a.astype(dtype) if dtype is not None else a


def _coord(x: Any) -> np.ndarray | None:
    """Points as float32, georeferenced ones moved near the origin (``geometry.float32_near_origin``:
    what is computed here depends on differences of positions only)."""
    a = _np(x, "coord")
    return None if a is None else float32_near_origin(a) if a.ndim == 2 and a.shape[1:] == (3,) else a.astype(np.float32)


def _ints(x: Any, name: str, owner: str = "propagate") -> np.ndarray:
    """``x`` as a flat int64 array; SceneError when it holds anything but integers (5.7 as an index
    or a label would be cut to 5 without a word)."""
    a = np.asarray(to_numpy(x))
    if a.size and a.dtype.kind not in "iub":
        raise SceneError(f"{owner}: {name} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64).reshape(-1)


def node_features(node: np.ndarray, n_nodes: int, coord: np.ndarray, color: np.ndarray | None,
                  normal: np.ndarray | None, feat: np.ndarray | None, fpfh: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Mean position/colour/feature/FPFH per node, the dominant normal direction (principal
    axis of the sum of n n^T, so unoriented normals do not cancel) and ``facing_z``, the mean
    signed n_z (an underside's oriented normals give about -1)."""
    cnt = np.bincount(node, minlength=n_nodes).astype(np.float64)

    def mean(a):
        return segment_mean(node, n_nodes, a)
    out = {"count": cnt, "coord": mean(coord)}
    if color is not None:
        out["color"] = mean(color.astype(np.float64))
    if feat is not None:
        out["feat"] = mean(feat.astype(np.float64))
    if fpfh is not None:
        out["fpfh"] = mean(fpfh)  # float32, widened a few columns at a time
    if normal is not None:
        nn = normal.astype(np.float64)
        M = segment_sum(node, n_nodes, (nn[:, :, None] * nn[:, None, :]).reshape(-1, 9))
        _, vec = np.linalg.eigh(M.reshape(-1, 3, 3) + 1e-12 * np.eye(3))
        out["normal"] = vec[:, :, -1]
        out["facing_z"] = mean(nn[:, 2:3])[:, 0]  # signed: about -1 where given normals all face down
    return out


def affinity_graph(coord: np.ndarray, node: np.ndarray, feats: dict[str, np.ndarray], config: GraphConfig = GraphConfig(),
                   edges: tuple[np.ndarray, np.ndarray] | None = None) -> sp.csr_matrix:
    """Symmetric (nodes x nodes) affinity matrix over nodes whose points are kNN neighbours
    (``edges`` reuses a point kNN graph from ``knn_graph``, else ``config.k`` neighbours); with
    ``bridge``, the pieces of that graph are joined by ``bridge_edges`` (their affinity falls
    with their length, down to ``BRIDGE_MIN_AFFINITY``). The normal term of an edge whose
    ``edge_convexity`` passes ``convex_threshold`` is scaled by ``convex_factor``. With
    ``floor_links`` > 0, ``floor_edges`` joins each floor node to that many nearest floor nodes,
    with ``floor_color_weight`` times the colour term alone (an edge already there keeps the
    larger affinity).

    Args: coord (N,3) points; node (N,) int64 node ids; feats from ``node_features``.
    Returns: (S,S) float64 CSR matrix."""
    g = config
    k, w_dist, w_color, w_normal, w_feat, w_fpfh = g.k, g.w_dist, g.w_color, g.w_normal, g.w_feat, g.w_fpfh
    sigma_dist, sigma_color, sigma_normal, sigma_feat, sigma_fpfh = g.sigma_dist, g.sigma_color, g.sigma_normal, g.sigma_feat, g.sigma_fpfh
    n_nodes = len(feats["count"])
    u, v = edges if edges is not None else knn_graph(coord, k)
    a, b = node[u], node[v]
    keep = a != b
    a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    pair, contact = np.unique(a.astype(np.int64) * n_nodes + b, return_counts=True)
    a, b = pair // n_nodes, pair % n_nodes
    c = feats["coord"]

    def colour_term(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return w_color * ((feats["color"][a] - feats["color"][b]) ** 2).sum(1) / sigma_color ** 2

    def symmetric(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> sp.csr_matrix:
        return sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                             shape=(n_nodes, n_nodes)).tocsr()
    n_bridge = 0
    if g.bridge:
        ba, bb = bridge_edges(c, a, b)
        n_bridge = len(ba)
        a, b = np.concatenate([a, ba]), np.concatenate([b, bb])
        contact = np.concatenate([contact, np.ones(n_bridge, contact.dtype)])
    if len(a) == 0:
        return sp.csr_matrix((n_nodes, n_nodes))
    d2 = ((c[a] - c[b]) ** 2).sum(1)
    sd2 = (sigma_dist ** 2) if sigma_dist else max(float(np.median(d2)), 1e-12)
    e = w_dist * d2 / sd2
    if "color" in feats and w_color:
        e += colour_term(a, b)
    if "normal" in feats and w_normal:
        crease = w_normal * (1.0 - np.abs((feats["normal"][a] * feats["normal"][b]).sum(1))) / sigma_normal
        if g.convex_factor != 1.0:  # a convex crease joins two faces of one object
            convex = edge_convexity(c, orient_normals(c, feats["normal"], coord), a, b) > g.convex_threshold
            crease = np.where(convex, g.convex_factor * crease, crease)
        e += crease
    for key, wk, sk in (("feat", w_feat, sigma_feat), ("fpfh", w_fpfh, sigma_fpfh)):
        if key in feats and wk:  # squared distance over its median unless a sigma is given
            df = ((feats[key][a] - feats[key][b]) ** 2).sum(1)
            sf2 = sk ** 2 if sk else max(float(np.median(df)), 1e-12)
            e += wk * df / sf2
    w = np.exp(-e)
    if g.contact_power:
        # a long shared border binds harder than a few touching points (chair legs on a floor)
        size = np.sqrt(np.minimum(feats["count"][a], feats["count"][b]))
        w = w * np.minimum(contact / np.maximum(size, 1.0), 1.0) ** g.contact_power
    if n_bridge:  # a long bridge is weak but never cut (exp underflows past ~25 median lengths)
        w[len(w) - n_bridge:] = np.maximum(w[len(w) - n_bridge:], BRIDGE_MIN_AFFINITY)
    W = symmetric(a, b, w)
    if g.floor_links and "normal" in feats:
        fa, fb = floor_edges(c, feats["normal"], coord, g.floor_links, g.floor_band, feats.get("facing_z"))
        if len(fa):
            fw = np.exp(-g.floor_color_weight * colour_term(fa, fb)) if "color" in feats and w_color else np.ones(len(fa))
            W = W.maximum(symmetric(fa, fb, fw)).tocsr()
    return W


BRIDGE_MIN_AFFINITY = 1e-6


def split_seed_surfaces(coord: np.ndarray, normal: np.ndarray, node: np.ndarray, seed_index: np.ndarray,
                        below: float = 0.3, agree: float = 0.8, radius: float = 0.05) -> np.ndarray:
    """Carve a seed's own surface out of a superpoint that straddles two surfaces. A click near
    the foot of an object often lands in a superpoint that is mostly the floor or wall around
    it (FH superpoints straddle such borders); seeding that node hands the object's class to
    the whole floor. When the seed's normal and its node's dominant normal disagree
    (|n_seed . n_node| < ``below``), the node's points whose normals agree with the seed's
    (>= ``agree``) and that connect to it (steps <= ``radius`` metres) become a node of their own;
    on real ScanNet that piece is often only a few points, and what matters is that the
    straddled node no longer carries the seed's class.

    Args: coord (N,3); normal (N,3) unit normals (either sign); node (N,) int64 node ids
    0..S-1; seed_index (K,) int64.
    Returns: (N,) int64 node ids, new nodes numbered from S."""
    out = node.copy()
    if not len(seed_index) or not below > 0:
        return out
    order = np.argsort(node, kind="stable")
    bounds = np.searchsorted(node[order], np.arange(int(node.max()) + 2))
    nxt = int(node.max()) + 1
    for i in np.unique(seed_index):
        j = node[i]
        if out[i] != j:  # already carved out with an earlier seed
            continue
        members = order[bounds[j]:bounds[j + 1]]
        nn = normal[members].astype(np.float64)
        _, vec = np.linalg.eigh(nn.T @ nn)
        ns = normal[i].astype(np.float64)
        if abs(vec[:, -1] @ ns) >= below:
            continue
        same = members[np.abs(nn @ ns) >= agree]
        if len(same) == len(members) or i not in same:
            continue
        part = same[joined_to(coord[same], int(np.flatnonzero(same == i)[0]), radius)]
        if len(part) < len(members):
            out[part] = nxt
            nxt += 1
    return out


def bridge_edges(centroid: np.ndarray, a: np.ndarray, b: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Edges that join the connected pieces of a graph into one (Boruvka on node centroids):
    each round, every piece gains an edge from its node nearest to another piece to that
    node. A sparse LiDAR sweep breaks into pieces (the real KITTI frames: 36-83 pieces of
    about 1,100 superpoints, rings far from the sensor), which a walk from the seeds would
    otherwise never reach; an indoor scan is one piece.

    Args: centroid (S,3) float node positions; a, b (E,) int64 existing edges.
    Returns: two (B,) int64 arrays of new edges (a < b)."""
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree
    n = len(centroid)
    out_a, out_b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    if n < 2:
        return out_a[0], out_b[0]
    tree = cKDTree(centroid)
    ea, eb = np.asarray(a, np.int64), np.asarray(b, np.int64)
    while True:
        adj = sp.coo_matrix((np.ones(len(ea)), (ea, eb)), shape=(n, n))
        ncomp, comp = connected_components(adj, directed=False)
        if ncomp == 1:
            break
        kk = min(k, n)
        while True:  # widen the search until some node sees another piece
            d, j = tree.query(centroid, kk)
            d, j = d.reshape(n, -1), j.reshape(n, -1)
            other = comp[j] != comp[:, None]
            if other.any(1).any() or kk == n:
                break
            kk = min(4 * kk, n)
        first = np.where(other.any(1), other.argmax(1), -1)
        has = first >= 0
        dist = np.where(has, d[np.arange(n), np.maximum(first, 0)], np.inf)
        # per piece, its node with the shortest way out
        order = np.lexsort((dist, comp))
        lead = order[np.r_[True, comp[order][1:] != comp[order][:-1]]]
        lead = lead[has[lead]]
        if len(lead) == 0:
            break
        u, v = lead, j[lead, first[lead]]
        key = np.unique(np.minimum(u, v) * n + np.maximum(u, v))
        u, v = key // n, key % n
        out_a.append(u)
        out_b.append(v)
        ea, eb = np.concatenate([ea, u]), np.concatenate([eb, v])
    return np.concatenate(out_a), np.concatenate(out_b)


def propagate_config(config: PropagateConfig | dict[str, Any] | None = None) -> PropagateConfig:
    """``config`` as a ``PropagateConfig``: None gives the defaults; a mapping may be nested
    (``{"graph": {"k": 8}}``) or dotted (``{"graph.k": 8}``). Unknown names, wrong types and
    out-of-range values raise ValueError here, before any work."""
    return build_config(PropagateConfig, config, "propagate")


def _check_arrays(coord: Any, seed_index: Any, seed_label: Any, seed_instance: Any, color: Any, normal: Any,
                  features: Any, segment: Any) -> dict[str, np.ndarray | None]:
    """The inputs of ``propagate`` as numpy arrays, checked (shapes, finiteness, colour range);
    seeds labelled -1 are dropped."""
    coord = _coord(coord)
    if coord is None or coord.ndim != 2 or coord.shape[1] != 3 or len(coord) == 0:
        raise SceneError(f"propagate: coord must be a non-empty (N,3) array, got {None if coord is None else coord.shape}")
    if not np.isfinite(coord).all():
        raise SceneError("propagate: coord contains NaN or infinite values")
    n = len(coord)
    seed_index, seed_label = _ints(seed_index, "seed_index"), _ints(seed_label, "seed_label")
    if len(seed_index) != len(seed_label):
        raise SceneError(f"propagate: seed_index has {len(seed_index)} entries but seed_label has {len(seed_label)}")
    if len(seed_index) and (seed_index.min() < 0 or seed_index.max() >= n):
        raise SceneError(f"propagate: seed_index values must lie in [0, {n})")
    ok = seed_label >= 0
    clash = clashing_seeds(seed_index[ok], seed_label[ok])
    if len(clash):
        raise SceneError(f"propagate: {len(clash)} of the seed points are given twice with different labels "
                         f"(seed_index {int(clash[0])} among them)")
    out: dict[str, np.ndarray | None] = {"coord": coord, "seed_index": seed_index[ok], "seed_label": seed_label[ok]}
    out["seed_instance"] = None if seed_instance is None else _ints(seed_instance, "seed_instance")[ok]
    for name, arr in (("color", color), ("normal", normal), ("features", features)):
        a = _np(arr, name, np.float32)
        if a is not None:
            if len(a) != n:
                raise SceneError(f"propagate: {name} has {len(a)} rows but coord has {n}")
            if not np.isfinite(a).all():  # would spread NaN affinities silently
                raise SceneError(f"propagate: {name} contains NaN or infinite values")
        out[name] = a
    if out["color"] is not None:
        check_color_range("propagate: color", out["color"])
    seg = None
    if segment is not None:
        seg = _ints(segment, "segment")
        if len(seg) != n:
            raise SceneError(f"propagate: segment has {len(seg)} entries but coord has {n}")
    out["segment"] = seg
    return out


def partition_members(coord: np.ndarray, normal: np.ndarray | None, color: np.ndarray | None, segment: np.ndarray | None,
                      seed_index: np.ndarray, edges: tuple[np.ndarray, np.ndarray], config: PartitionConfig,
                      k: int, spacing: float = 0.0, l0_levels: Future | None = None) -> Iterator[np.ndarray]:
    """Stage 1: the partitions the walk runs on, one at a time, each (N,) int64 node id per
    point, 0..S-1: the scene's ``segment`` renumbered, or the ensemble's members
    (``partition_ensemble``), FH or l0 superpoints on the kNN ``edges``, or single points;
    seeds' own surfaces carved out of each. ``spacing``: the cloud's median point spacing
    (``point_spacing``), which scales the sizes in points (``PartitionConfig.reference_spacing``);
    ``l0_levels``: the ensemble's l0 members already being built (a future of ``l0_members`` at
    ``l0_member_sizes``), which then come after its FH members, as soon as they are done: a
    caller can walk on the FH members meanwhile."""
    d = L0Config()

    def size(n: int) -> int:
        return min_size_at(n, spacing, config.reference_spacing)
    members: Iterable[np.ndarray]
    if segment is not None:
        members = [np.unique(segment, return_inverse=True)[1]]
    elif config.method == "ensemble" and l0_levels is not None:
        fh = fh_members(normal, color, edges, len(coord), config.c, size(config.min_size), config.color_weight,
                        config.color_max_normal_diff)
        members = chain(fh, _when_done(l0_levels))
    elif config.method == "ensemble":
        members = partition_ensemble(coord, normal, color, edges, c=config.c, min_size=size(config.min_size),
                                     color_weight=config.color_weight, color_max_normal_diff=config.color_max_normal_diff,
                                     l0_min_size=l0_member_sizes(config, spacing), l0_edges=l0_edges(coord, edges, k))
    elif config.method == "fh":
        members = [felzenszwalb(coord, normal, color, k=k, c=config.c, min_size=size(config.min_size), color_weight=config.color_weight,
                                edges=edges, color_max_normal_diff=config.color_max_normal_diff)]
    elif config.method == "l0":
        from ..segment.l0_partition import l0_hierarchy
        cfg = L0Config(regularization=(config.l0_regularization or d.regularization[0],),
                       min_size=(size(config.l0_min_size or d.min_size[0]),))
        members = [l0_hierarchy(coord, color, cfg, edges=l0_edges(coord, edges, k))[0]]
    else:
        members = [np.arange(len(coord))]
    for m in members:
        m = np.asarray(m).ravel()
        if config.split_below > 0 and normal is not None:
            m = split_seed_surfaces(coord, normal, m, seed_index, config.split_below)
        yield m


def l0_edges(coord: np.ndarray, edges: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The graph l0 partitions are cut on: ``L0Config.k`` (10) nearest neighbours, i.e. the
    point graph ``edges`` of ``k`` neighbours where ``k`` is that, else a graph of their own.
    Along scan lines the point graph has ``graph.k_scan_lines`` (40) to join the rings, but the
    l0 levels cut on it took twice the time of the rest of the walk and labelled no better
    (docs/results.md, "the l0 levels on a graph of their own")."""
    own = L0Config().k
    return edges if k == own else knn_graph(coord, own)


def l0_levels_built(coord: np.ndarray, color: np.ndarray | None, edges: tuple[np.ndarray, np.ndarray], k: int,
                    sizes: tuple[int, ...]) -> np.ndarray:
    """The ensemble's l0 members (``l0_members`` at ``sizes``) on ``l0_edges``; what
    propagation builds on its second thread."""
    return l0_members(coord, color, l0_edges(coord, edges, k), sizes)


def _when_done(levels: Future) -> Iterator[np.ndarray]:
    """The members a future holds, waited for only when the first is asked for."""
    yield from levels.result()


def l0_member_sizes(config: PartitionConfig, spacing: float) -> tuple[int, ...]:
    """The smallest superpoints, in points, of the ensemble's l0 levels on a cloud of median
    point spacing ``spacing`` (``L0Config``'s sizes scaled by ``min_size_at``)."""
    return tuple(min_size_at(m, spacing, config.reference_spacing) for m in L0Config().min_size)


def solve(W: sp.csr_matrix, Y: np.ndarray, config: SolverConfig) -> np.ndarray:
    """Stage 4: (S,C) float64 walk mass per node and class from the (S,C) seed mass ``Y``
    (already class-balanced) on the affinities ``W``."""
    if config.name == "spread":
        return spread(W, Y, config.alpha, config.iterations)
    if config.name == "harmonic":
        return harmonic(W, Y)
    return geodesic(W, Y, config.geodesic_hop, config.geodesic_temperature)


@dataclass
class ClassWalk:
    """The semantic walk on one partition: ``prob`` (S,C) float64 class probabilities per node
    (rows of seeded nodes are their seeds' class mix, rows of unreached nodes zero), ``reached``
    (S,) bool (reached by the walk or seeded), ``W`` the (S,S) affinities."""
    prob: np.ndarray
    reached: np.ndarray
    W: sp.csr_matrix


def _class_walk(coord: np.ndarray, node: np.ndarray, color: np.ndarray | None, normal: np.ndarray | None,
                feat: np.ndarray | None, fpfh: np.ndarray | None, seed_index: np.ndarray, seed_label: np.ndarray, C: int,
                cfg: PropagateConfig, edges: tuple[np.ndarray, np.ndarray], mask_evidence: Any,
                proposals: np.ndarray | None = None) -> ClassWalk:
    """Stages 2-4 on the partition ``node`` (N,) int64: node features, affinity graph (moved
    by the 2D masks or the 3D ``proposals`` where given), seed mass (class-balanced, plus
    the masks' class scores on unseeded nodes) and the solver."""
    n_nodes = int(node.max()) + 1
    feats = node_features(node, n_nodes, coord, color, normal, feat, fpfh)
    W = affinity_graph(coord, node, feats, cfg.graph, edges=edges)
    s = cfg.solver
    Y = np.zeros((n_nodes, C))
    np.add.at(Y, (node[seed_index], seed_label), 1.0)
    if s.class_balance:
        Y = Y / np.maximum(Y.sum(0, keepdims=True), 1.0) ** s.class_balance
    prior = None
    if mask_evidence is not None:
        nm = mask_evidence.views.node_masks(node, n_nodes, mask_evidence.min_seen)
        W = mask_evidence.reweight(W, nm)
        prior = mask_evidence.prior(nm, C)
    if proposals is not None:
        W = grouped_affinities(W, proposals, node, n_nodes, cfg.grouping)
    seeded = Y.sum(1) > 0
    if prior is not None:
        Y = Y + mask_evidence.prior_weight * np.where(seeded[:, None], 0.0, prior)
    F = solve(W, Y, s)
    mass = F.sum(1)
    reached = mass > s.min_reach
    P = np.where(reached[:, None], F / np.maximum(mass, 1e-300)[:, None], 0.0)
    P[seeded] = Y[seeded] / Y[seeded].sum(1, keepdims=True)  # seed nodes keep their own vote
    return ClassWalk(prob=P, reached=reached | seeded, W=W)


def _node_majority(node: np.ndarray, n_nodes: int, label: np.ndarray) -> np.ndarray:
    """(S,) int64 the most frequent label >= 0 of each node's points (-1 where it has none)."""
    ok = label >= 0
    counts = np.zeros((n_nodes, int(label.max()) + 1 if ok.any() else 1))
    np.add.at(counts, (node[ok], label[ok]), 1.0)
    return np.where(counts.max(1) > 0, counts.argmax(1), -1)


@shares_shape_features
def propagate(coord: Any, seed_index: Any, seed_label: Any, *, color: Any = None, normal: Any = None,
              segment: Any = None, seed_instance: Any = None, features: Any = None, classes: tuple[str, ...] = (),
              num_classes: int | None = None, config: PropagateConfig | dict[str, Any] | None = None,
              groups: Any = None) -> PseudoLabels:
    """Dense pseudo-labels from a few labelled points, through five configured stages:
    partition (superpoints) -> node features -> affinity graph -> solver -> refine.

    Args:
        coord: (N,3) float points, metres (numpy or torch, as every array here).
        seed_index: (K,) int indices of the labelled points; seed_label: (K,) int classes
            (-1 = ignored seed).
        color: (N,3) float in [0,1]; normal: (N,3) (estimated when missing and needed).
        segment: (N,) int over-segmentation to use as the graph's nodes (else ``config.partition``).
        seed_instance: (K,) int instance ids of clicks (enables instance propagation).
        features: (N,F) float learned per-point features (the graph's ``w_feat`` term).
        classes: class names (recorded; their count is the number of classes unless ``num_classes``).
        num_classes: number of classes C (default len(classes), else max seed label + 1).
        config: a ``PropagateConfig``, or a mapping of its settings (``propagate_config``).
        groups: which points belong together, either (N,) int class-agnostic 3D proposal
            ids (-1 = in none; a 3D segmenter's instances), which join and cut the graph's edges
            (``group_evidence``, ``config.grouping``), or a ``mask_views.MaskEvidence`` (2D masks
            through depth, ``lift_masks``), which re-weights them by the frames' masks and whose
            class scores add seed mass to unseeded nodes (with the harmonic solver those nodes
            become absorbing with the scores' class mix). Either way the 3D groups (the masks'
            segments) go to the forest after the walk.
    Returns:
        PseudoLabels: semantic (N,) int64, instance (N,) int64 (-1 without clicks), confidence
        (N,) float32 (max class probability); ``params`` = asdict(config), ``stats`` node and
        seed counts (``nodes`` of the first partition, ``partitions``, ``cells``),
        ``graph_k``, ``scan_lines`` and ``normal_k`` (the neighbours estimated normals came from,
        None when given), ``floor_left_out``, the points the floor rule left unlabelled, and
        with 3D proposals ``groups``, how many; ``extras['margin']`` (top-1 minus top-2 probability) and
        ``extras['superpoint']`` (per point, the id of the cell its labels are uniform over:
        the node, or with several partitions their ``common_refinement``).
    """
    cfg = propagate_config(config)
    x = _check_arrays(coord, seed_index, seed_label, seed_instance, color, normal, features, segment)
    coord, seed_index, seed_label, seed_instance = x["coord"], x["seed_index"], x["seed_label"], x["seed_instance"]
    color, normal, feat, seg = x["color"], x["normal"], x["features"], x["segment"]
    mask_evidence = groups if isinstance(groups, MaskEvidence) else None
    proposals = None if groups is None or mask_evidence is not None else check_groups(groups, len(coord))
    if num_classes is not None and not COUNT_RANGE.holds(num_classes):
        raise SceneError(f"propagate: num_classes must be an integer >= 1 (or None: from classes or the seeds), "
                         f"got {num_classes!r}")
    if num_classes and classes and len(classes) != num_classes:
        raise SceneError(f"propagate: {len(classes)} class names but num_classes {num_classes}")
    C = num_classes or (len(classes) if classes else (int(seed_label.max()) + 1 if len(seed_label) else 1))
    if len(seed_label) and seed_label.max() >= C:
        raise SceneError(f"propagate: seed_label holds class {int(seed_label.max())} but there are only {C} classes "
                         f"({'num_classes' if num_classes else 'len(classes)'})")
    scan_lines = cfg.graph.k_scan_lines != cfg.graph.k and along_scan_lines(coord)
    normal_k = NORMAL_NEIGHBOURS
    if scan_lines:  # a LiDAR's rings: more neighbours, so that the graph and the normals join a ring to the next
        cfg = replace(cfg, graph=replace(cfg.graph, k=cfg.graph.k_scan_lines))
        normal_k = SCAN_LINE_NORMAL_NEIGHBOURS
    g = cfg.graph
    shared_search = seg is None and cfg.partition.method == "ensemble"
    if shared_search:  # one neighbour search for the graph, the normals and the l0 levels' shape features
        share_neighbours(coord, max(g.k + 1, normal_k if normal is None else 0, L0Config().k_shape))
    edges = knn_graph(coord, g.k)  # one point graph for the superpoints and the affinities
    _log.info("%s points: neighbour graph made (%d neighbours)", f"{len(coord):,}", g.k)
    spacing = point_spacing(coord) if seg is None and cfg.partition.reference_spacing is not None else 0.0
    # the ensemble's l0 levels need no normals: they are built on a second thread from here on
    stats_normal_k = None  # the neighbours normals were estimated from (None: given, or not needed)
    with ThreadPoolExecutor(1) as pool:
        l0_levels = None
        if seg is None and cfg.partition.method == "ensemble":
            l0_levels = pool.submit(l0_levels_built, coord, color, edges, g.k, l0_member_sizes(cfg.partition, spacing))
        if normal is None and (g.w_normal or cfg.partition.method in ("fh", "ensemble") or g.w_fpfh):
            normal = estimate_normals(coord, normal_k)
            stats_normal_k = normal_k
            _log.info("normals estimated")
        floor_class = list(classes).index("floor") if "floor" in classes else None
        floor_seeds = seed_index[seed_label == floor_class] if floor_class is not None else None
        if floor_seeds is not None and normal is not None:
            warn_if_not_z_up(normal, floor_seeds)
        fpfh = None
        if g.w_fpfh:
            from ..segment.descriptors import fpfh_features
            fpfh = fpfh_features(coord, normal, radius=cfg.features.fpfh_radius, voxel=cfg.features.fpfh_voxel)
            return_freed_memory()
            _log.info("FPFH descriptors computed")
        # the walk on every member as it comes (the FH members' while the l0 levels are still
        # being built); class probabilities averaged per point over the members that reach it
        prob = np.zeros((len(coord), C))
        votes = np.zeros(len(coord))
        members = []
        for node in partition_members(coord, normal, color, seg, seed_index, edges, cfg.partition, g.k, spacing, l0_levels):
            walk = _class_walk(coord, node, color, normal, feat, fpfh, seed_index, seed_label, C, cfg, edges, mask_evidence,
                               proposals)
            ok, walk_nodes = walk.reached[node], walk.prob.shape[0]
            prob[ok] += walk.prob[node[ok]]
            votes += ok
            if not members:
                W = walk.W  # the instance walk runs on the first member's graph
            members.append(node)
            del walk
            return_freed_memory()  # a walk's graph and solver's pages, before the next partition's
            _log.info("partition %d (%s superpoints) made and walked", len(members), f"{walk_nodes:,}")
    if shared_search:  # the graph, the normals and the l0 levels are made
        forget_neighbours(coord)
    return_freed_memory()  # the l0 levels' thread has ended: its arena's free pages go back before the forest
    s = cfg.solver
    reached_pt = votes > 0
    prob = np.where(reached_pt[:, None], prob / np.maximum(votes, 1.0)[:, None], 0.0)
    cells = members[0] if len(members) == 1 else common_refinement(members)
    if cfg.refine.method != "none":
        floor = floor_level(coord)
        prob = refine_probabilities(prob, lambda index: point_descriptors(coord, color, fpfh, floor, index), seed_index,
                                    seed_label, cfg.refine, cells=cells,
                                    groups=proposals if mask_evidence is None else mask_evidence.groups)
        _log.info("forest after the walk done")
    node = members[0]
    n_nodes = int(node.max()) + 1
    top2 = top_two(prob)
    conf, margin = top2[:, -1], top2[:, -1] - top2[:, -2]
    semantic = np.where(reached_pt & (conf >= s.min_confidence), prob.argmax(1), -1)
    left_out = np.zeros(len(coord), bool)
    if s.floor_band is not None and floor_class is not None:
        left_out = above_floor(coord, semantic == floor_class, s.floor_band, floor_seeds)
        semantic[left_out] = -1
    inst_node = _instance_walk(W, node, node[seed_index], seed_label, seed_instance, semantic, s)
    confidence = np.where(semantic >= 0, conf, 0.0).astype(np.float32)
    instance = inst_node[node]
    # a labelled point keeps its own label, whatever its superpoint's vote says
    semantic[seed_index] = seed_label
    confidence[seed_index] = 1.0
    if seed_instance is not None:
        instance[seed_index] = seed_instance
    left_out[seed_index] = False
    stats = {"nodes": n_nodes, "seeds": int(len(seed_index)), "used_segment": seg is not None, "partitions": len(members),
             "graph_k": g.k, "scan_lines": bool(scan_lines),
             "normal_k": stats_normal_k,
             "cells": int(cells.max()) + 1, "floor_left_out": int(left_out.sum())}
    if proposals is not None:
        stats["groups"] = int(len(np.unique(proposals[proposals >= 0])))
    if seg is None:
        stats["min_size"] = min_size_at(cfg.partition.min_size, spacing, cfg.partition.reference_spacing)
        if spacing > 0:
            stats["point_spacing"] = round(spacing, 5)
    return PseudoLabels(semantic=semantic, instance=instance, confidence=confidence, method="propagate",
                        params=json.dumps(asdict(cfg), sort_keys=True), stats=json.dumps(stats, sort_keys=True),
                        classes=tuple(classes),
                        extras={"margin": margin.astype(np.float32), "superpoint": cells.astype(np.int64)})


def _instance_walk(W: sp.csr_matrix, node: np.ndarray, seed_node: np.ndarray, seed_label: np.ndarray,
                   seed_instance: np.ndarray | None, semantic: np.ndarray, s: SolverConfig) -> np.ndarray:
    """(S,) int64 instance id per node (-1 = none): one competing walk per clicked instance
    (RWSeg); a node joins the winner when its probability passes ``s.instance_threshold`` and
    the instance's class equals the node's semantic label, the most frequent of its points'
    labels ``semantic`` (N,) int64."""
    n_nodes = W.shape[0]
    inst_node = np.full(n_nodes, -1, np.int64)
    if seed_instance is None or not len(seed_instance):
        return inst_node
    lab = _node_majority(node, n_nodes, semantic)
    ids, inv = np.unique(seed_instance, return_inverse=True)
    keep = ids >= 0
    Yi = np.zeros((n_nodes, len(ids)))
    np.add.at(Yi, (seed_node, inv), 1.0)
    Yi = Yi[:, keep]
    ids = ids[keep]
    if len(ids):
        inst_class = np.array([np.bincount(seed_label[seed_instance == i]).argmax() for i in ids])
        Fi = spread(W, Yi, s.alpha, s.iterations, compete=True)
        best = Fi.argmax(1)
        pbest = Fi[np.arange(n_nodes), best]
        ok_i = (pbest >= s.instance_threshold) & (inst_class[best] == lab)
        inst_node = np.where(ok_i, ids[best], -1)
        inst_node[Yi.sum(1) > 0] = ids[Yi.argmax(1)][Yi.sum(1) > 0]
    return inst_node


def nearest_seed(coord: Any, seed_index: Any, seed_label: Any, *, seed_instance: Any = None, classes: tuple[str, ...] = (),
                 k_vote: int = 5) -> PseudoLabels:
    """Baseline: every point takes the class (and instance) of its nearest seed; confidence is
    the share of its ``k_vote`` nearest seeds that agree."""
    import torch
    from .. import ops
    coord = _coord(coord)
    seed_index, seed_label = _ints(seed_index, "seed_index", "nearest"), _ints(seed_label, "seed_label", "nearest")
    ok = seed_label >= 0
    seed_index, seed_label = seed_index[ok], seed_label[ok]
    n = len(coord)
    if len(seed_index) == 0:
        return PseudoLabels(semantic=np.full(n, -1), method="nearest", classes=tuple(classes))
    sup = torch.from_numpy(coord[seed_index])
    nb = ops.knn(sup, torch.from_numpy(coord), min(k_vote, len(seed_index))).idx.numpy()
    lab = seed_label[nb[:, 0]]
    conf = (seed_label[np.maximum(nb, 0)] == lab[:, None]).mean(1)
    inst = np.full(n, -1, np.int64)
    if seed_instance is not None:
        si = _ints(seed_instance, "seed_instance", "nearest")[ok]
        inst = si[nb[:, 0]]
    return PseudoLabels(semantic=lab, instance=inst, confidence=conf.astype(np.float32), method="nearest",
                        params=json.dumps({"k_vote": k_vote}), classes=tuple(classes))

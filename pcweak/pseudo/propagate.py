"""Label propagation from sparse seeds: random walks with restart over a superpoint graph.

Semantic: label spreading (Zhou et al. 2004) — F <- alpha * S F + (1 - alpha) * Y with
S = D^-1/2 W D^-1/2 — iterated with sparse products; per-node class probabilities are the
normalised rows of F, confidence their maximum, nodes the walk never reaches get -1
(``min_reach``; ``bridge`` joins the pieces of the graph so that every node is reached).
Instance: one walk per clicked instance; after every step the walks' probabilities are
renormalised across instances at each node (RWSeg's competition); a node joins the winning
instance when its probability passes ``instance_threshold`` and the instance's class agrees
with the node's semantic label.

The graph's nodes are superpoints (the scene's own or Felzenszwalb-Huttenlocher ones) or
points; edges join nodes whose points are kNN neighbours, with affinity
exp(-w_dist d^2/sd^2 - w_color |dc|^2/sc^2 - w_normal (1 - |n.n|)/sn - w_feat |df|^2/sf^2
- w_fpfh |dh|^2/sh^2), h the nodes' mean FPFH descriptors (``descriptors.fpfh_features``);
the normal term of a convex crease (``edge_convexity``) is scaled by ``convex_factor``; nodes
of the floor are also joined to their nearest floor nodes (``floor_edges``).
``solver="geodesic"`` labels each node with the class of its cheapest path from a seed instead.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import SceneError
from ..scene import PseudoLabels, check_color_range, to_numpy
from .superpoints import estimate_normals, felzenszwalb, knn_graph


def _np(x: Any, name: str, dtype=None) -> np.ndarray | None:
    if x is None:
        return None
    a = to_numpy(x)
    return a.astype(dtype) if dtype is not None else a


def node_features(node: np.ndarray, n_nodes: int, coord: np.ndarray, color: np.ndarray | None,
                  normal: np.ndarray | None, feat: np.ndarray | None, fpfh: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Mean position/colour/feature/FPFH per node, the dominant normal direction (principal
    axis of the sum of n n^T, so unoriented normals do not cancel) and ``facing_z``, the mean
    signed n_z (an underside's oriented normals give about -1)."""
    cnt = np.bincount(node, minlength=n_nodes).astype(np.float64)
    inv = 1.0 / np.maximum(cnt, 1)

    def mean(a):
        return np.stack([np.bincount(node, weights=a[:, d], minlength=n_nodes) for d in range(a.shape[1])], 1) * inv[:, None]
    out = {"count": cnt, "coord": mean(coord.astype(np.float64))}
    if color is not None:
        out["color"] = mean(color.astype(np.float64))
    if feat is not None:
        out["feat"] = mean(feat.astype(np.float64))
    if fpfh is not None:
        out["fpfh"] = mean(fpfh.astype(np.float64))
    if normal is not None:
        nn = normal.astype(np.float64)
        M = np.stack([np.bincount(node, weights=nn[:, i] * nn[:, j], minlength=n_nodes) for i in range(3) for j in range(3)], 1)
        _, vec = np.linalg.eigh(M.reshape(-1, 3, 3) + 1e-12 * np.eye(3))
        out["normal"] = vec[:, :, -1]
        out["facing_z"] = mean(nn[:, 2:3])[:, 0]  # signed: about -1 where given normals all face down
    return out


def affinity_graph(coord: np.ndarray, node: np.ndarray, feats: dict[str, np.ndarray], k: int = 10,
                   w_dist: float = 1.0, w_color: float = 1.0, w_normal: float = 1.0, w_feat: float = 1.0,
                   sigma_dist: float | None = None, sigma_color: float = 0.15, sigma_normal: float = 0.2,
                   sigma_feat: float | None = None, contact_power: float = 0.0,
                   edges: tuple[np.ndarray, np.ndarray] | None = None, w_fpfh: float = 0.0,
                   sigma_fpfh: float | None = 0.1, bridge: bool = False, convex_factor: float = 1.0,
                   convex_threshold: float = 0.1, floor_links: int = 0, floor_band: float = 0.08,
                   floor_color_weight: float = 0.3) -> sp.csr_matrix:
    """Symmetric (nodes x nodes) affinity matrix over nodes whose points are kNN neighbours
    (``edges`` reuses a point kNN graph from ``knn_graph``); with ``bridge``, the pieces of
    that graph are joined by ``bridge_edges`` (their affinity falls with their length, down to
    ``BRIDGE_MIN_AFFINITY``). The normal term of an edge whose ``edge_convexity`` passes
    ``convex_threshold`` is scaled by ``convex_factor`` (1 = convexity ignored). With
    ``floor_links`` > 0, ``floor_edges`` joins each floor node to that many nearest floor nodes,
    with ``floor_color_weight`` times the colour term alone (an edge already there keeps the
    larger affinity)."""
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
    if bridge:
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
        if convex_factor != 1.0:  # a convex crease joins two faces of one object
            convex = edge_convexity(c, orient_normals(c, feats["normal"], coord), a, b) > convex_threshold
            crease = np.where(convex, convex_factor * crease, crease)
        e += crease
    for key, wk, sk in (("feat", w_feat, sigma_feat), ("fpfh", w_fpfh, sigma_fpfh)):
        if key in feats and wk:  # squared distance over its median unless a sigma is given
            df = ((feats[key][a] - feats[key][b]) ** 2).sum(1)
            sf2 = sk ** 2 if sk else max(float(np.median(df)), 1e-12)
            e += wk * df / sf2
    w = np.exp(-e)
    if contact_power:
        # a long shared border binds harder than a few touching points (chair legs on a floor)
        size = np.sqrt(np.minimum(feats["count"][a], feats["count"][b]))
        w = w * np.minimum(contact / np.maximum(size, 1.0), 1.0) ** contact_power
    if n_bridge:  # a long bridge is weak but never cut (exp underflows past ~25 median lengths)
        w[len(w) - n_bridge:] = np.maximum(w[len(w) - n_bridge:], BRIDGE_MIN_AFFINITY)
    W = symmetric(a, b, w)
    if floor_links and "normal" in feats:
        fa, fb = floor_edges(c, feats["normal"], coord, floor_links, floor_band, feats.get("facing_z"))
        if len(fa):
            fw = np.exp(-floor_color_weight * colour_term(fa, fb)) if "color" in feats and w_color else np.ones(len(fa))
            W = W.maximum(symmetric(fa, fb, fw)).tocsr()
    return W


BRIDGE_MIN_AFFINITY = 1e-6


def floor_level(coord: np.ndarray) -> float:
    """The floor's height: the 1st percentile of z of the (N,3) points (z up; robust to a few
    points below the floor)."""
    return float(np.percentile(coord[:, 2], 1))

# Horizontal faces lower than this above the floor face up (floor, seats, tables, cabinet
# tops); higher ones face down (ceiling).
UPWARD_FACES_BELOW = 2.0


def orient_normals(centroid: np.ndarray, normal: np.ndarray, coord: np.ndarray) -> np.ndarray:
    """Signs for unoriented node normals, as seen from inside the scene: a horizontal face
    (|n_z| > 0.8) lower than ``UPWARD_FACES_BELOW`` metres above ``floor_level`` faces up, every other face towards the scene's centre (median x, y, z). Right for
    walls, floors and the room-facing sides of furniture, which is what a scan sees (on the
    real KITTI frames, facing the sensor instead changed nothing).

    Args: centroid (S,3), normal (S,3) unit node normals of either sign; coord (N,3) points.
    Returns: (S,3) float64 oriented normals."""
    n = np.asarray(normal, np.float64).copy()
    centre = np.median(coord, 0)
    flip = (n * (centre - centroid)).sum(1) < 0
    n[flip] *= -1
    up = (np.abs(n[:, 2]) > 0.8) & (centroid[:, 2] - floor_level(coord) < UPWARD_FACES_BELOW)
    n[up] *= np.sign(n[up, 2])[:, None]
    return n


def edge_convexity(centroid: np.ndarray, oriented_normal: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(E,) float (n_a - n_b) . (c_a - c_b) / |c_a - c_b| for edges a-b (the local convexity
    criterion of LCCP, Stein et al. 2014): > 0 where the two faces bend away from each other (a
    box's front and side), < 0 where they meet in a valley (a cabinet against a wall, a chair on
    the floor), about 0 on a flat surface."""
    d = centroid[a] - centroid[b]
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    return ((oriented_normal[a] - oriented_normal[b]) * d).sum(1)


def floor_edges(centroid: np.ndarray, normal: np.ndarray, coord: np.ndarray, k: int = 6,
                band: float = 0.08, facing_z: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Edges between the floor's nodes, however far apart the graph puts them: each floor node
    (horizontal, |n_z| > 0.9, centroid within ``band`` metres of ``floor_level``) joins its ``k`` nearest floor nodes. The floor is
    one surface, but furniture and unscanned strips cut it into pieces, and a piece between a
    bed and a desk is closer along the graph to them than to the floor's seeds; these edges let
    the floor's seeds reach all of it (real ScanNet, one click per instance: 0.606 vs 0.583
    mIoU).

    A node whose points' normals all face down (``facing_z`` < -0.9, possible only with
    oriented normals) is the underside of something resting on the floor, not floor: a scan
    never sees one, but box-sampled synthetic rooms have them.

    Args: centroid (S,3) float node positions; normal (S,3) unit node normals (either sign);
    coord (N,3) the points; z is up; facing_z (S,) mean signed n_z of each node's points.
    Returns: two (E,) int64 arrays of node pairs (a < b), without repeats."""
    from scipy.spatial import cKDTree
    ok = (np.abs(normal[:, 2]) > 0.9) & (np.abs(centroid[:, 2] - floor_level(coord)) < band)
    if facing_z is not None:
        ok &= facing_z > -0.9
    sel = np.flatnonzero(ok)
    if len(sel) < 2 or k < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, j = cKDTree(centroid[sel, :2]).query(centroid[sel, :2], min(k + 1, len(sel)))
    a = np.repeat(sel, j.shape[1] - 1)
    b = sel[j[:, 1:].ravel()]
    key = np.unique(np.minimum(a, b) * len(centroid) + np.maximum(a, b))
    key = key[key // len(centroid) != key % len(centroid)]
    return key // len(centroid), key % len(centroid)


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
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree
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
        pairs = cKDTree(coord[same]).query_pairs(radius, output_type="ndarray")
        adj = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(same), len(same)))
        _, comp = connected_components(adj, directed=False)
        part = same[comp == comp[np.flatnonzero(same == i)[0]]]
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


def _spread(W: sp.csr_matrix, Y: np.ndarray, alpha: float, iterations: int, compete: bool = False,
            tol: float = 1e-7) -> np.ndarray:
    """Iterate F <- alpha S F + (1 - alpha) Y (S symmetric-normalised); with ``compete``, rows
    are renormalised across columns after every step."""
    deg = np.asarray(W.sum(1)).ravel()
    dinv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-300)), 0.0)
    S = sp.diags(dinv) @ W @ sp.diags(dinv)
    S = S.tocsr()
    F = Y.copy()
    base = (1 - alpha) * Y
    for _ in range(iterations):
        Fn = alpha * (S @ F) + base
        if compete:
            s = Fn.sum(1, keepdims=True)
            Fn = np.where(s > 0, Fn / np.maximum(s, 1e-300), 0.0)
        if np.abs(Fn - F).max() < tol * max(np.abs(Fn).max(), 1e-300):
            F = Fn
            break
        F = Fn
    return F


def _harmonic(W: sp.csr_matrix, Y: np.ndarray) -> np.ndarray:
    """Absorbing random walk (Grady's random walker / Zhu's harmonic function): for every
    unseeded node, the probability that a walk started there reaches a seed of each class
    first; solves L_uu F_u = W_us Y_s per connected component. Seeded nodes keep Y."""
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import spsolve
    n = W.shape[0]
    seeded = Y.sum(1) > 0
    F = np.zeros_like(Y)
    F[seeded] = Y[seeded] / Y[seeded].sum(1, keepdims=True)
    ncomp, comp = connected_components(W, directed=False)
    has_seed = np.bincount(comp[seeded], minlength=ncomp) > 0
    u = np.flatnonzero(~seeded & has_seed[comp])
    if len(u) == 0:
        return F
    s = np.flatnonzero(seeded)
    deg = np.asarray(W.sum(1)).ravel()
    L_uu = (sp.diags(deg[u]) - W[u][:, u]).tocsc()
    rhs = W[u][:, s] @ F[s]
    sol = spsolve(L_uu, rhs)
    F[u] = np.asarray(sol).reshape(len(u), -1)
    return np.clip(F, 0.0, None)


def _geodesic(W: sp.csr_matrix, Y: np.ndarray, hop: float, temperature: float) -> np.ndarray:
    """Geodesic nearest seed: per class, the cheapest path from any of its seed nodes (Dijkstra,
    edge cost -log(affinity) + ``hop``), so a long object with one seed is reached across its
    smooth inside while a boundary costs as much as its weak edge says, however close it is.

    Args: W (S,S) affinities; Y (S,C) seed mass (> 0 where a node holds a seed of a class).
    Returns: (S,C) float64 soft assignment exp(-(D_c - D_min) / temperature), rows summing to 1;
    zero rows for nodes no seed can reach."""
    from scipy.sparse.csgraph import dijkstra
    n, C = Y.shape
    Wc = W.tocoo()
    cost = sp.csr_matrix((-np.log(np.maximum(Wc.data, 1e-300)) + hop, (Wc.row, Wc.col)), shape=W.shape)
    D = np.full((n, C), np.inf)
    for c in np.flatnonzero(Y.sum(0) > 0):
        D[:, c] = dijkstra(cost, directed=False, indices=np.flatnonzero(Y[:, c] > 0), min_only=True)
    dmin = D.min(1, keepdims=True)
    reached = np.isfinite(dmin[:, 0])
    F = np.zeros((n, C))
    E = np.exp(-(D[reached] - dmin[reached]) / temperature)
    F[reached] = E / E.sum(1, keepdims=True)
    return F


def propagate(coord: Any, seed_index: Any, seed_label: Any, *, color: Any = None, normal: Any = None,
              segment: Any = None, seed_instance: Any = None, features: Any = None, num_classes: int | None = None,
              classes: tuple[str, ...] = (), superpoints: bool = True, k: int = 10, alpha: float = 0.9,
              iterations: int = 300, w_dist: float = 1.0, w_color: float = 1.0, w_normal: float = 1.0, w_feat: float = 1.0,
              sigma_dist: float | None = None, sigma_color: float = 0.1, sigma_normal: float = 0.1,
              sigma_feat: float | None = None, instance_threshold: float = 0.5, min_confidence: float = 0.0,
              sp_c: float = 0.05, sp_min_size: int = 30, sp_color_weight: float = 0.5, solver: str = "spread",
              contact_power: float = 0.0, class_balance: float = 0.3, w_fpfh: float = 3.0,
              fpfh_radius: float = 0.1, fpfh_voxel: float = 0.03, sigma_fpfh: float | None = 0.1,
              sp_color_max_normal_diff: float | None = 1e-6, bridge: bool = False,
              min_reach: float = 0.0, geodesic_hop: float = 3.0, geodesic_temperature: float = 12.0,
              convex_factor: float = 0.1, convex_threshold: float = 0.1, floor_links: int = 6,
              floor_band: float = 0.08, floor_color_weight: float = 0.3, split_below: float = 0.3) -> PseudoLabels:
    """Dense pseudo-labels from a few labelled points.

    Args:
        coord: (N,3) float points (numpy or torch, as every array here).
        seed_index: (K,) int indices of the labelled points; seed_label: (K,) int classes.
        color: (N,3) in [0,1]; normal: (N,3) (estimated when missing and needed);
        segment: (N,) int over-segmentation to propagate on (else FH superpoints when
            ``superpoints``, else single points); seed_instance: (K,) int instance ids of
            clicks (enables instance propagation); features: (N,F) learned features.
        sp_c, sp_min_size, sp_color_weight, sp_color_max_normal_diff: ``felzenszwalb``'s
            parameters when superpoints are computed.
        alpha: restart weight (closer to 1 = farther reach); iterations: max sparse products.
        solver: ``"spread"`` (label spreading, default), ``"harmonic"`` (absorbing random
            walker, one sparse solve) or ``"geodesic"`` (``_geodesic``: per class the cheapest
            path from a seed, edge cost -log(affinity) + ``geodesic_hop``; confidence from
            exp(-cost gap / ``geodesic_temperature``), whose default 12 gave the lowest ECE on
            real ScanNet); contact_power: > 0 weights superpoint edges by the
            length of their shared border.
        w_fpfh: weight of the FPFH descriptor distance (``descriptors.fpfh_features`` with
            ``fpfh_radius`` metres on ``fpfh_voxel`` voxels) in the affinity, scaled by
            ``sigma_fpfh`` (None: the median over the graph's edges); 0 = off.
        convex_factor: scale of the normal term on convex creases (``edge_convexity`` of
            ``orient_normals`` above ``convex_threshold``), which join faces of one object;
            1 = off (real ScanNet, 5 draws: 200 points 0.684 vs 0.666, clicks 0.587 vs 0.563).
        floor_links, floor_band, floor_color_weight: ``floor_edges`` joins each floor node
            (within ``floor_band`` metres of the floor level; z up) to its ``floor_links``
            nearest floor nodes, their affinity ``floor_color_weight`` times the colour term
            alone (floor tiles and boards differ), so that the floor's seeds reach all of the
            floor; 0 links = off (real ScanNet, draws 0-1: 200 points 0.699 vs 0.680, clicks
            0.606 vs 0.583; held-out draws 2-4: 0.703 vs 0.686, 0.622 vs 0.590).
        split_below: a seed whose normal and its node's dominant normal disagree (|cos| below
            this) seeds only its own surface, carved out of the node (``split_seed_surfaces``);
            0 = off (5 draws: real ScanNet clicks 0.623 vs 0.615, 200 points 0.702 either way,
            20 points 0.265 vs 0.276; real KITTI, 200 stratified points, 0.787 vs 0.706).
        class_balance: seed mass of each class is divided by (its seed count)^class_balance,
            so that a class with many seeds does not drown a rare one (class mass
            normalisation, Zhu et al. 2003; 0 = off).
        min_confidence: nodes below it get -1 (trade coverage for accuracy).
        min_reach: nodes whose walk mass (sum of F over classes) is at most this are unreached
            and get -1; 0 = only nodes no walk can reach (another piece of the graph). Seeds
            of every class (points, or clicks on stuff too) want 0: on the real KITTI frames,
            20 points 0.481 mIoU vs 0.397 with 1e-12. Clicks on objects alone want far points
            left out: KITTI clicks 0.246 with 1e-12 vs 0.074.
        bridge: join the pieces of the graph (``bridge_edges``), so that every node is
            reached (KITTI 20 points 0.498, 200 points 0.698 vs 0.686 without).
    Returns:
        PseudoLabels with semantic, instance, confidence (max class probability) and
        ``extras['margin']`` (top-1 minus top-2 probability).
    """
    coord = _np(coord, "coord", np.float32)
    if coord is None or coord.ndim != 2 or coord.shape[1] != 3 or len(coord) == 0:
        raise SceneError(f"propagate: coord must be a non-empty (N,3) array, got {None if coord is None else coord.shape}")
    if not np.isfinite(coord).all():
        raise SceneError("propagate: coord contains NaN or infinite values")
    n = len(coord)
    seed_index = _np(seed_index, "seed_index").astype(np.int64).reshape(-1)
    seed_label = _np(seed_label, "seed_label").astype(np.int64).reshape(-1)
    if len(seed_index) != len(seed_label):
        raise SceneError(f"propagate: seed_index has {len(seed_index)} entries but seed_label has {len(seed_label)}")
    if len(seed_index) and (seed_index.min() < 0 or seed_index.max() >= n):
        raise SceneError(f"propagate: seed_index values must lie in [0, {n})")
    if not min_reach >= 0:  # a negative threshold would label nodes no walk reached
        raise ValueError(f"propagate: min_reach must be >= 0, got {min_reach}")
    # checked before the superpoints and the graph are built, not after
    if solver not in ("spread", "harmonic", "geodesic"):
        raise ValueError(f"propagate: solver must be 'spread', 'harmonic' or 'geodesic', got {solver!r}")
    if not geodesic_temperature > 0 or not geodesic_hop >= 0:  # Dijkstra needs costs >= 0
        raise ValueError(f"propagate: geodesic_temperature must be > 0 and geodesic_hop >= 0, "
                         f"got {geodesic_temperature} and {geodesic_hop}")
    if not 0 <= split_below <= 1:
        raise ValueError(f"propagate: split_below must lie in [0, 1], got {split_below}")
    if not floor_links >= 0 or not floor_band > 0 or not floor_color_weight >= 0:
        raise ValueError(f"propagate: floor_links must be >= 0, floor_band > 0 and floor_color_weight >= 0, "
                         f"got {floor_links}, {floor_band} and {floor_color_weight}")
    if not convex_factor >= 0:  # a negative factor would make convex creases stronger than flat ground
        raise ValueError(f"propagate: convex_factor must be >= 0, got {convex_factor}")
    ok = seed_label >= 0
    seed_index, seed_label = seed_index[ok], seed_label[ok]
    seed_instance = None if seed_instance is None else _np(seed_instance, "seed_instance").astype(np.int64).reshape(-1)[ok]
    C = num_classes or (len(classes) if classes else (int(seed_label.max()) + 1 if len(seed_label) else 1))
    if len(seed_label) and seed_label.max() >= C:
        raise SceneError(f"propagate: seed_label holds class {int(seed_label.max())} but there are only {C} classes "
                         f"({'num_classes' if num_classes else 'len(classes)'})")
    color = _np(color, "color", np.float32)
    normal = _np(normal, "normal", np.float32)
    feat = _np(features, "features", np.float32)
    for name, arr in (("color", color), ("normal", normal), ("features", feat)):
        if arr is None:
            continue
        if len(arr) != n:
            raise SceneError(f"propagate: {name} has {len(arr)} rows but coord has {n}")
        if not np.isfinite(arr).all():  # would spread NaN affinities silently
            raise SceneError(f"propagate: {name} contains NaN or infinite values")
    if color is not None:
        check_color_range("propagate: color", color)
    if normal is None and (w_normal or superpoints or w_fpfh):
        normal = estimate_normals(coord)
    edges = knn_graph(coord, k)  # one point graph for the superpoints and the affinities
    if segment is not None:
        seg = _np(segment, "segment").astype(np.int64).reshape(-1)
        if len(seg) != n:
            raise SceneError(f"propagate: segment has {len(seg)} entries but coord has {n}")
        _, node = np.unique(seg, return_inverse=True)
    elif superpoints:
        node = felzenszwalb(coord, normal, color, k=k, c=sp_c, min_size=sp_min_size, color_weight=sp_color_weight, edges=edges,
                            color_max_normal_diff=sp_color_max_normal_diff)
    else:
        node = np.arange(n)
    node = node.ravel()
    if split_below > 0 and normal is not None:
        node = split_seed_surfaces(coord, normal, node, seed_index, split_below)
    n_nodes = int(node.max()) + 1
    params = dict(superpoints=bool(superpoints), k=k, alpha=alpha, iterations=iterations, w_dist=w_dist, w_color=w_color,
                  w_normal=w_normal, w_feat=w_feat, sigma_dist=sigma_dist, sigma_color=sigma_color,
                  sigma_normal=sigma_normal, instance_threshold=instance_threshold, min_confidence=min_confidence,
                  nodes=n_nodes, seeds=int(len(seed_index)), used_segment=segment is not None, class_balance=class_balance,
                  w_fpfh=w_fpfh, fpfh_radius=fpfh_radius, fpfh_voxel=fpfh_voxel, sigma_fpfh=sigma_fpfh,
                  min_reach=min_reach, bridge=bridge, solver=solver, geodesic_hop=geodesic_hop,
                  geodesic_temperature=geodesic_temperature, convex_factor=convex_factor,
                  convex_threshold=convex_threshold, floor_links=floor_links, floor_band=floor_band,
                  floor_color_weight=floor_color_weight, split_below=split_below)
    fpfh = None
    if w_fpfh:
        from .descriptors import fpfh_features
        fpfh = fpfh_features(coord, normal, radius=fpfh_radius, voxel=fpfh_voxel)
    feats = node_features(node, n_nodes, coord, color, normal, feat, fpfh)
    W = affinity_graph(coord, node, feats, k=k, w_dist=w_dist, w_color=w_color, w_normal=w_normal, w_feat=w_feat,
                       sigma_dist=sigma_dist, sigma_color=sigma_color, sigma_normal=sigma_normal, sigma_feat=sigma_feat,
                       contact_power=contact_power, edges=edges, w_fpfh=w_fpfh, sigma_fpfh=sigma_fpfh, bridge=bridge,
                       convex_factor=convex_factor, convex_threshold=convex_threshold, floor_links=floor_links,
                       floor_band=floor_band, floor_color_weight=floor_color_weight)
    Y = np.zeros((n_nodes, C))
    seed_node = node[seed_index]
    np.add.at(Y, (seed_node, seed_label), 1.0)
    if class_balance:
        Y = Y / np.maximum(Y.sum(0, keepdims=True), 1.0) ** class_balance
    if solver == "spread":
        F = _spread(W, Y, alpha, iterations)
    elif solver == "harmonic":
        F = _harmonic(W, Y)
    else:
        F = _geodesic(W, Y, geodesic_hop, geodesic_temperature)
    mass = F.sum(1)
    reached = mass > min_reach
    P = np.where(reached[:, None], F / np.maximum(mass, 1e-300)[:, None], 0.0)
    # seed nodes keep their own vote
    seeded = Y.sum(1) > 0
    P[seeded] = Y[seeded] / Y[seeded].sum(1, keepdims=True)
    top2 = np.sort(P, axis=1)[:, -2:] if C > 1 else np.concatenate([np.zeros((n_nodes, 1)), P], 1)
    conf = top2[:, -1]
    margin = top2[:, -1] - top2[:, -2]
    lab = np.where(reached | seeded, P.argmax(1), -1)
    lab = np.where(conf >= min_confidence, lab, -1)
    inst_node = np.full(n_nodes, -1, np.int64)
    if seed_instance is not None and len(seed_instance):
        ids, inv = np.unique(seed_instance, return_inverse=True)
        keep = ids >= 0
        Yi = np.zeros((n_nodes, len(ids)))
        np.add.at(Yi, (seed_node, inv), 1.0)
        Yi = Yi[:, keep]
        ids = ids[keep]
        if len(ids):
            inst_class = np.array([np.bincount(seed_label[seed_instance == i]).argmax() for i in ids])
            Fi = _spread(W, Yi, alpha, iterations, compete=True)
            best = Fi.argmax(1)
            pbest = Fi[np.arange(n_nodes), best]
            ok_i = (pbest >= instance_threshold) & (inst_class[best] == lab)
            inst_node = np.where(ok_i, ids[best], -1)
            inst_node[Yi.sum(1) > 0] = ids[Yi.argmax(1)][Yi.sum(1) > 0]
    semantic = lab[node]
    confidence = np.where(semantic >= 0, conf[node], 0.0).astype(np.float32)
    instance = inst_node[node]
    # a labelled point keeps its own label, whatever its superpoint's vote says
    semantic[seed_index] = seed_label
    confidence[seed_index] = 1.0
    if seed_instance is not None:
        instance[seed_index] = seed_instance
    return PseudoLabels(semantic=semantic, instance=instance, confidence=confidence,
                        method="propagate", params=json.dumps(params, sort_keys=True, default=str), classes=tuple(classes),
                        extras={"margin": margin[node].astype(np.float32), "superpoint": node.astype(np.int64)})


def nearest_seed(coord: Any, seed_index: Any, seed_label: Any, *, seed_instance: Any = None, classes: tuple[str, ...] = (),
                 k_vote: int = 5) -> PseudoLabels:
    """Baseline: every point takes the class (and instance) of its nearest seed; confidence is
    the share of its ``k_vote`` nearest seeds that agree."""
    import torch
    from .. import ops
    coord = _np(coord, "coord", np.float32)
    seed_index = _np(seed_index, "seed_index").astype(np.int64).reshape(-1)
    seed_label = _np(seed_label, "seed_label").astype(np.int64).reshape(-1)
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
        si = _np(seed_instance, "seed_instance").astype(np.int64).reshape(-1)[ok]
        inst = si[nb[:, 0]]
    return PseudoLabels(semantic=lab, instance=inst, confidence=conf.astype(np.float32), method="nearest",
                        params=json.dumps({"k_vote": k_vote}), classes=tuple(classes))

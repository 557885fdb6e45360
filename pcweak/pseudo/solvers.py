"""The walk's solvers (stage 4 of ``propagate``): from an (S,S) sparse affinity matrix ``W``
and (S,C) seed mass ``Y`` to (S,C) class mass per node. ``spread``: label spreading (Zhou et
al. 2004), also the instance walk's competing spread; ``harmonic``: the absorbing random walk
(Grady 2006; Zhu et al. 2003); ``geodesic``: the cheapest path from each class's seeds."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def spread(W: sp.csr_matrix, Y: np.ndarray, alpha: float, iterations: int, compete: bool = False,
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


# ``harmonic`` raises stored affinities below this to it: a piece of the graph joined to the
# seeds only through a weaker edge leaves its linear system singular to double precision.
HARMONIC_MIN_AFFINITY = 1e-10


def harmonic(W: sp.csr_matrix, Y: np.ndarray) -> np.ndarray:
    """Absorbing random walk (Grady's random walker / Zhu's harmonic function): for every
    unseeded node, the probability that a walk started there reaches a seed of each class
    first: (I - P_uu) F_u = P_us Y_s with P = D^-1 W, the walk's steps, over the pieces of the
    graph that hold a seed. Seeded nodes keep Y; nodes in a piece without a seed get zero rows.
    A stored affinity below ``HARMONIC_MIN_AFFINITY`` is raised to it: exp underflows on a long
    or dissimilar edge (on LiDAR scans to 0 or 1e-323), and a piece joined to the seeds only
    through such edges would make the system singular; raised, the piece takes what lies across
    them, as ``spread`` and ``geodesic`` give it (a ``graph.bridge`` keeps every node reached)."""
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import spsolve
    W = W.tocsr(copy=True)
    W.data = np.maximum(W.data, HARMONIC_MIN_AFFINITY)
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
    step = sp.diags(1.0 / deg[u]) @ W[u]  # every node in u has an edge, so deg > 0
    A = (sp.identity(len(u), format="csc") - step[:, u]).tocsc()
    sol = spsolve(A, step[:, s] @ F[s])
    F[u] = np.asarray(sol).reshape(len(u), -1)
    return np.clip(F, 0.0, None)


def geodesic(W: sp.csr_matrix, Y: np.ndarray, hop: float, temperature: float) -> np.ndarray:
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

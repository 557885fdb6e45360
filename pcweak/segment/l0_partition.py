"""Object-following superpoints for bare points: a greedy l0 (piecewise-constant) partition of
the kNN graph over per-point features, with coarser levels nested in the finer ones.

Each point carries a feature vector: its local shape (``descriptors.shape_features``:
linearity, planarity, scattering, verticality), its colour, its position and its height above
the lowest points, each scaled by a weight (colour in CIELAB). A partition is scored by the energy

    sum over superpoints of sum_i ||f_i - mean||^2  +  lambda * (weight of the kNN edges it cuts)

(the l0 / Potts model that Superpoint Transformer's cut pursuit minimises), and minimised
greedily: neighbouring groups are joined cheapest first while a join lowers the energy, i.e.
while w_a w_b / (w_a + w_b) ||m_a - m_b||^2 <= lambda * c_ab. Raising lambda continues the
same run, so every level is a union of the finer level's superpoints. Then superpoints under a
level's minimum size join their cheapest neighbour. FH cuts where normals turn, so a picture,
a door or a desk lying against a wall stays in the wall's superpoint; here colour, shape and
position all decide, and such objects get superpoints of their own (docs/results.md,
"Superpoints on bare points").

The joining runs in the compiled ops (``cuda_ops/pcweak_ops.cpp: l0_partition``); the Python
version below gives the same partition where they are not built, some 20x slower
(8,000 points, the joins alone: 1.45 s against 0.07 s).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, fields

import numpy as np
import torch

from ..errors import SceneError
from .descriptors import share_neighbours, shares_shape_features


@dataclass(frozen=True)
class L0Config:
    """Parameters of ``l0_hierarchy``; defaults chosen by leave-one-scene-out over the shared
    ScanNet scans and synthetic rooms (docs/results.md).

    regularization: lambda of each level, ascending (larger -> larger superpoints); min_size:
    points below which a superpoint joins its cheapest neighbour, per level; k: neighbours of
    the graph; k_shape: neighbours of the shape features; w_shape, w_color, w_position,
    w_elevation: feature weights (shape features in [0,1], colour as CIELAB / 100, position in
    metres, elevation in units of 3 m above the 1st percentile of z)."""
    regularization: tuple[float, ...] = (0.12, 0.6, 3.0)
    min_size: tuple[int, ...] = (5, 30, 100)
    k: int = 10
    k_shape: int = 30
    w_shape: float = 0.75
    w_color: float = 5.0
    w_position: float = 0.2
    w_elevation: float = 1.0

    def __post_init__(self) -> None:
        reg = tuple(float(r) for r in self.regularization)
        ms = tuple(int(m) for m in self.min_size)
        object.__setattr__(self, "regularization", reg)
        object.__setattr__(self, "min_size", ms)
        if not reg or len(reg) != len(ms):
            raise ValueError(f"l0: regularization and min_size need one entry per level, got {len(reg)} and {len(ms)}")
        if any(not r > 0 for r in reg) or list(reg) != sorted(reg):
            raise ValueError(f"l0: regularization must be positive and ascending (fine to coarse), got {reg}")
        if any(m < 1 for m in ms):
            raise ValueError(f"l0: min_size must be >= 1, got {ms}")
        if self.k < 1 or self.k_shape < 3:
            raise ValueError(f"l0: k must be >= 1 and k_shape >= 3, got {self.k} and {self.k_shape}")
        for f in ("w_shape", "w_color", "w_position", "w_elevation"):
            if not getattr(self, f) >= 0:
                raise ValueError(f"l0: {f} must be >= 0, got {getattr(self, f)}")

    @classmethod
    def from_params(cls, **params) -> "L0Config":
        """A config from keyword parameters; an unknown name is an error naming the known ones."""
        known = {f.name for f in fields(cls)}
        bad = sorted(set(params) - known)
        if bad:
            raise ValueError(f"l0 superpoints: unknown parameter(s) {bad}; known: {sorted(known)}")
        for key in ("regularization", "min_size"):
            if key in params and np.isscalar(params[key]):
                params[key] = (params[key],)
        if "regularization" in params and "min_size" not in params:  # the default sizes of as many levels
            d = cls.__dataclass_fields__["min_size"].default
            params["min_size"] = tuple(d[min(i, len(d) - 1)] for i in range(len(params["regularization"])))
        return cls(**params)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(N,3) float64 CIELAB (D65 white) of (N,3) sRGB in [0,1], divided by 100 (L* in [0,1],
    a* and b* within about [-1,1]): distances there follow perceived colour differences, which
    RGB distances understate in dark and saturated colours."""
    c = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    lin = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1) / 100.0


def partition_features(coord: np.ndarray, color: np.ndarray | None, config: L0Config) -> np.ndarray:
    """(N,D) float64 weighted features of the l0 energy: shape (4), colour (CIELAB / 100 of an
    RGB ``color``; a one-channel ``color``, e.g. LiDAR intensity, as it is; none when None),
    position (3), elevation (1)."""
    from .descriptors import shape_features
    c = np.asarray(coord, np.float64)
    parts = [config.w_shape * shape_features(c, config.k_shape).astype(np.float64)]
    if color is not None:
        col = np.asarray(color, np.float64).reshape(len(c), -1)
        parts.append(config.w_color * (rgb_to_lab(col) if col.shape[1] == 3 else col))
    z = c[:, 2:3] - np.percentile(c[:, 2], 1)
    parts += [config.w_position * c, config.w_elevation * z / 3.0]
    return np.concatenate(parts, 1)


EDGES_AT_ONCE = 1 << 20


def edge_weights(coord: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(E,) float64 weight of each kNN edge in the cut term: 1 / (1 + d / mean d), so that
    cutting between far neighbours costs less. Lengths are taken ``EDGES_AT_ONCE`` edges at a
    time: the ends' float64 coordinates would hold 48 bytes per edge at once."""
    c = np.asarray(coord, np.float64)
    d = np.empty(len(u))
    for a in range(0, len(u), EDGES_AT_ONCE):
        d[a:a + EDGES_AT_ONCE] = np.linalg.norm(c[u[a:a + EDGES_AT_ONCE]] - c[v[a:a + EDGES_AT_ONCE]], axis=1)
    return 1.0 / (1.0 + d / max(float(d.mean()), 1e-12)) if len(d) else d


@shares_shape_features
def l0_hierarchy(coord: np.ndarray, color: np.ndarray | None = None, config: L0Config | None = None,
                 edges: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(L,N) int64 superpoint ids, level 0 the finest; each level's ids run 0..S-1 in order of
    first point, and every superpoint of a level lies inside one superpoint of the next.

    Args: coord (N,3) float metres; color (N,C) float in [0,1] (RGB, or LiDAR intensity as
    C=1) or None; config: ``L0Config``; edges: a kNN graph from ``knn_graph`` to reuse."""
    from .superpoints import knn_graph, number_by_first_point
    config = config or L0Config()
    c = np.asarray(coord, np.float32)
    if c.ndim != 2 or c.shape[1] != 3:
        raise SceneError(f"l0 superpoints: coord must be (N,3), got {c.shape}")
    n = len(c)
    L = len(config.regularization)
    if n == 0:
        return np.zeros((L, 0), np.int64)
    if color is not None and len(np.asarray(color)) != n:
        raise SceneError(f"l0 superpoints: color has {len(np.asarray(color))} rows for {n} points")
    if n < 4:
        return np.zeros((L, n), np.int64)
    if edges is None:  # one neighbour search for the shape features and the graph
        share_neighbours(c, max(config.k + 1, config.k_shape))
    x = partition_features(c, color, config)
    u, v = edges if edges is not None else knn_graph(c, min(config.k, n - 1))
    w = edge_weights(c, u, v)
    lam = np.asarray(config.regularization, np.float64)
    ms = np.asarray(config.min_size, np.int64)
    from ..ops.extension import compiled
    mod = compiled()
    if mod is not None:  # the kernel keeps its group means in x's rows: x is not used after
        roots = mod.l0_partition(torch.from_numpy(np.asarray(u, np.int64)), torch.from_numpy(np.asarray(v, np.int64)),
                                 torch.from_numpy(w), torch.from_numpy(x), torch.from_numpy(lam), torch.from_numpy(ms)).numpy()
    else:
        roots = l0_partition_python(u, v, w, x, lam, ms)
    return np.stack([number_by_first_point(r) for r in roots])


def l0_partition_python(u: np.ndarray, v: np.ndarray, c: np.ndarray, x: np.ndarray, lambdas: np.ndarray,
                        min_sizes: np.ndarray) -> np.ndarray:
    """The compiled ``l0_partition`` in Python, step for step (same joins, same ties): (L,N)
    int64 root point of each point's group per level. Args as ``l0_hierarchy`` builds them:
    u, v (E,) edge ends, c (E,) positive edge weights, x (N,D) features, lambdas (L,)
    ascending, min_sizes (L,). See cuda_ops/pcweak_ops.cpp for the heap's bookkeeping."""
    x = np.asarray(x, np.float64)
    n, D = x.shape
    mean = [list(map(float, r)) for r in x]
    wt = [1.0] * n
    parent = list(range(n))
    stamp = [0] * n
    adj: list[dict[int, list]] = [dict() for _ in range(n)]  # neighbour -> [edge weight, version]
    for a, b, w in zip(np.asarray(u).tolist(), np.asarray(v).tolist(), np.asarray(c, np.float64).tolist()):
        if a == b:
            continue
        if not (0 <= a < n and 0 <= b < n and w > 0):
            raise ValueError(f"l0_partition: edge ({a}, {b}) has an end outside [0, {n}) or a weight <= 0")
        adj[a].setdefault(b, [0.0, 0])[0] += w
        adj[b].setdefault(a, [0.0, 0])[0] += w

    def ratio(a: int, b: int, cab: float) -> float:
        ma, mb = mean[a], mean[b]
        d2 = 0.0
        for k in range(D):
            t = ma[k] - mb[k]
            d2 += t * t
        return wt[a] * wt[b] / (wt[a] + wt[b]) * d2 / cab

    heap: list[tuple[float, int, int, int, int, int]] = []
    version = [0]

    def price(a: int, b: int) -> None:
        lo, hi = min(a, b), max(a, b)
        version[0] += 1
        adj[lo][hi][1] = adj[hi][lo][1] = version[0]
        heapq.heappush(heap, (ratio(lo, hi, adj[lo][hi][0]), lo, hi, version[0], stamp[lo], stamp[hi]))

    for a in range(n):
        for b in list(adj[a]):
            if a < b:
                price(a, b)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        if len(adj[a]) < len(adj[b]):
            a, b = b, a
        wa, wb = wt[a], wt[b]
        mean[a] = [(wa * p + wb * q) / (wa + wb) for p, q in zip(mean[a], mean[b])]
        wt[a] = wa + wb
        parent[b] = a
        stamp[a] += 1
        stamp[b] += 1
        adj[a].pop(b, None)
        moved = [(t, link[0]) for t, link in adj[b].items() if t != a]
        adj[b] = {}
        for t, w in moved:
            del adj[t][b]
            adj[t].setdefault(a, [0.0, 0])[0] += w
            adj[a].setdefault(t, [0.0, 0])[0] += w
        for t, _ in moved:
            price(a, t)

    out = np.empty((len(lambdas), n), np.int64)
    for level, (lam, ms) in enumerate(zip(np.asarray(lambdas, np.float64).tolist(), np.asarray(min_sizes).tolist())):
        while heap and heap[0][0] <= lam:
            _, a, b, ver, sa, sb = heapq.heappop(heap)
            if parent[a] != a or parent[b] != b or b not in adj[a] or adj[a][b][1] != ver:
                continue
            if stamp[a] != sa or stamp[b] != sb:
                price(a, b)
                continue
            join(a, b)
        for _, i in sorted((wt[i], i) for i in range(n) if parent[i] == i and wt[i] < ms):
            a = find(i)
            if wt[a] >= ms or not adj[a]:
                continue
            best, bc = -1, 0.0
            for t, link in adj[a].items():
                r = ratio(a, t, link[0])
                if best < 0 or r < bc or (r == bc and t < best):
                    best, bc = t, r
            join(a, best)
        out[level] = [find(i) for i in range(n)]
    return out

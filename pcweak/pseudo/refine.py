"""Self-training after the walk: a per-scene point classifier learns the walk's own sure labels
and its class probabilities reweigh the walk's.

The walk decides between neighbouring superpoints from their mean colour, normal and FPFH; it
cannot use what a class looks like elsewhere in the room. A classifier trained on the points
the walk labelled with a clear margin (above ``margin``, or among the ``top`` share of their
class's margins, so that a class whose margins are all small — one that 2D masks' class scores,
not seeds, put in the walk — still trains it; at most ``per_class`` of each class, plus the
seeds) from per-point descriptors — CIELAB colour, height above the floor, local shape at two
scales, FPFH — carries that across the scene: p'(c) is proportional to p(c) (q(c) + eps) over
the classes the classifier was trained on (their total kept; other classes, which only 2D
masks' class scores may name, keep the walk's probability), q the classifier's probabilities
averaged over up to ``per_cell`` points of each cell the walk's probabilities are uniform over,
and given to the whole cell (so a superpoint keeps one label). Where points are known to
form one object (``groups``: 2D masks' 3D segments, or 3D proposals) and no seed lies in it,
the walk's probabilities there are only its neighbours' guess (they cut the object's edges, so a
neighbour's class wins it whole): the forest decides such a group alone, q averaged over the
group times the classes the walk reached. Extremely randomised trees
(scikit-learn's ``ExtraTreesClassifier``) take the mixed, unscaled descriptors as they are; a
small MLP trained the same way lowered the labels instead (docs/results.md has both).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..segment.superpoints import segment_mean

REFINE_METHODS = ("trees", "none")


@dataclass(frozen=True)
class RefineConfig:
    """Stage 5, after the solver. ``method``: ``"trees"`` (the classifier above) or ``"none"``.
    ``margin``: the top-1 minus top-2 probability that lets a point train it; ``top``: the
    share of each class's points, by margin, that train it whatever their margin (0: only
    ``margin`` decides); ``per_class``: at most that many such points per class; ``trees``,
    ``min_leaf``: the forest's size and its leaves' minimum sample count; ``eps``: added to the
    classifier's probabilities so that no class the walk found is ruled out; ``per_cell``: at
    most that many points of each cell are classified, their mean standing for the cell (0:
    every point); ``seed``: its randomness."""
    method: str = "trees"
    margin: float = 0.3
    top: float = 0.5
    per_class: int = 1000
    trees: int = 50
    min_leaf: int = 3
    eps: float = 1e-3
    per_cell: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in REFINE_METHODS:
            raise ValueError(f"refine.method must be one of {REFINE_METHODS}, got {self.method!r}")
        if not 0 <= self.margin < 1 or not self.eps > 0:
            raise ValueError(f"refine.margin must lie in [0, 1) and refine.eps be > 0, got {self.margin} and {self.eps}")
        if not self.per_class >= 1 or not self.trees >= 1 or not self.min_leaf >= 1:
            raise ValueError(f"refine.per_class, refine.trees and refine.min_leaf must be >= 1, "
                             f"got {self.per_class}, {self.trees} and {self.min_leaf}")
        if not 0 <= self.top <= 1:
            raise ValueError(f"refine.top must lie in [0, 1], got {self.top}")
        if not self.per_cell >= 0:
            raise ValueError(f"refine.per_cell must be >= 0, got {self.per_cell}")
        if not self.seed >= 0:
            raise ValueError(f"refine.seed must be an integer >= 0, got {self.seed}")


def top_two(prob: np.ndarray) -> np.ndarray:
    """(N,2) the two largest of each row of (N,C) ``prob``, ascending (0 first when C is 1):
    the walk's confidence is the last column, its margin the difference."""
    if prob.shape[1] > 1:
        return np.sort(prob, axis=1)[:, -2:]
    return np.concatenate([np.zeros((len(prob), 1)), prob], 1)


def point_descriptors(coord: np.ndarray, color: np.ndarray | None, fpfh: np.ndarray | None, floor: float,
                      index: np.ndarray | None = None) -> np.ndarray:
    """(M,D) float32 descriptors of the points ``index`` (None: all N): CIELAB / 100 of an RGB
    ``color`` (one channel as it is), height above ``floor`` (m), linearity, planarity,
    scattering and verticality over 30 neighbours, the first three over 80, and the 33 FPFH
    bins when given. Neighbourhoods are taken in the whole cloud."""
    from ..segment.descriptors import shape_features
    from ..segment.l0_partition import rgb_to_lab
    at = slice(None) if index is None else np.asarray(index, np.int64)
    cols = []
    if color is not None:
        cols.append(rgb_to_lab(color[at]) if color.shape[1] == 3 else np.asarray(color[at], np.float64))
    cols += [coord[at, 2:3].astype(np.float64) - floor, shape_features(coord, 30, index), shape_features(coord, 80, index)[:, :3]]
    if fpfh is not None:
        cols.append(fpfh[at])
    return np.concatenate([np.asarray(c, np.float32) for c in cols], 1)


def sample_per_cell(cells: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted (M,) int64 indices of at most ``m`` points drawn at random from each cell of the
    (N,) ``cells`` ids (m = 0: every point)."""
    if m == 0:
        return np.arange(len(cells), dtype=np.int64)
    order = np.lexsort((rng.random(len(cells)), cells))
    run = cells[order]
    rank = np.arange(len(order)) - np.searchsorted(run, run, "left")
    return np.sort(order[rank < m]).astype(np.int64)


def refine_probabilities(prob: np.ndarray, describe: Callable[[np.ndarray], np.ndarray], seed_index: np.ndarray,
                         seed_label: np.ndarray, config: RefineConfig, cells: np.ndarray | None = None,
                         groups: np.ndarray | None = None) -> np.ndarray:
    """(N,C) float64 class probabilities reweighed by the classifier (rows the walk left at
    zero stay zero; unchanged where fewer than two classes have training points).

    Args: prob (N,C) the walk's probabilities; describe: maps (M,) int64 point indices to their
    (M,D) descriptors (``point_descriptors``), asked once, for the training points and the
    classified ones; seed_index, seed_label (K,) the labelled points; cells: (N,) int64 ids
    0..S-1 of the cells the walk's probabilities are uniform over — the classifier's
    probabilities are averaged over ``per_cell`` points of each cell and the mean given to the
    whole cell, so labels stay uniform there (None: every point is its own cell); groups: (N,)
    int64 object ids (-1: none) — in a group without a seed the forest's probabilities, averaged
    over the group, decide among the classes the walk reached (module docstring)."""
    if groups is not None and len(groups) != len(prob):
        raise ValueError(f"refine: groups has {len(groups)} entries for {len(prob)} points")
    if config.method == "none" or not len(prob):
        return prob
    from sklearn.ensemble import ExtraTreesClassifier
    top2 = top_two(prob)
    marg = top2[:, 1] - top2[:, 0]
    label = prob.argmax(1)
    reached = marg > 0
    ok = reached & (marg > config.margin)
    if config.top > 0:  # and each class's own most confident share, whatever scale its margins have
        for c in np.unique(label[reached]):
            m = reached & (label == c)
            ok[m] |= marg[m] >= np.quantile(marg[m], 1 - config.top)
    sure = np.flatnonzero(ok)
    rng = np.random.default_rng(config.seed)
    picks = sure[sample_per_cell(label[sure], config.per_class, rng)]
    train = np.concatenate([picks, seed_index]).astype(np.int64)
    y = np.concatenate([label[picks], seed_label]).astype(np.int64)
    if len(np.unique(y)) < 2:
        return prob
    shown = np.arange(len(prob), dtype=np.int64) if cells is None else sample_per_cell(cells, config.per_cell, rng)
    asked, where = np.unique(np.concatenate([train, shown]), return_inverse=True)
    X = describe(asked)
    # one thread: scikit-learn's worker threads each enter warnings.catch_warnings(), which is not
    # thread-safe before Python 3.14, and their race can leave the caller's warning filters
    # replaced by a partial list (then a warning per tree task); two threads would save ~0.6 s
    # on a 1M-point room (docs/results.md)
    forest = ExtraTreesClassifier(config.trees, min_samples_leaf=config.min_leaf, n_jobs=1,
                                  random_state=config.seed).fit(X[where[:len(train)]], y)
    known = forest.classes_
    q = forest.predict_proba(X[where[len(train):]])
    if cells is not None:
        q = segment_mean(cells[shown], int(cells.max()) + 1, q)[cells]
    # the forest redistributes each point's mass among the classes it was trained on; a class it
    # never saw (one only 2D masks' class scores name, say) keeps the walk's probability
    walk = prob[:, known]
    mass = walk.sum(1, keepdims=True)  # each point's total over those classes, kept
    if groups is not None:
        q, walk = _unseeded_groups(q, walk, np.asarray(groups, np.int64), seed_index[seed_label >= 0])
    out = prob.copy()
    part = walk * (q + config.eps)
    total = part.sum(1, keepdims=True)
    out[:, known] = np.where(total > 0, part * mass / np.maximum(total, 1e-300), 0.0)
    return out


def _unseeded_groups(q: np.ndarray, walk: np.ndarray, groups: np.ndarray, seed_index: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(q, walk) with, on the points of every group (``groups`` >= 0) that holds none of
    ``seed_index``, q replaced by its mean over the group and the walk's (N,K) probabilities by
    an even share of each point's mass over the classes it reached."""
    seeded = np.unique(groups[seed_index])
    on = np.flatnonzero((groups >= 0) & ~np.isin(groups, seeded))
    if not len(on):
        return q, walk
    ids, inv = np.unique(groups[on], return_inverse=True)
    q, walk = q.copy(), walk.copy()
    q[on] = segment_mean(inv, len(ids), q[on])[inv]
    reached = walk[on] > 0
    walk[on] = np.where(reached, walk[on].sum(1, keepdims=True) / np.maximum(reached.sum(1, keepdims=True), 1), 0.0)
    return q, walk

"""Class-agnostic 3D proposals inside the label walk: which points belong to one object.

A 3D segmenter run without its class head (Mask3D, Segment3D, SAI3D; or an instance model of
pcweak's own) gives each point a proposal id, -1 for points in none. ``propagate(...,
groups=...)`` reads them as one view that sees every point, in the way the walk reads 2D masks
(``mask_views``): an edge between two superpoints whose points the same proposal holds most of
is strengthened, w -> w^(1 - link), and one between superpoints of two proposals, or of a
proposal and of none, is cut, w -> w * exp(-cut) (``GroupingConfig``); edges between
superpoints in no proposal keep their affinity. A proposal that merges two objects only joins
what the walk would have weighed, and one that splits an object only cuts inside it, so the
seeds still decide the classes; the proposals no seed lies in are decided by the forest after
the walk (``refine``), where the walk would hand each the class of whichever neighbour reaches
it. Unlike 2D masks, one 3D proposal per point has no other view to outvote its mistakes:
``link`` and ``cut`` are the trust in it, chosen leave-one-scene-out with simulated proposals
(``weak.proposals``; docs/results.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import SceneError
from ..scene import to_numpy
from .mask_views import MaskViews, edge_agreement, moved_affinities


@dataclass(frozen=True)
class GroupingConfig:
    """How far the walk trusts 3D proposals (``propagate(..., groups=...)``; module
    docstring): ``link`` in [0, 1], the share of an edge's -log affinity forgiven between
    superpoints of one proposal; ``cut`` >= 0, the -log affinity added between superpoints of two
    (or of one and of none). Not read without proposals. The defaults were chosen leave-one-
    scene-out over the bare ScanNet samples and three synthetic rooms with clean, noisy and
    poor simulated proposals (``pcweak bench proposals``; docs/results.md): the best mean gain
    among the settings that lose nothing at any noise level, on every scene left out."""
    link: float = 0.9
    cut: float = 3.0

    def __post_init__(self) -> None:
        if not 0 <= self.link <= 1 or not self.cut >= 0:
            raise ValueError(f"grouping.link must lie in [0, 1] and grouping.cut be >= 0, got {self.link} and {self.cut}")


def check_groups(groups: Any, num_points: int, owner: str = "propagate: groups") -> np.ndarray:
    """``groups`` as (N,) int64 proposal ids (-1 = in none); SceneError naming ``owner`` for
    another length, numbers that are not whole, or an id below -1."""
    g = np.asarray(to_numpy(groups))
    if g.ndim != 1 or len(g) != num_points:
        raise SceneError(f"{owner}: expected one proposal id per point, ({num_points},), got shape {g.shape}")
    if g.dtype.kind == "f":
        if not np.isfinite(g).all() or (g != np.round(g)).any():
            raise SceneError(f"{owner}: proposal ids must be whole numbers, got {g.dtype} values that are not")
    elif g.size and g.dtype.kind not in "iub":
        raise SceneError(f"{owner}: proposal ids must be integers, got dtype {g.dtype}")
    g = g.astype(np.int64)
    if g.size and g.min() < -1:
        raise SceneError(f"{owner}: proposal id {int(g.min())}; ids are >= 0, and -1 for a point in no proposal")
    return g


def group_table(groups: np.ndarray, node: np.ndarray, n_nodes: int) -> np.ndarray:
    """(1,S) int64 the proposal holding most of each node's points (-1 where most lie in none):
    ``MaskViews.node_masks`` of one view that sees every point."""
    n = len(groups)
    view = MaskViews(n, points=[np.arange(n)], labels=[groups + 1], offset=[-1], frame=[0],
                     num_masks=int(groups.max()) + 1 if n else 0)
    return view.node_masks(node, n_nodes, min_seen=1)


def grouped_affinities(W: sp.csr_matrix, groups: np.ndarray, node: np.ndarray, n_nodes: int,
                       config: GroupingConfig) -> sp.csr_matrix:
    """The (S,S) affinities ``W`` of the partition ``node`` (N,) moved by the proposals
    ``groups`` (N,) int64 (module docstring): full trust (r = 1) where one of an edge's nodes
    lies in a proposal, none where neither does."""
    C = W.tocoo()
    agree, told = edge_agreement(group_table(groups, node, n_nodes), C.row, C.col)
    return moved_affinities(C, agree, told.astype(np.float64), config.link, config.cut)

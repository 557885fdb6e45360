"""Simulated class-agnostic 3D instance proposals: what a 3D segmenter (Mask3D, Segment3D or
SAI3D run without class heads) gives, drawn from the ground truth's instances with its typical
mistakes. They are the benchmarks' stand-in for the proposal files ``pcweak label --groups``
reads (``pseudo.group_sources``), never a weak label of their own: they carry no class.
"""
from __future__ import annotations

import numpy as np

from ..geometry import graph_components
from ..params import Fraction, Seed, ranges_checked
from ..scene import Scene
from .points import _need

TOUCH_NEIGHBOURS = 8  # a point's neighbours of another instance count as that instance touching it


def _touching(coord: np.ndarray, instance: np.ndarray) -> np.ndarray:
    """(I,) int64 for each instance id 0..I-1 the instance its points' ``TOUCH_NEIGHBOURS``
    nearest points of another instance belong to most often (-1: none touches it)."""
    from scipy.spatial import cKDTree
    n_inst = int(instance.max()) + 1
    on = np.flatnonzero(instance >= 0)
    out = np.full(n_inst, -1, np.int64)
    if len(on) < 2:
        return out
    k = min(TOUCH_NEIGHBOURS + 1, len(on))
    _, nn = cKDTree(coord[on]).query(coord[on], k=k, workers=-1)
    a = np.repeat(instance[on], k)
    b = instance[on][nn.reshape(-1)]
    other = a != b
    if not other.any():
        return out
    key, count = np.unique(a[other] * n_inst + b[other], return_counts=True)
    ka, kb = key // n_inst, key % n_inst
    order = np.lexsort((-kb, count, ka))  # per instance its most touching neighbour last (ties: smaller id)
    last = np.r_[ka[order][1:] != ka[order][:-1], True]
    out[ka[order][last]] = kb[order][last]
    return out


@ranges_checked("proposals")
def proposals(scene: Scene, seed: Seed = 0, merge_prob: Fraction = 0.2, split_prob: Fraction = 0.2,
              drop_prob: Fraction = 0.1) -> np.ndarray:
    """(N,) int64 proposal id per point (-1 = in none), numbered at random (a segmenter's ids say
    nothing), from ``scene.instance``: each instance is, with its chance and seeded, merged with
    the instance its points touch most (``merge_prob``), cut in two across its principal axis at
    its median (``split_prob``), or left out (``drop_prob``). The defaults (one object in five
    merged or split, one in ten missed) are a middling segmenter's; zeros give the ground truth."""
    _need(scene, "instance")
    rng = np.random.default_rng(seed)
    inst = np.unique(scene.instance, return_inverse=True)[1].reshape(-1).astype(np.int64)
    if (scene.instance < 0).any():  # ids as 0..I-1, -1 kept
        inst -= 1
    n_inst = int(inst.max()) + 1 if len(inst) else 0
    merged = np.arange(n_inst)
    if merge_prob > 0 and n_inst:
        touch = _touching(scene.coord, inst)
        join = (rng.random(n_inst) < merge_prob) & (touch >= 0)
        # a chain of merges joins all its members; components are numbered by their first instance
        merged = graph_components(n_inst, np.flatnonzero(join), touch[join])
    group = np.where(inst >= 0, merged[np.maximum(inst, 0)], -1)
    ids = np.unique(group[group >= 0])
    nxt = int(ids.max()) + 1 if len(ids) else 0
    for g in ids:
        members = np.flatnonzero(group == g)
        if rng.random() < drop_prob:
            group[members] = -1
            continue
        if rng.random() < split_prob and len(members) >= 2:
            x = scene.coord[members].astype(np.float64)
            x -= x.mean(0)
            axis = np.linalg.svd(x, full_matrices=False)[2][0]
            t = x @ axis
            group[members[t > np.median(t)]] = nxt
            nxt += 1
    out = np.full(scene.num_points, -1, np.int64)
    used = np.unique(group[group >= 0])
    relabel = np.full(nxt, -1, np.int64)
    relabel[used] = rng.permutation(len(used))
    out[group >= 0] = relabel[group[group >= 0]]
    return out

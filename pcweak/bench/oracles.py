"""Oracles: the best labels a labeller restricted to a partition (and to what its weak labels
tell) could give, computed from ground truth. Benchmarks quote them as ceilings next to each
labeller's figure."""
from __future__ import annotations

import numpy as np

from ..classes import stuff_classes
from ..errors import SceneError
from ..geometry import points_in_boxes
from ..scene import PseudoLabels, Scene


def _oracle_nodes(scene: Scene, segment: np.ndarray, who: str, instances: bool = True) -> np.ndarray:
    """(N,) int64 superpoint ids renumbered 0..S-1, after checking that ``scene`` has GT
    semantic (and, with ``instances``, instance) labels and ``segment`` one entry per point."""
    if scene.semantic is None or (instances and scene.instance is None):
        raise SceneError(f"scene {scene.name!r}: {who} needs ground-truth semantic{' and instance' if instances else ''} labels")
    seg = np.asarray(segment).reshape(-1)
    if len(seg) != scene.num_points:
        raise SceneError(f"{who}: segment has {len(seg)} entries for {scene.num_points} points")
    return np.unique(seg, return_inverse=True)[1].ravel()


def seeded_class_oracle(scene: Scene, segment: np.ndarray, seed_label: np.ndarray) -> np.ndarray:
    """The labels of a superpoint-level labeller that knows which classes hold a seed and is
    otherwise perfect: every superpoint takes the most frequent GT class among the seeded
    classes of its points (-1 where it holds none of them). Its mIoU is about the best a
    propagation over ``segment`` from seeds of these classes can reach (majority votes, not an
    exact mIoU optimum); classes without a seed score 0.

    Args: segment (N,) int superpoint id per point; seed_label (K,) int classes of the seeds.
    Returns: (N,) int64 classes."""
    node = _oracle_nodes(scene, segment, "seeded_class_oracle", instances=False)
    m = scene.semantic >= 0
    counts = np.zeros((int(node.max()) + 1, len(scene.classes)))
    np.add.at(counts, (node[m], scene.semantic[m]), 1.0)
    seeded = np.zeros(len(scene.classes), bool)
    lab = np.asarray(seed_label, np.int64).reshape(-1)
    seeded[lab[lab >= 0]] = True  # -1: an ignored seed
    counts[:, ~seeded] = -1.0
    best = counts.argmax(1)
    return np.where(counts.max(1) > 0, best, -1)[node].astype(np.int64)


def superpoint_oracle(scene: Scene, segment: np.ndarray) -> PseudoLabels:
    """The best labels any superpoint-level labeller can give: every superpoint takes the GT
    instance (and class) of the majority of its points (-1 where that majority is unlabelled).
    ``evaluate`` of it is the upper bound that the over-segmentation sets.

    Args: segment (N,) int superpoint id per point."""
    node = _oracle_nodes(scene, segment, "superpoint_oracle")
    gt = np.where(scene.semantic >= 0, scene.instance, -1).astype(np.int64)
    _, g = np.unique(gt, return_inverse=True)  # 0 = unlabelled when present
    g = g.ravel()
    counts = np.zeros((int(node.max()) + 1, int(g.max()) + 1))
    np.add.at(counts, (node, g), 1.0)
    win = counts.argmax(1)[node]  # per point, its superpoint's majority GT group
    first = np.zeros(int(g.max()) + 1, np.int64)
    first[g[::-1]] = np.arange(len(g))[::-1]  # a point of each group
    rep = first[win]
    inst, sem = gt[rep], np.where(gt[rep] >= 0, scene.semantic[rep], -1)
    return PseudoLabels(semantic=sem, instance=inst, confidence=np.ones(len(node), np.float32), method="superpoint-oracle",
                        classes=scene.classes)


def box_oracle(scene: Scene, segment: np.ndarray, boxes: np.ndarray, box_labels: np.ndarray,
               margin: float = 0.02) -> PseudoLabels:
    """The best labels a superpoint-level box labeller can give knowing only the boxes: each
    GT instance belongs to the smallest box holding at least 90% of its points (its own tight
    box); stuff (``stuff_classes``: wall and floor) belongs to no box, as a perfect
    ``structure_points`` would have it; any other point in a box (an object without a box of its
    own, an unlabelled point) goes to the smallest box that holds it, since nothing in the boxes
    tells it from the boxed object around it. Every superpoint takes the majority target of its
    points, and a box keeps only the points inside it.
    ``evaluate`` of it bounds ``gp_box_labels`` and the smallest-box rule on these superpoints.

    Args: segment (N,) int superpoint ids; boxes (M,7); box_labels (M,) class ids.
    Returns: PseudoLabels with instance = box index."""
    node = _oracle_nodes(scene, segment, "box_oracle")
    b = np.asarray(boxes, np.float64).reshape(-1, 7)
    lab = np.asarray(box_labels, np.int64).reshape(-1)
    n = scene.num_points
    inside = points_in_boxes(scene.coord, b, margin=margin)  # (N,M)
    vol = b[:, 3] * b[:, 4] * b[:, 5]
    stuff = np.isin(scene.semantic, [scene.classes.index(c) for c in stuff_classes(scene.classes) if c in scene.classes])
    target = np.full(n, -1, np.int64)
    for k in np.unique(scene.instance[(scene.instance >= 0) & ~stuff]):
        m = scene.instance == k
        holds = np.flatnonzero(inside[m].mean(0) >= 0.9)
        if len(holds):
            target[m] = holds[np.argmin(vol[holds])]
    rest = np.flatnonzero((target < 0) & ~stuff & inside.any(1))
    if len(rest):
        target[rest] = np.argmin(np.where(inside[rest], vol[None, :], np.inf), 1)
    counts = np.zeros((int(node.max()) + 1, len(b) + 1))
    np.add.at(counts, (node, target + 1), 1.0)
    inst = (counts.argmax(1) - 1)[node]
    boxed = np.flatnonzero(inst >= 0)
    inst[boxed[~inside[boxed, inst[boxed]]]] = -1  # a box keeps only the points inside it
    sem = np.full(n, -1, np.int64)
    sem[inst >= 0] = lab[inst[inst >= 0]]
    return PseudoLabels(semantic=sem, instance=inst, confidence=np.ones(n, np.float32), method="box-oracle",
                        classes=scene.classes)


def perfect_instance_bound(scene: Scene, seed_index: np.ndarray, seed_label: np.ndarray) -> np.ndarray:
    """(N,) int64 labels from perfect 3D instances and the seeds: a seeded instance takes its
    seeds' majority class, an unseeded one the class of the seeded instance whose centroid is
    nearest (-1 without instances or seeds). What perfect masks give with a nearest-centroid
    rule for the objects no seed lands on; lifting should beat it."""
    if scene.instance is None:
        raise SceneError(f"scene {scene.name!r}: perfect_instance_bound needs GT instances")
    inst = scene.instance
    out = np.full(scene.num_points, -1, np.int64)
    seed_index, seed_label = np.asarray(seed_index, np.int64), np.asarray(seed_label, np.int64)
    ok = (inst[seed_index] >= 0) & (seed_label >= 0)
    if not ok.any():
        return out
    ids, inv = np.unique(inst[inst >= 0], return_inverse=True)
    cent = np.stack([np.bincount(inv, weights=scene.coord[inst >= 0, i]) for i in range(3)], 1) / np.bincount(inv)[:, None]
    tally = np.zeros((len(ids), int(seed_label.max()) + 1))
    np.add.at(tally, (np.searchsorted(ids, inst[seed_index[ok]]), seed_label[ok]), 1.0)
    seeded = np.flatnonzero(tally.sum(1) > 0)
    near = seeded[np.argmin(((cent[:, None] - cent[seeded][None]) ** 2).sum(-1), 1)]
    cls = tally[near].argmax(1)
    out[inst >= 0] = cls[inv]
    return out

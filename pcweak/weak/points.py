"""Sparse point labels and instance clicks drawn from a scene's ground truth (seeded)."""
from __future__ import annotations

from typing import Annotated

import numpy as np

from ..errors import SceneError
from ..params import COUNT_RANGE, Count, Fraction, Range, Seed, ranges_checked
from ..scene import Scene, WeakLabels


def _need(scene: Scene, *fields: str) -> None:
    """SceneError unless ``scene`` has each of ``fields``; semantic labels must also label
    at least one point (a ground truth of only -1 would give an empty weak file silently)."""
    for f in fields:
        if getattr(scene, f) is None:
            what = "ground-truth boxes" if f == "boxes" else f"{f} labels"
            raise SceneError(f"scene {scene.name!r}: has no {what} to simulate weak labels from")
        if f == "semantic" and not (scene.semantic >= 0).any():
            raise SceneError(f"scene {scene.name!r}: its semantic labels leave all {scene.num_points} points unlabelled "
                             f"(-1), so there is nothing to simulate weak labels from")


@ranges_checked("points")
def points(scene: Scene, count: Annotated[int | None, COUNT_RANGE] = None,
           ratio: Annotated[float | None, Range(0, 1, low_open=True)] = None, seed: Seed = 0,
           stratified: bool = False) -> WeakLabels:
    """Label ``count`` points (or ``ratio`` of the labelled points, at least one).

    Uniform (default): a uniform random sample of the GT-labelled points, as in ScanNet's
    Data-Efficient "LA" benchmark. Stratified: the budget is spread as evenly as possible over
    the classes present (each class's points sampled uniformly), so rare classes get seeds.
    """
    if (count is None) == (ratio is None):
        raise ValueError("points(): give exactly one of count= or ratio=")
    _need(scene, "semantic")
    labelled = np.flatnonzero(scene.semantic >= 0)
    if count is None:
        count = max(1, int(round(ratio * len(labelled))))
    count = min(count, len(labelled))
    rng = np.random.default_rng(seed)
    if not stratified:
        idx = rng.choice(labelled, size=count, replace=False)
    else:
        classes = np.unique(scene.semantic[labelled])
        pools = {c: rng.permutation(labelled[scene.semantic[labelled] == c]) for c in classes}
        take = {c: 0 for c in classes}
        left = count
        while left:
            open_ = [c for c in classes if take[c] < len(pools[c])]
            share = max(1, left // len(open_))
            for c in open_:
                k = min(share, len(pools[c]) - take[c], left)
                take[c] += k
                left -= k
                if not left:
                    break
        idx = np.concatenate([pools[c][: take[c]] for c in classes])
    idx = np.sort(idx)
    return WeakLabels(scene=scene.name, num_points=scene.num_points, classes=scene.classes, point_index=idx,
                      point_semantic=scene.semantic[idx],
                      point_instance=None if scene.instance is None else scene.instance[idx],
                      meta={"kind": "points", "count": int(count), "stratified": bool(stratified), "seed": int(seed)})


@ranges_checked("clicks")
def clicks(scene: Scene, per_instance: Count = 1, seed: Seed = 0, interior_quantile: Fraction = 0.5,
           classes: tuple[int, ...] | None = None) -> WeakLabels:
    """``per_instance`` clicks on every GT instance, each near the instance's interior.

    A click is drawn uniformly among the instance's points whose distance to the nearest point
    of another instance (or of unlabelled space) is above the ``interior_quantile`` of that
    distance within the instance — as an annotator clicks the middle of an object, not its
    boundary. ``classes`` restricts clicks to some class ids (default: all).
    """
    _need(scene, "semantic", "instance")
    from scipy.spatial import cKDTree
    rng = np.random.default_rng(seed)
    inst_ids = np.unique(scene.instance[scene.instance >= 0])
    chosen = []
    for k in inst_ids:
        m = np.flatnonzero(scene.instance == k)
        sem = scene.semantic[m]
        if (sem < 0).all() or (classes is not None and int(np.bincount(sem[sem >= 0]).argmax()) not in classes):
            continue
        m = m[sem >= 0]
        other = np.flatnonzero(scene.instance != k)
        if len(other):
            d, _ = cKDTree(scene.coord[other]).query(scene.coord[m], k=1, workers=-1)
        else:
            d = np.linalg.norm(scene.coord[m] - scene.coord[m].mean(0), axis=1).max() - np.linalg.norm(scene.coord[m] - scene.coord[m].mean(0), axis=1)
        inner = m[d >= np.quantile(d, interior_quantile)]
        chosen.append(rng.choice(inner, size=min(per_instance, len(inner)), replace=False))
    idx = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    return WeakLabels(scene=scene.name, num_points=scene.num_points, classes=scene.classes, point_index=idx,
                      point_semantic=scene.semantic[idx], point_instance=scene.instance[idx],
                      meta={"kind": "clicks", "per_instance": int(per_instance), "seed": int(seed)})


@ranges_checked("clusters")
def clusters(scene: Scene, seed: Seed = 0, classes: tuple[int, ...] | None = None, min_points: Count = 1) -> WeakLabels:
    """Cluster-level labels (MixSup): every GT instance's points as one labelled cluster, as an
    annotator who picks an object's cluster and names its class gives them. ``point_instance``
    numbers the clusters; ``classes`` restricts them to some class ids (default: all)."""
    _need(scene, "semantic", "instance")
    idx, sem, inst = [], [], []
    for k in np.unique(scene.instance[scene.instance >= 0]):
        m = np.flatnonzero((scene.instance == k) & (scene.semantic >= 0))
        if len(m) < min_points:
            continue
        c = int(np.bincount(scene.semantic[m]).argmax())
        if classes is not None and c not in classes:
            continue
        idx.append(m)
        sem.append(np.full(len(m), c, np.int64))
        inst.append(np.full(len(m), len(inst), np.int64))
    cat = (lambda a: np.concatenate(a) if a else np.zeros(0, np.int64))
    return WeakLabels(scene=scene.name, num_points=scene.num_points, classes=scene.classes, point_index=cat(idx),
                      point_semantic=cat(sem), point_instance=cat(inst), meta={"kind": "clusters", "seed": int(seed)})

"""2D masks (SAM-like, per RGB-D frame) lifted to 3D: grouping and class evidence for the walk.

1. Visibility (``mask_views.MaskViews``): scene points are projected into each frame
   (intrinsics, camera-to-world pose); a point is visible when it lands in the image and its
   depth agrees with the depth map within ``abs_tol + rel_tol * depth``. Frames with invalid
   poses are skipped with a warning. Mask maps may have another resolution than the depth map
   (masks made on the colour image): the intrinsics are scaled to the mask size.
2. Semantic labels come from label propagation over the scene's superpoint graph, with the
   masks inside it (``mask_views.MaskEvidence``): an edge between two superpoints is
   strengthened where the frames that see both put them under one mask and weakened where they
   keep them apart; a frame's merged or split mask is outvoted by the frames that saw the
   objects right. Per-mask class scores (a vision-language model's, restricted to the scene's
   tags) add seed mass to the superpoints they cover, so the walk decides unseeded objects from
   both the seeds' reach and the masks' classes. Without scores, the masks' 3D segments (step
   3) no seed lies in are decided by the forest after the walk (``refine``), whose class
   evidence from the seeded objects' look carries over, where the walk would give each the
   class of whichever neighbour reaches it through the edges the masks cut.
3. Instances: masks of different frames are joined (union-find) when, restricted to what both
   frames see, their overlap |A ∩ B| / min(|A ∩ vis_b|, |B ∩ vis_a|) reaches
   ``merge_overlap``; each point takes the 3D segment most of its masks belong to.
"""
from __future__ import annotations

import json
import warnings
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import SceneError
from ..scene import PseudoLabels, Scene
from .mask_views import MaskEvidence, MaskViews, check_mask_scores


def _segments(views: MaskViews, min_points: int, merge_overlap: float) -> tuple[np.ndarray, int]:
    """(N,) 3D segment per point (-1 = under no mask) and the segment count: masks of different
    frames joined by overlap (module docstring), each point in the segment most of its masks
    belong to."""
    n, M = views.num_points, views.num_masks
    X = views.membership(min_points)
    Vis = sp.csr_matrix((np.ones(sum(map(len, views.points))),
                         (np.repeat(np.arange(len(views.points)), [len(p) for p in views.points]),
                          np.concatenate(views.points) if views.points else np.zeros(0, np.int64))), shape=(len(views.points), n))
    mask_frame = np.full(M, -1, np.int64)
    for k, (lab, off) in enumerate(zip(views.labels, views.offset)):
        ids = np.unique(lab[lab > 0])
        mask_frame[ids + off] = k
    live = np.flatnonzero(np.asarray(X.sum(1)).ravel() > 0)
    inter = (X @ X.T).tocoo()
    XV = (X @ Vis.T).toarray()  # |mask ∩ visible in frame f|
    parent = np.arange(M)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a
    for a, b, c in zip(inter.row, inter.col, inter.data):
        if a >= b or mask_frame[a] == mask_frame[b]:
            continue
        denom = min(XV[a, mask_frame[b]], XV[b, mask_frame[a]])
        if denom >= min_points and c / denom >= merge_overlap:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    seg_of_mask = np.unique([find(i) for i in range(M)], return_inverse=True)[1] if M else np.zeros(0, np.int64)
    n_seg = int(seg_of_mask.max()) + 1 if M else 0
    if n_seg:  # numbered by their first point, not by the masks' ids, which a 2D segmenter draws at random
        Xc = X.tocsr()
        first = np.full(n_seg, n, np.int64)
        has = np.diff(Xc.indptr) > 0
        np.minimum.at(first, seg_of_mask[has], np.minimum.reduceat(Xc.indices, Xc.indptr[:-1][has]))
        seg_of_mask = np.argsort(np.argsort(first, kind="stable"), kind="stable")[seg_of_mask]
    S = sp.csr_matrix((np.ones(len(live)), (live, seg_of_mask[live])), shape=(M, max(n_seg, 1)))
    votes = (X.T @ S).tocsr()  # (N, segments)
    views_per_point = np.asarray(X.sum(0)).ravel()
    instance = np.full(n, -1, np.int64)
    covered = np.flatnonzero(views_per_point > 0)
    if len(covered):
        instance[covered] = np.asarray(votes[covered].argmax(1)).ravel()
    return instance, len(np.unique(instance[instance >= 0]))


def lift_masks(scene: Scene, masks: Sequence[tuple[int, np.ndarray]], *, point_index: Any = None, point_label: Any = None,
               mask_scores: np.ndarray | None = None, scene_tags: np.ndarray | None = None, abs_tol: float = 0.03,
               rel_tol: float = 0.02, min_points: int = 20, merge_overlap: float = 0.5, mask_link: float = 1.0,
               mask_cut: float = 2.0, prior_weight: float = 0.03, prior_agreement: float = 2.0,
               propagate_params: dict | None = None) -> PseudoLabels:
    """Dense labels from 2D masks, labelled points and/or mask class scores (module docstring).

    Args:
        scene: with ``frames`` holding depth maps.
        masks: (frame index, (H,W) int label map, 0 = no mask) per frame.
        point_index / point_label: (K,) labelled points (class per point).
        mask_scores: (total masks, C) class scores of the masks, in frame order then mask id
            1..m of each map (the layout of ``scores.npy``).
        scene_tags: (C,) bool classes present; scores of other classes are ignored.
        mask_link / mask_cut: how far mask agreement joins, and disagreement cuts, a graph edge
            (``MaskEvidence``); 0 / 0 gives propagation alone.
        prior_weight: seed mass of the class scores on each superpoint they cover.
        prior_agreement: power of the views' agreement on a superpoint's class that scales it
            (a poor model's scores disagree across views and weigh less).
        propagate_params: settings of the walk (``propagate_config``).
    Returns:
        PseudoLabels with semantic (-1 everywhere without points and scores), instance (3D
        segment id), confidence (the walk's), and ``extras`` ``views`` (masks covering each point).
    """
    from .propagate import propagate
    C = len(scene.classes)
    views = MaskViews.from_masks(scene, masks, abs_tol=abs_tol, rel_tol=rel_tol)
    sc = None
    if mask_scores is not None:
        sc = check_mask_scores("mask_scores", mask_scores, views.num_masks, C)
        if scene_tags is not None:
            sc = np.where(np.asarray(scene_tags, bool)[None], sc, -np.inf)
    instance, n_seg = _segments(views, min_points, merge_overlap)
    pi = np.zeros(0, np.int64) if point_index is None else np.asarray(point_index, np.int64).reshape(-1)
    pl = np.zeros(0, np.int64) if point_label is None else np.asarray(point_label, np.int64).reshape(-1)
    n = scene.num_points
    semantic, confidence = np.full(n, -1, np.int64), np.zeros(n, np.float32)
    if not len(pi) and sc is None:
        warnings.warn("lift-masks: no labelled points and no class scores, so no semantic labels: only the masks' 3D "
                      "segments (instance) are made; give points in --weak or scores.npy in --masks")
    else:
        # without class scores, the forest after the walk decides the 3D segments no seed lies in;
        # with them, the scores' seed mass does (the forest would override it); no mask trust
        # (link = cut = 0) is propagation alone
        grouped = sc is None and (mask_link > 0 or mask_cut > 0)
        evidence = MaskEvidence(views, link=mask_link, cut=mask_cut, scores=sc, prior_weight=prior_weight,
                                prior_agreement=prior_agreement, groups=instance if grouped else None)
        prop = propagate(scene.coord, pi, pl, color=scene.color, normal=scene.normal, segment=scene.segment,
                         num_classes=C, classes=scene.classes, config=propagate_params, groups=evidence)
        semantic, confidence = prop.semantic, prop.confidence
    params = dict(abs_tol=abs_tol, rel_tol=rel_tol, min_points=min_points, merge_overlap=merge_overlap, mask_link=mask_link,
                  mask_cut=mask_cut, prior_weight=prior_weight, prior_agreement=prior_agreement,
                  propagate_params=propagate_params)
    views_per_point = np.zeros(n, np.int32)
    for pts, lab in zip(views.points, views.labels):
        views_per_point[pts[lab > 0]] += 1
    stats = dict(frames=len(masks), skipped_frames=len(views.skipped), masks=int(views.num_masks), segments=int(n_seg),
                 seeds=int(len(pi)), scored=sc is not None)
    return PseudoLabels(semantic=semantic, instance=instance, confidence=np.clip(confidence, 0, 1).astype(np.float32),
                        method="lift-masks", params=json.dumps(params, sort_keys=True), stats=json.dumps(stats, sort_keys=True),
                        classes=scene.classes, extras={"views": views_per_point})

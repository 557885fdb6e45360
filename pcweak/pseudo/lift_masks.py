"""2D masks (SAM-like, per RGB-D frame) lifted to 3D segments and labelled.

1. Visibility: scene points are projected into each frame (intrinsics, camera-to-world pose); a
   point is visible when it lands in the image and its depth agrees with the depth map within
   ``abs_tol + rel_tol * depth`` (``camera.visible_points``). Frames with invalid poses are
   skipped with a warning. Mask maps may have another resolution than the depth map (masks made
   on the colour image): the registered intrinsics are scaled to the mask size.
2. Each 2D mask gives the set of visible points under it (at least ``min_points``).
3. Merging: masks of different frames are joined (union-find) when, restricted to what both
   frames can see, their overlap |A ∩ B| / min(|A ∩ vis_b|, |B ∩ vis_a|) reaches
   ``merge_overlap``; one object seen in many frames becomes one 3D segment. Each point votes
   for the segment most of its masks belong to.
4. Labels: (a) sparse labelled points spread their class over their segment (majority vote;
   confidence from agreement and the number of views); (b) per-mask class scores from a
   vision-language model (masks x classes), averaged per segment and restricted to the scene's
   tags. Points no labelled segment covers fall back to label propagation when
   ``fallback="propagate"``.
"""
from __future__ import annotations

import json
import warnings
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from ..camera import visible_points
from ..errors import SceneError
from ..scene import Frame, PseudoLabels, Scene


def _scaled(frame: Frame, shape: tuple[int, int]) -> Frame:
    """The frame seen at ``shape`` (H,W): depth resampled by nearest neighbour, K scaled."""
    d = frame.depth
    if d.shape == shape:
        return frame
    sy, sx = shape[0] / d.shape[0], shape[1] / d.shape[1]
    K = frame.intrinsics.copy()
    K[0] *= sx
    K[1] *= sy
    rows = np.minimum((np.arange(shape[0]) / sy).astype(int), d.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) / sx).astype(int), d.shape[1] - 1)
    return Frame(frame.name, frame.pose, K, depth=d[rows][:, cols])


def _valid_pose(pose: np.ndarray) -> bool:
    R = pose[:3, :3]
    return bool(np.isfinite(pose).all() and abs(np.linalg.det(R) - 1) < 1e-2 and np.allclose(pose[3], [0, 0, 0, 1], atol=1e-6))


def lift_masks(scene: Scene, masks: Sequence[tuple[int, np.ndarray]], *, point_index: Any = None, point_label: Any = None,
               mask_scores: np.ndarray | None = None, scene_tags: np.ndarray | None = None, abs_tol: float = 0.03,
               rel_tol: float = 0.02, min_points: int = 20, merge_overlap: float = 0.5, fallback: str | None = "propagate",
               propagate_params: dict | None = None) -> PseudoLabels:
    """Dense labels from 2D masks (see the module docstring).

    Args:
        scene: with ``frames`` holding depth maps.
        masks: (frame index, (H,W) int label map, 0 = no mask) per frame.
        point_index / point_label: (K,) labelled points (class per point).
        mask_scores: (total masks, C) class scores of the masks, in frame order then mask id
            1..m of each map (the layout of ``scores.npy``).
        scene_tags: (C,) bool classes present; VLM scores of other classes are ignored.
    Returns:
        PseudoLabels with semantic, instance (3D segment id), confidence, and ``extras``
        ``views`` (masks covering each point).
    """
    n = scene.num_points
    cols, rows, owner_frame = [], [], []
    vis_rows, vis_cols = [], []
    skipped = []
    m_id = 0
    frame_of_mask = []
    for k, (fi, label_map) in enumerate(masks):
        if not 0 <= fi < len(scene.frames):
            raise SceneError(f"masks: frame index {fi} out of range ({len(scene.frames)} frames)")
        f = scene.frames[fi]
        if not _valid_pose(f.pose) or f.depth is None:
            skipped.append(f.name)
            m_id += int(np.asarray(label_map).max())
            continue
        lm = np.asarray(label_map)
        if lm.ndim != 2 or lm.dtype.kind not in "iu":
            raise SceneError(f"masks: frame {f.name}: expected an (H,W) integer label map, got {lm.shape} {lm.dtype}")
        fr = _scaled(f, lm.shape)
        vis, u, v = visible_points(scene.coord, fr, abs_tol=abs_tol, rel_tol=rel_tol)
        pts = np.flatnonzero(vis)
        vis_rows.append(np.full(len(pts), k))
        vis_cols.append(pts)
        lab = lm[v[pts], u[pts]].astype(np.int64)
        for mid in range(1, int(lm.max()) + 1):
            members = pts[lab == mid]
            gid = m_id + mid - 1
            frame_of_mask.append((gid, k))
            if len(members) >= min_points:
                rows.append(np.full(len(members), gid))
                cols.append(members)
        m_id += int(lm.max())
    if skipped:
        warnings.warn(f"lift_masks: skipped {len(skipped)} frames with invalid poses or no depth: {skipped[:10]}")
    M = m_id
    if mask_scores is not None and len(mask_scores) != M:
        raise SceneError(f"mask_scores: {len(mask_scores)} rows but the masks hold {M} mask ids")
    X = sp.csr_matrix((np.ones(sum(map(len, rows))), (np.concatenate(rows) if rows else [], np.concatenate(cols) if cols else [])),
                      shape=(M, n))
    Vis = sp.csr_matrix((np.ones(sum(map(len, vis_rows))), (np.concatenate(vis_rows) if vis_rows else [],
                                                            np.concatenate(vis_cols) if vis_cols else [])), shape=(len(masks), n))
    mask_frame = np.full(M, -1, np.int64)
    for gid, k in frame_of_mask:
        mask_frame[gid] = k
    size = np.asarray(X.sum(1)).ravel()
    live = np.flatnonzero(size > 0)
    # merge masks of different frames by overlap within the region both frames see
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
        a_in_b = XV[a, mask_frame[b]]
        b_in_a = XV[b, mask_frame[a]]
        denom = min(a_in_b, b_in_a)
        if denom >= min_points and c / denom >= merge_overlap:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    seg_of_mask = np.array([find(i) for i in range(M)])
    _, seg_of_mask = np.unique(seg_of_mask, return_inverse=True)
    n_seg = int(seg_of_mask.max()) + 1 if M else 0
    # per-point vote over segments
    S = sp.csr_matrix((np.ones(len(live)), (live, seg_of_mask[live])), shape=(M, max(n_seg, 1)))
    votes = (X.T @ S).tocsr()  # (N, segments)
    views = np.asarray(X.sum(0)).ravel()
    instance = np.full(n, -1, np.int64)
    vote_conf = np.zeros(n)
    covered = np.flatnonzero(views > 0)
    if len(covered):
        vc = votes[covered]
        best = np.asarray(vc.argmax(1)).ravel()
        instance[covered] = best
        vote_conf[covered] = np.asarray(vc.max(1).todense()).ravel() / views[covered]
    C = len(scene.classes)
    seg_class = np.full(max(n_seg, 1), -1, np.int64)
    seg_conf = np.zeros(max(n_seg, 1))
    source = np.zeros(max(n_seg, 1), np.int64)  # 1 = seeds, 2 = VLM
    seg_views = np.bincount(seg_of_mask[live], minlength=max(n_seg, 1))
    if mask_scores is not None:
        sc = np.asarray(mask_scores, np.float64)
        if sc.shape[1] != C:
            raise SceneError(f"mask_scores: {sc.shape[1]} classes but the scene has {C}")
        if scene_tags is not None:
            sc = np.where(np.asarray(scene_tags, bool)[None], sc, -np.inf)
        agg = np.zeros((max(n_seg, 1), C))
        for gid in live:
            row = sc[gid]
            p = np.exp(row - row.max()) if np.isfinite(row).any() else np.zeros(C)
            agg[seg_of_mask[gid]] += p / max(p.sum(), 1e-12)
        has = agg.sum(1) > 0
        seg_class[has] = agg[has].argmax(1)
        seg_conf[has] = agg[has].max(1) / agg[has].sum(1)
        source[has] = 2
    if point_index is not None and len(point_index):
        pi = np.asarray(point_index, np.int64)
        pl = np.asarray(point_label, np.int64)
        ok = (instance[pi] >= 0) & (pl >= 0)
        tally = np.zeros((max(n_seg, 1), C))
        np.add.at(tally, (instance[pi[ok]], pl[ok]), 1.0)
        seeded = tally.sum(1) > 0
        agreement = tally[seeded].max(1) / tally[seeded].sum(1)
        seg_class[seeded] = tally[seeded].argmax(1)
        seg_conf[seeded] = agreement * (1.0 - np.exp(-seg_views[seeded] / 2.0))
        source[seeded] = 1
    semantic = np.where(instance >= 0, seg_class[np.maximum(instance, 0)], -1)
    confidence = np.where(semantic >= 0, seg_conf[np.maximum(instance, 0)] * vote_conf, 0.0)
    params = dict(abs_tol=abs_tol, rel_tol=rel_tol, min_points=min_points, merge_overlap=merge_overlap, fallback=fallback,
                  propagate_params=propagate_params)
    stats = dict(frames=len(masks), skipped_frames=len(skipped), lifted_masks=int(len(live)), segments=int(n_seg),
                 seeded_segments=int((source == 1).sum()), vlm_segments=int((source == 2).sum()))
    if fallback == "propagate" and point_index is not None and len(point_index) and (semantic < 0).any():
        from .propagate import propagate
        prop = propagate(scene.coord, point_index, point_label, color=scene.color, normal=scene.normal, segment=scene.segment,
                         num_classes=C, classes=scene.classes, config=propagate_params)
        fill = (semantic < 0) & (prop.semantic >= 0)
        semantic = np.where(fill, prop.semantic, semantic)
        confidence = np.where(fill, 0.5 * prop.confidence, confidence)
        stats["filled_by_propagation"] = int(fill.sum())
    if point_index is not None and len(point_index):
        semantic[np.asarray(point_index)] = np.asarray(point_label)
        confidence[np.asarray(point_index)] = 1.0
    return PseudoLabels(semantic=semantic, instance=instance, confidence=np.clip(confidence, 0, 1).astype(np.float32),
                        method="lift-masks", params=json.dumps(params, sort_keys=True), stats=json.dumps(stats, sort_keys=True),
                        classes=scene.classes,
                        extras={"views": views.astype(np.int32)})

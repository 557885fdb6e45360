"""Simulated 2D instance masks (what SAM-like models give) rendered from GT with a depth test."""
from __future__ import annotations

from typing import Annotated

import numpy as np

from ..camera import render_label_map
from ..params import COUNT0_RANGE, Fraction, Range, Seed, ranges_checked
from ..scene import Scene, WeakLabels
from .points import _need

PIXELS = COUNT0_RANGE


@ranges_checked("masks2d")
def masks2d(scene: Scene, seed: Seed = 0, frames: list[int] | None = None, erosion: Annotated[int, PIXELS] = 0,
            merge_prob: Fraction = 0.0, split_prob: Fraction = 0.0, drop_prob: Fraction = 0.0,
            min_pixels: Annotated[int, PIXELS] = 20, max_dist: Annotated[float, Range(0, low_open=True)] = 0.05) -> WeakLabels:
    """One integer label map per frame (0 = no mask, 1..m = masks), from the GT instances.

    Each depth pixel takes the instance of the surface it sees (back-projection + nearest point
    within ``max_dist``), so occluded objects never leak into a mask. Noise, each seeded:
    ``erosion`` pixels removed at every mask boundary; ``merge_prob`` per mask of merging it
    with a touching mask; ``split_prob`` of cutting a mask in two along its principal axis;
    ``drop_prob`` of dropping a mask. Masks under ``min_pixels`` are dropped.
    """
    _need(scene, "instance")
    if not scene.frames:
        raise ValueError(f"scene {scene.name!r}: has no frames to render masks in")
    if frames is not None and any(not isinstance(f, (int, np.integer)) or not 0 <= f < len(scene.frames) for f in frames):
        raise ValueError(f"masks2d(): frames must be indices in [0, {len(scene.frames)}) of {scene.name!r}'s frames, got {list(frames)}")
    from scipy import ndimage
    from scipy.spatial import cKDTree
    rng = np.random.default_rng(seed)
    tree = cKDTree(scene.coord)
    sel = list(range(len(scene.frames))) if frames is None else list(frames)
    maps = []
    for fi in sel:
        f = scene.frames[fi]
        if f.depth is None:
            raise ValueError(f"frame {f.name} of {scene.name!r}: no depth map; masks need a depth test")
        inst = render_label_map(scene.coord, scene.instance, f, max_dist=max_dist, tree=tree)
        if maps and inst.shape != maps[0].shape:  # one (F,H,W) array holds the maps
            first = scene.frames[sel[0]]
            raise ValueError(f"scene {scene.name!r}: frame {f.name}'s depth map is {inst.shape[1]}x{inst.shape[0]}, frame "
                             f"{first.name}'s {maps[0].shape[1]}x{maps[0].shape[0]}; 2D masks need one size for all frames")
        ids = np.unique(inst[inst >= 0])
        lab = np.zeros(inst.shape, np.int32)
        for j, k in enumerate(ids, 1):
            lab[inst == k] = j
        if merge_prob > 0:
            for j in range(1, len(ids) + 1):
                if rng.random() >= merge_prob or not (lab == j).any():
                    continue
                ring = ndimage.binary_dilation(lab == j, iterations=2) & (lab != j) & (lab > 0)
                if ring.any():
                    other = np.bincount(lab[ring]).argmax()
                    lab[lab == other] = j
        if split_prob > 0:
            nxt = lab.max() + 1
            for j in range(1, lab.max() + 1):
                m = lab == j
                if m.sum() < 2 * min_pixels or rng.random() >= split_prob:
                    continue
                v, u = np.nonzero(m)
                pts = np.stack([u, v], 1).astype(np.float64)
                pts -= pts.mean(0)
                axis = np.linalg.svd(pts, full_matrices=False)[2][0]
                side = pts @ axis > 0
                lab[v[side], u[side]] = nxt
                nxt += 1
        if erosion > 0:
            out = np.zeros_like(lab)
            for j in np.unique(lab[lab > 0]):
                out[ndimage.binary_erosion(lab == j, iterations=erosion)] = j
            lab = out
        if drop_prob > 0:
            for j in np.unique(lab[lab > 0]):
                if rng.random() < drop_prob:
                    lab[lab == j] = 0
        # renumber 1..m, dropping tiny masks
        ids, counts = np.unique(lab[lab > 0], return_counts=True)
        remap = np.zeros(int(lab.max()) + 1, np.int32)
        keep = ids[counts >= min_pixels]
        remap[keep] = np.arange(1, len(keep) + 1)
        maps.append(remap[lab])
    return WeakLabels(scene=scene.name, num_points=scene.num_points, classes=scene.classes,
                      mask2d=np.stack(maps).astype(np.int32), mask2d_frame=np.array(sel, np.int64),
                      meta={"kind": "masks2d", "seed": int(seed), "erosion": erosion, "merge_prob": merge_prob,
                            "split_prob": split_prob, "drop_prob": drop_prob})

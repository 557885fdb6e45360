"""``pcweak bench lift``: 2D-mask lifting on synthetic rooms with rendered RGB-D frames.

Pseudo-label mIoU and coverage for 20 labelled points per scene: propagation alone, masks
(simulated SAM-like masks: GT instances rendered with a depth test, 1 px erosion, 10 % splits,
5 % drops) + points, and masks + simulated VLM class scores (the right class scored highest for
70 % of the masks, a random class otherwise). Time per frame at 640x480 for ~200k points.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import machine


def run(scenes: int = 2, frames: int = 12, points: int = 20, seed: int = 0) -> dict[str, Any]:
    from .. import weak
    from ..data.synthetic_indoor import synthetic_room
    from ..metrics import semantic_report
    import tempfile
    from dataclasses import replace
    from ..pseudo.mask_sources import write_mask_folder
    from ..pseudo.registry import label
    rows = {"propagation": [], "masks+points": [], "masks+vlm": []}
    cov = {k: [] for k in rows}
    rng = np.random.default_rng(seed)
    for i in range(scenes):
        s = synthetic_room(300 + i, n_frames=frames)
        w = weak.points(s, count=points, seed=seed)
        m = weak.masks2d(s, seed=seed, erosion=1, split_prob=0.1, drop_prob=0.05)
        maps = list(zip(m.mask2d_frame.tolist(), m.mask2d))
        # VLM scores: per mask, the majority GT class of its visible points, right 70 % of the time
        from ..camera import visible_points
        scores = []
        for fi, lm in maps:
            vis, u, v = visible_points(s.coord, s.frames[fi])
            lab = lm[v[vis], u[vis]]
            for mid in range(1, int(lm.max()) + 1):
                sem = s.semantic[vis][lab == mid]
                c = int(np.bincount(sem).argmax()) if len(sem) else 0
                if rng.random() > 0.7:
                    c = int(rng.integers(len(s.classes)))
                row = rng.normal(0, 0.3, len(s.classes))
                row[c] += 2.0
                scores.append(row)
        scores = np.array(scores).reshape(-1, len(s.classes))
        tags = weak.scene_tags(s).scene_tags
        wm = replace(w, mask2d=m.mask2d, mask2d_frame=m.mask2d_frame)
        with tempfile.TemporaryDirectory() as vlm:  # the VLM's scores travel as a user's would: a mask folder
            write_mask_folder(vlm, s, maps, scores)
            outs = {"propagation": label(s, w, "propagate"), "masks+points": label(s, wm, "lift-masks"),
                    "masks+vlm": label(s, replace(w, scene_tags=tags), "lift-masks", masks=vlm)}
        for k, p in outs.items():
            r = semantic_report(s.semantic, p.semantic, s.classes)
            rows[k].append(r["miou"])
            cov[k].append(r["coverage"])
    # timing: ~200k points, 640x480 frames
    big = synthetic_room(400, density=2600.0, n_frames=4, frame_size=(480, 640))
    mb = weak.masks2d(big, seed=seed)
    t = time.perf_counter()
    label(big, mb, "lift-masks", fallback=None)
    per_frame = (time.perf_counter() - t) / len(mb.mask2d)
    return {"bench": "lift", "machine": machine(), "scenes": scenes, "frames_per_scene": frames, "points_per_scene": points,
            "miou": {k: round(float(np.mean(v)), 4) for k, v in rows.items()},
            "coverage": {k: round(float(np.mean(v)), 4) for k, v in cov.items()},
            "timing": {"points": big.num_points, "frame_size": [480, 640], "seconds_per_frame": round(per_frame, 3), "target": 0.2}}

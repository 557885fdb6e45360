"""``pcweak bench detect``: the detector trained with full boxes and with each weak mode on the same
synthetic frames and step budget, scored on held-out synthetic frames by KITTI's devkit rules.

For each mode: BEV and 3D AP R40 moderate per class, the ratio to full supervision, the quality
of the training targets (``target_quality``: pseudo boxes against GT) and wall time. The pseudo-
box quality on the real shared KITTI frames is ``pcweak bench pseudo-boxes``.
"""
from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from . import machine

MODES = ("full", "clicks", "clusters", "boxes2d")


def _train_and_score(mode: str, train: int, val: int, steps: int, batch_size: int, box_fraction: float, voxel: list[float],
                     cache_dir: str, seed: int) -> dict[str, Any]:
    import lightning as L
    from ..classes import KITTI_OBJECT_CLASSES
    from ..metrics.kitti import kitti_ap
    from ..tasks.detection import Detection
    from ..train.lidar_datamodule import LidarDataModule
    L.seed_everything(seed, verbose=False)
    dm = LidarDataModule(synthetic_train=train, synthetic_val=val, weak_mode=mode, box_fraction=box_fraction, voxel_size=voxel,
                         batch_size=batch_size, cache_dir=cache_dir, seed=seed)
    dm.prepare_data()
    dm.setup()
    t0 = time.perf_counter()
    quality = dm.quality_report()
    label_s = time.perf_counter() - t0
    model = Detection(voxel_size=voxel)
    trainer = L.Trainer(max_steps=steps, max_epochs=-1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        check_val_every_n_epoch=10 ** 6)
    t1 = time.perf_counter()
    trainer.fit(model, dm)
    train_s = time.perf_counter() - t1
    frames: list = []
    model._report = lambda stage, print_json=False: frames.extend(model._frames)
    trainer.validate(model, dm, verbose=False)
    ap = kitti_ap([g for _, g, _ in frames], [d for _, _, d in frames])
    frames_q = [q for q in quality.values() if q.get("gt")]
    def finite(v: Any) -> float | None:  # no counted object of the class: no AP (JSON null, not NaN)
        return None if v is None or not np.isfinite(v) else round(float(v), 2)
    return {"ap_moderate_R40": {m: {c: finite(ap[m].get(c, {}).get("moderate", {}).get("R40")) for c in KITTI_OBJECT_CLASSES}
                                for m in ("bev", "3d")},
            "targets": {"mean_iou_bev": round(float(np.mean([q["mean_iou_bev"] for q in frames_q])), 4),
                        "recall_bev_0.7": round(float(np.mean([q["recall_bev_0.7"] for q in frames_q])), 4)},
            "label_seconds": round(label_s, 1), "train_seconds": round(train_s, 1)}


def run(modes: str = ",".join(MODES), train: int = 16, val: int = 40, steps: int = 400, batch_size: int = 2,
        box_fraction: float = 0.125, voxel: list[float] = [0.1, 0.1, 0.2], cache_dir: str = "outputs/bench_detect",
        seed: int = 0) -> dict[str, Any]:
    from ..train.lidar_datamodule import WEAK_MODES
    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    bad = [m for m in chosen if m not in WEAK_MODES]
    if bad or not chosen:
        raise ValueError(f"modes: a comma-separated subset of {list(WEAK_MODES)}, got {modes!r}")
    t0 = time.perf_counter()
    rows = {}
    for m in chosen:
        print(f"bench detect: training {m} ({steps} steps) ...", flush=True, file=sys.stderr)
        rows[m] = _train_and_score(m, train, val, steps, batch_size, box_fraction, voxel, cache_dir, seed)
    if "full" in rows:
        full = rows["full"]["ap_moderate_R40"]
        for m, r in rows.items():
            r["ratio_to_full"] = {k: {c: (round(v / full[k][c], 3) if v is not None and full[k][c] else None)
                                      for c, v in r["ap_moderate_R40"][k].items()} for k in ("bev", "3d")}
    return {"bench": "detect", "machine": machine(), "train_frames": train, "val_frames": val, "steps": steps,
            "batch_size": batch_size, "box_fraction": box_fraction, "voxel_size": voxel, "modes": rows,
            "seconds": round(time.perf_counter() - t0, 1)}

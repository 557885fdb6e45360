"""``pcweak bench detect``: the detector trained with full boxes and with each weak mode on the same
synthetic frames, detector configuration and step budget, scored on held-out synthetic frames by
KITTI's devkit rules.

For each mode: BEV and 3D AP R40 moderate per class, the ratio to full supervision, the quality
of the training targets before training and, with self-training rounds, after them
(``targets`` / ``targets_after_rounds``: pseudo boxes against GT; ``targets_per_class``: each GT
box's best BEV IoU with a target of its class), each round's replaced boxes,
and wall time. ``real_kitti``: the pseudo boxes' quality on the real shared KITTI frames
(leave-one-frame-out, as ``pcweak bench pseudo-boxes``), where those frames are present.

The default detector is cheaper than the configs' (0.2 x 0.2 x 0.4 m voxels, two strided stages:
output stride 4, i.e. 0.8 m BEV cells; 16-32-32 sparse and 64 BEV channels) so that full
supervision converges within the hour for all four modes on 2 cores: at 1000 steps it scores
higher (Car / Pedestrian BEV 77.4 / 72.8) than SECOND's 0.1 m voxels with 16-32-64-64 channels
after 1500 steps (72.0 / 46.8), in a quarter of the time.
"""
from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from . import machine, shared_root
from ..params import Count, Seed, ranges_checked

MODES = ("full", "clicks", "clusters", "boxes2d")


def _mean_quality(report: dict[str, Any]) -> dict[str, float]:
    frames = [q for q in report.values() if q.get("gt")]
    return {"mean_iou_bev": round(float(np.mean([q["mean_iou_bev"] for q in frames])), 4),
            "recall_bev_0.7": round(float(np.mean([q["recall_bev_0.7"] for q in frames])), 4)}


def _class_quality(dm: Any) -> dict[str, dict[str, float]]:
    """Per class, over the training frames, scored as ``pcweak bench pseudo-boxes`` scores pseudo
    boxes: each GT box's best BEV / 3D IoU with a training target of its class (means), recall at
    BEV 0.7 (Car) or 0.5 (others)."""
    from .pseudo_boxes import _score, _summarise
    ds = dm.train_dataset()
    scores = []
    for i in range(len(ds)):
        scene, t, _, _ = ds.entry(i)
        scores.append(_score(scene, np.asarray(t["reg_boxes"], np.float64).reshape(-1, 7), np.asarray(t["reg_class"])))
    out = _summarise(scores, [0.0])
    out.pop("seconds_per_frame")
    return out


def _train_and_score(mode: str, train: int, val: int, steps: int, batch_size: int, box_fraction: float, voxel: list[float],
                     channels: list[int], bev_channels: int, lr: float, rounds: int, cache_dir: str, seed: int) -> dict[str, Any]:
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
    before = _mean_quality(dm.quality_report())
    per_class = _class_quality(dm)
    label_s = time.perf_counter() - t0
    model = Detection(voxel_size=voxel, channels=channels, bev_channels=bev_channels, lr=lr,
                      self_training_rounds=0 if mode == "full" else rounds)
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
    def finite(v: Any) -> float | None:  # no counted object of the class: no AP (JSON null, not NaN)
        return None if v is None or not np.isfinite(v) else round(float(v), 2)
    row = {"ap_moderate_R40": {m: {c: finite(ap[m].get(c, {}).get("moderate", {}).get("R40")) for c in KITTI_OBJECT_CLASSES}
                               for m in ("bev", "3d")},
           "targets": before, "targets_per_class": per_class, "label_seconds": round(label_s, 1), "train_seconds": round(train_s, 1)}
    if model.rounds_done:
        row["rounds"] = model.rounds_done
        row["targets_after_rounds"] = _mean_quality(dm.quality_report())
    return row


@ranges_checked("bench detect")
def run(modes: str = ",".join(MODES), train: Count = 16, val: Count = 40, steps: Count = 1000, batch_size: Count = 2,
        box_fraction: float = 0.125, voxel: list[float] = [0.2, 0.2, 0.4], channels: list[int] = [16, 32, 32],
        bev_channels: Count = 64, lr: float = 0.003, rounds: int = 0, cache_dir: str = "outputs/bench_detect",
        shared: str | None = None, seed: Seed = 0) -> dict[str, Any]:
    from ..train.lidar_datamodule import WEAK_MODES
    from .pseudo_boxes import real_kitti_quality
    root = shared_root(shared)  # a missing folder refused before the training
    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    bad = [m for m in chosen if m not in WEAK_MODES]
    if bad or not chosen:
        raise ValueError(f"modes: a comma-separated subset of {list(WEAK_MODES)}, got {modes!r}")
    if rounds < 0 or steps < 1:
        raise ValueError(f"rounds: an integer >= 0 and steps >= 1, got {rounds!r} and {steps!r}")
    t0 = time.perf_counter()
    rows = {}
    for m in chosen:
        print(f"bench detect: training {m} ({steps} steps{'' if m == 'full' or not rounds else f', {rounds} self-training rounds'}) ...",
              flush=True, file=sys.stderr)
        rows[m] = _train_and_score(m, train, val, steps, batch_size, box_fraction, voxel, channels, bev_channels, lr, rounds,
                                   cache_dir, seed)
    if "full" in rows:
        full = rows["full"]["ap_moderate_R40"]
        for m, r in rows.items():
            r["ratio_to_full"] = {k: {c: (round(v / full[k][c], 3) if v is not None and full[k][c] else None)
                                      for c, v in r["ap_moderate_R40"][k].items()} for k in ("bev", "3d")}
    return {"bench": "detect", "machine": machine(), "train_frames": train, "val_frames": val, "steps": steps,
            "batch_size": batch_size, "box_fraction": box_fraction, "voxel_size": voxel, "channels": channels,
            "bev_channels": bev_channels, "lr": lr, "self_training_rounds": rounds, "modes": rows,
            **real_kitti_quality(root), "seconds": round(time.perf_counter() - t0, 1)}

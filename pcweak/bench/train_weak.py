"""``pcweak bench train-weak``: label efficiency end to end. One fixed split of synthetic rooms
(32 training rooms; 12 validation rooms, so that a rare class is scored on several objects,
not on one), the demo's model and schedule (configs/demo.yaml) for
960 steps (30 epochs), trained with each kind of supervision. With one budget, more rooms train a
better model than more epochs over fewer (docs/results.md: 8 rooms x 60 epochs 0.61 val mIoU, 32
x 15 0.74, same steps), so the bench spends its hour on rooms and steps, not on the demo's 8 rooms.
Prints each setting's val mIoU (last epoch, and the best epoch), its ratio to full labels, its
wall time, for each pseudo-label set its own mIoU against the training rooms' GT (pooled, and
per room), and the validation rooms' voxel ceiling (each point its voxel's majority GT label).

Settings: ``full``; ``points`` (200 labelled points per room, seeds only); ``points+propagate``
(the same seeds plus propagation pseudo-labels); ``self-training`` (one round of
``pcweak label --method model-walk``: the same seeds propagated again over a graph that also
compares ``points+propagate``'s final model's class probabilities; the next model trains on the
seeds plus those labels);
``clicks+walk`` (one click per object, the instance walk's pseudo-labels); ``boxes+gp`` (a box per
object, the GP labeller's pseudo-labels). ``point_head`` overrides the config's choice of
per-point or per-voxel prediction. Progress goes to stderr, the JSON to stdout."""
from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import machine
from ..params import Count, Seed, ranges_checked

# the supervision settings in the order they run; self-training is built from points+propagate's model
SETTINGS = ("full", "points", "points+propagate", "self-training", "clicks+walk", "boxes+gp")


def pseudo_quality(pseudo_dir: str | Path, scenes: list[tuple[str, str]]) -> dict[str, Any]:
    """The pseudo-labels in ``pseudo_dir`` against the rooms' GT: ``miou`` over all rooms' points
    pooled (as the validation mIoU is), ``per_room`` each room's own mIoU and its ``min`` /
    ``max``. A room's own mIoU counts a class the labels give but the room lacks as IoU 0, so a
    model's labels (which may give any class) score lower per room than a walk's (which gives
    only the room's seeded classes); pooled, both are measured alike."""
    from ..data.address import load_scene
    from ..metrics import confusion, iou_from_confusion
    from ..scene import PseudoLabels
    per, cm = {}, 0
    for name, addr in scenes:
        scene = load_scene(addr)
        room = confusion(scene.semantic, PseudoLabels.load(Path(pseudo_dir) / f"{name}.npz").semantic, len(scene.classes))
        per[name] = round(float(np.nanmean(iou_from_confusion(room))), 4)
        cm = cm + room
    vals = list(per.values())
    return {"miou": round(float(np.nanmean(iou_from_confusion(cm))), 4), "per_room_mean": round(float(np.mean(vals)), 4),
            "min": min(vals), "max": max(vals), "per_room": per}


def voxel_ceiling(scenes: list[tuple[str, str]], voxel_size: float) -> dict[str, Any]:
    """Point mIoU over ``scenes`` when every point takes its voxel's majority GT label: the
    ceiling of a model that predicts one class per voxel of ``voxel_size`` (the majority
    maximises point accuracy; for mIoU it is the practical bound, not a proven one).
    ``{"miou", "per_class": {name: IoU}}`` over the classes present."""
    from ..data.address import load_scene
    from ..metrics import confusion, iou_from_confusion
    from ..train.transforms import voxel_labels, voxelize_sample
    cm, classes = 0, None
    for _, addr in scenes:
        scene = load_scene(addr)
        classes = scene.classes
        vox = voxelize_sample(scene.coord, np.zeros((scene.num_points, 0), np.float32), voxel_size)
        lab, _ = voxel_labels(vox["inverse"], scene.semantic, len(vox["grid_coord"]))
        cm = cm + confusion(scene.semantic, lab[vox["inverse"]].numpy(), len(scene.classes))
    iou = iou_from_confusion(cm)
    return {"miou": round(float(np.nanmean(iou)), 4),
            "per_class": {classes[c]: round(float(iou[c]), 4) for c in range(len(classes)) if np.isfinite(iou[c])}}


def _weak_files(scenes: list[tuple[str, str]], folder: Path, points: int, seed: int) -> Path:
    """The training rooms' simulated weak points (the ones the datamodule draws: ``weak_for``)
    written to ``folder/<name>.npz``, for a labeller that reads weak-label files."""
    from ..data.address import load_scene
    from ..train.datamodule import weak_for
    folder.mkdir(parents=True, exist_ok=True)
    for name, addr in scenes:
        weak_for(load_scene(addr), name, None, "points", points, None, seed).save(folder / f"{name}.npz")
    return folder


@ranges_checked("bench train-weak")
def run(settings: str = ",".join(SETTINGS), train_rooms: Count = 32, val_rooms: Count = 12, epochs: Count = 30,
        voxel_size: float = 0.1, points: Count = 200, seed: Seed = 0, point_head: bool | None = None,
        out: str = "") -> dict[str, Any]:
    from ..demo import DEMO_CONFIG
    from ..train.runs import SUPERVISION_RUNS, fit_run
    from ..train.self_training import model_walk_labels
    if point_head is not None and not isinstance(point_head, bool):
        raise ValueError(f"point_head: true or false (or left out for the config's), got {point_head!r}")
    chosen = [s.strip() for s in settings.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SETTINGS]
    if not chosen:
        raise ValueError(f"settings: name at least one of {list(SETTINGS)}")
    if bad:
        raise ValueError(f"settings: unknown {bad}; choose from {list(SETTINGS)}")
    if "self-training" in chosen and "points+propagate" not in chosen:
        raise ValueError("settings: self-training starts from points+propagate's model; list both")
    work = Path(out) if out else Path(tempfile.mkdtemp(prefix="pcweak-train-weak-"))
    common = ["--data.init_args.cache_dir", str(work / "cache"), "--data.init_args.synthetic_train", str(train_rooms),
              "--data.init_args.synthetic_val", str(val_rooms), "--data.init_args.voxel_size", str(voxel_size),
              "--data.init_args.points", str(points), "--seed_everything", str(seed)]
    if point_head is not None:  # else the config's
        common += ["--model.init_args.point_head", str(point_head).lower()]
    t0 = time.time()
    rows: dict[str, dict[str, Any]] = {}
    val_scenes: list[tuple[str, str]] = []
    order = [s for s in SETTINGS if s in chosen]
    for k, name in enumerate(order, 1):
        print(f"[bench] {k}/{len(order)} {name} ...", file=sys.stderr, flush=True)
        quality = None
        if name != "self-training":
            extra = SUPERVISION_RUNS[name]
        else:
            scenes = rows["points+propagate"]["_train_scenes"]
            target, weak = work / "self_training_pseudo", _weak_files(scenes, work / "weak", points, seed)
            with contextlib.redirect_stdout(sys.stderr):  # Lightning's messages: stdout is for the JSON
                model_walk_labels(rows["points+propagate"]["last_checkpoint"], scenes, weak, target, accelerator="cpu", devices=1)
            quality = pseudo_quality(target, scenes)
            extra = ["--data.init_args.supervision", "points+pseudo", "--data.init_args.pseudo_dir", str(target),
                     "--data.init_args.weak_dir", str(weak), "--model.init_args.loss_pseudo", "1.0"]
        cli, r = fit_run(DEMO_CONFIG, [*common, *extra], work / "runs", name, epochs, prefix="bench", stream=sys.stderr)
        train_scenes, run_val = cli.datamodule.scene_lists()
        if rows and run_val != val_scenes:  # every setting is scored on the one split
            raise RuntimeError(f"bench train-weak: setting {name!r} validated on other rooms than {order[0]!r}")
        val_scenes = run_val
        if quality is None and cli.datamodule.pseudo_dir and "pseudo" in cli.datamodule.hparams.supervision:
            quality = pseudo_quality(cli.datamodule.pseudo_dir, train_scenes)
        rows[name] = {**r, "pseudo_labels": quality, "_train_scenes": train_scenes}
    full = rows.get("full", {}).get("val_miou")
    for r in rows.values():
        r.pop("_train_scenes")
        r["ratio_to_full"] = round(r["val_miou"] / full, 3) if full and r["val_miou"] is not None else None
    ceiling = voxel_ceiling(val_scenes, voxel_size)
    return {"bench": "train-weak", "machine": machine(), "config": str(DEMO_CONFIG), "train_rooms": train_rooms,
            "val_rooms": val_rooms, "val_voxel_ceiling": ceiling["miou"],
            "val_voxel_ceiling_per_class": ceiling["per_class"], "epochs": epochs, "steps": epochs * train_rooms, "voxel_size": voxel_size,
            "points_per_room": points, "seed": seed,
            "point_head": bool(cli.model.point_head is not None), "settings": rows, "seconds": round(time.time() - t0, 1), "work_dir": str(work)}

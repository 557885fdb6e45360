"""``pcweak bench voxel``: labelling at one point per voxel (``pcweak label --voxel``) beside
labelling every point, on the same scenes and weak labels in the same run.

Scenes: the real ScanNet scans of ../shared/data (the scene0000_00/01/02 exports: bare points
with colour, as a scan without mesh gets) and synthetic rooms sampled densely (``density``
surface samples per m^2: 12,200 gives about 1M points, a dense scan's spacing of about 1 cm),
their segments dropped. Weak labels: 200 labelled points for ``propagate``, tight boxes of every
object for ``gp-boxes``. Each run is a fresh process (``bench memory``'s): its seconds, the
memory it held at its peak beyond what it held before, and its scores against the scene's ground
truth (mIoU; for boxes the mean best-match mask IoU, the instance figure of ``bench gp``). Per
scene, method and voxel the ``ratio`` of each figure to the point-by-point run's, and the same
subsampled labels carried back to each point from its nearest kept point alone
(``nearest_kept_point``: ``carry_back(neighbours=1)``), the baseline of the default carrying
back that also weighs colour and normals; ``summary`` gives per method and voxel the mean and the
lowest ratio over the scenes (the spread, not only the mean).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import machine, shared_root
from ..params import Count0, Seed, ranges_checked

METHODS = ("propagate", "gp-boxes")
SEED_POINTS = 200


def _scenes(shared: Path | None, rooms: int, density: float, seed: int) -> list[Any]:
    from ..data.scannet import read_scannet_export
    from ..data.synthetic_indoor import synthetic_room
    out = []
    exp = shared / "scannet" / "scannet_train_instance_data" if shared else None
    if exp is not None and exp.is_dir():
        for name in ("scene0000_00", "scene0000_01", "scene0000_02"):
            if (exp / f"{name}_vert_all.npy").is_file():
                out.append(read_scannet_export(exp, name))
    for i in range(rooms):
        room = synthetic_room(seed + i, density=density, n_frames=0)
        out.append(replace(room, segment=None, name=f"synthetic_{seed + i}_density_{density:g}"))
    return out


def _weak(scene: Any, method: str) -> Any:
    from .. import weak
    if method == "propagate":
        return replace(weak.points(scene, count=SEED_POINTS, seed=0), point_instance=None)
    return weak.boxes(scene, seed=0)


def _figure(method: str) -> str:
    return "mean_best_iou" if method == "gp-boxes" else "miou"


def _measure_voxel(scene_path: str, weak_path: str, method: str, voxel: float | None) -> dict[str, Any]:
    """In a fresh process: ``memory.labelled_and_measured`` of ``label(..., voxel=voxel)`` (with
    a voxel, its own steps: ``subsample_for``, ``label`` of the subsample, ``carry_back``), its
    scores and the points labelled; with a voxel, after the peak is read, the same subsampled
    labels carried back from the nearest kept point alone, scored under ``nearest_kept_point``."""
    from .memory import labelled_and_measured, scores
    from ..pseudo.registry import get_labeller, label, subsample_for
    lab = get_labeller(method)
    keeps_seeds = lab.keeps_seeds

    def run(scene: Any, weak: Any) -> tuple[Any, Any, Any, Any]:
        if voxel is None:
            return scene, None, None, label(scene, weak, method)
        sub = subsample_for(lab, scene, weak, voxel)
        small = label(sub.scene, sub.weak, method)
        return scene, sub, small, sub.carry_back(small, keeps_seeds)
    (scene, sub, small, pseudo), out = labelled_and_measured(scene_path, weak_path, method, run)
    out.update(scores(scene, pseudo))
    out["labelled_points"] = scene.num_points if sub is None else sub.scene.num_points
    if sub is not None:
        out["nearest_kept_point"] = scores(scene, sub.carry_back(small, keeps_seeds, neighbours=1))[_figure(method)]
    return out


@ranges_checked("bench voxel")
def run(voxels: list[float] | float = (0.02, 0.05), methods: list[str] | str = METHODS, rooms: Count0 = 2,
        density: float = 12200.0, seed: Seed = 100, shared: str | None = None) -> dict[str, Any]:
    """Per scene, method and voxel (``None``: every point): points labelled, seconds, memory held
    (GB), ``miou`` / ``mean_best_iou`` and their ratio to the point-by-point run. ``voxels``:
    voxel edges in metres; ``methods``: a subset of ``METHODS``; ``rooms``: synthetic rooms (seeds
    ``seed``, ``seed + 1``, ...); ``shared``: the folder of the real samples (default
    ../shared/data, "" for none)."""
    from .memory import in_fresh_process
    from ..pseudo.voxel_subsample import check_voxel
    sizes = [check_voxel(v, "bench voxel: voxels") for v in (voxels if isinstance(voxels, (list, tuple)) else [voxels])]
    wanted = [methods] if isinstance(methods, str) else list(methods)
    for m in wanted:
        if m not in METHODS:
            raise ValueError(f"bench voxel: methods: {m!r} is not one of {', '.join(METHODS)}")
    if not sizes or not wanted:
        raise ValueError("bench voxel: voxels and methods must each name at least one")
    if not density > 0:
        raise ValueError(f"bench voxel: density: {density!r} is not a number of surface samples per m^2 > 0")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scenes = _scenes(shared_root(shared), rooms, density, seed)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pcweak-bench-voxel-") as tmp:
        for scene in scenes:
            scene_path = scene.save(Path(tmp) / "scene.npz")
            for method in wanted:
                weak_path = _weak(scene, method).save(Path(tmp) / "weak.npz")
                base = None
                for size in [None, *sizes]:
                    g = in_fresh_process(_measure_voxel, str(scene_path), str(weak_path), method, size)
                    key = _figure(method)
                    row = {"scene": scene.name, "method": method, "voxel": size, "points": scene.num_points,
                           "labelled_points": g["labelled_points"],
                           "seconds": round(g["seconds"], 2), "held_gb": round(max(g["peak_kb"] - g["before_kb"], 0) / 2**20, 3),
                           key: g.get(key)}
                    if base is None:
                        base = row
                    else:
                        row["nearest_kept_point"] = g["nearest_kept_point"]
                        row["ratio"] = {k: (round(row[k] / base[k], 3) if row[k] is not None and base[k] else None)
                                        for k in (key, "seconds", "held_gb")}
                        row["ratio"]["nearest_kept_point"] = round(g["nearest_kept_point"] / base[key], 3) if base[key] else None
                    rows.append(row)
                    print(f"{method} on {scene.name} ({scene.num_points:,} points), voxel {size}: {key} {row[key]}, "
                          f"{row['seconds']} s, held {row['held_gb']} GB", file=sys.stderr, flush=True)
    summary: dict[str, Any] = {}
    for method in wanted:
        for size in sizes:
            r = [x["ratio"] for x in rows if x["method"] == method and x["voxel"] == size]
            key = _figure(method)
            vals = [x[key] for x in r if x[key] is not None]
            near = [x["nearest_kept_point"] for x in r if x["nearest_kept_point"] is not None]
            summary[f"{method} voxel {size:g}"] = {
                f"{key}_ratio_mean": round(float(np.mean(vals)), 3) if vals else None,
                f"{key}_ratio_min": min(vals) if vals else None,
                "nearest_kept_point_ratio_mean": round(float(np.mean(near)), 3) if near else None,
                "nearest_kept_point_ratio_min": min(near) if near else None,
                "seconds_ratio_mean": round(float(np.mean([x["seconds"] for x in r])), 3),
                "held_gb_ratio_mean": round(float(np.mean([x["held_gb"] for x in r if x["held_gb"] is not None])), 3)
                if any(x["held_gb"] is not None for x in r) else None, "scenes": len(r)}
    return {"bench": "voxel", "machine": machine(), "voxels": sizes, "methods": wanted, "density": density,
            "rows": rows, "summary": summary, "seconds": round(time.perf_counter() - t0, 1)}

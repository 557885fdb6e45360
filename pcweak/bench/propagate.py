"""``pcweak bench propagate``: pseudo-label quality and cost of propagation vs nearest-seed.

Scenes: the real ScanNet scenes of ../shared/data (v2 per-vertex labels of scene0000_00/01/02;
scene0000_00 also with its own over-segmentation and mesh normals), synthetic rooms, the
real KITTI frames (classes from their boxes) and the real SemanticKITTI scans (their 19
classes, point by point; one click per thing instance, so clicks seed no ground or building
there). Budgets: 20/50/100/200 labelled points per scene (uniform and stratified) and
one click per instance. At the largest budget, each scene's own row (``per_scene_200pts``): its
mIoU, the ceiling its superpoints set (``oracles.seeded_class_oracle`` on the cells its labels
are uniform over), their ratio and, for a scene with its own over-segmentation, the same from
the same seeds without it (the default ensemble of partitions on estimated normals, as ScanNet
scans shipped without mesh and segments get); ``points_only_fh``: the walk on FH superpoints
alone (the ensemble's first member), the baseline of the ensemble in the same run.
``per_scene_clicks_bare``: one click per instance, each scene on its bare points.
``targets_scannet``: the bare scans' figures beside their bars (``_bare_scan_targets``); 4 draws
per setting by default, as those bars ask. Separately: a 1M-point synthetic room with 200 seeds,
timed in a fresh process so its peak memory is its own.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from . import machine, shared_lidar_scenes, shared_root
from ..params import COUNT_RANGE, Count, Count0, ranges_checked

def _scenes(shared: Path | None, n_synthetic: int) -> dict[str, list]:
    from ..data.address import load_scene
    from ..data.scannet import read_scannet_export
    from ..data.synthetic_indoor import synthetic_room
    out: dict[str, list] = {"scannet": [], "synthetic": []}
    exp = shared / "scannet" / "scannet_train_instance_data" if shared else None
    if exp and exp.is_dir():
        for name in ("scene0000_00", "scene0000_01", "scene0000_02"):
            s = read_scannet_export(exp, name)
            raw = shared / "scannet" / "scans" / name
            if raw.is_dir():  # same vertices: take the real over-segmentation and mesh normals
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = load_scene(f"scannet:{raw}", frames=False, axis_alignment=shared / "scannet" / "infos" / f"{name}.json")
                s.segment, s.normal = r.segment, r.normal
            out["scannet"].append(s)
    for seed in range(n_synthetic):
        out["synthetic"].append(synthetic_room(100 + seed, n_frames=0))
    out.update(shared_lidar_scenes(shared))
    return out


def _one_million(seed: int) -> dict[str, Any]:
    """Run in a child process: 1M points, 200 seeds, propagation time and peak RSS."""
    code = f"""
import json, resource, time, numpy as np
from dataclasses import replace
from pcweak.data.synthetic_indoor import synthetic_room
from pcweak import weak
from pcweak.pseudo.registry import label
s = synthetic_room({seed}, density=12200.0, n_frames=0)
w = replace(weak.points(s, count=200, seed=0), point_instance=None)
from pcweak.ops.extension import compiled; compiled()
from pcweak.open3d_lib import open3d; open3d()  # imports are paid once per process, not per scene
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
p = label(replace(s, segment=None), w, "propagate")  # the ensemble of partitions a bare scan gets
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from pcweak.metrics import semantic_report
print(json.dumps({{"points": s.num_points, "seeds": 200, "seconds": round(dt, 2), "peak_rss_gb": round(peak / 2**20, 3),
                  "rss_before_gb": round(base / 2**20, 3), "warm": "compiled ops built and open3d imported before timing", "miou": round(semantic_report(s.semantic, p.semantic, s.classes)["miou"], 4)}}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if r.returncode:
        return {"error": r.stderr[-2000:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def _bare(s: Any) -> Any:
    """The scene as a scan without mesh gets it: a scene with its own segments loses them and
    their mesh normals; one without is returned as it is."""
    from dataclasses import replace
    return s if s.segment is None else replace(s, segment=None, normal=None)


def _prefixed(key: str, name: str) -> str:
    """The per-scene key of ``name`` for the labelling ``key`` (bare for ``propagate``)."""
    return name if key == "propagate" else f"{key}_{name}"


def _scene_breakdown(acc: dict[str, list[float]], s: Any, w: Any, p: Any, miou_p: float) -> None:
    """Adds one draw of a scene to ``acc``: ``propagate`` (``miou_p``, the mIoU of ``p``, already
    computed by the caller) and ``seeded_class_ceiling`` (``seeded_class_oracle`` on the cells its
    labels are uniform over); for a scene with its own over-segmentation, ``points_only``:
    propagation from the same seeds on the scene made bare (``_bare``: the default ensemble of
    partitions on estimated normals, as a scan without a mesh gets; real ScanNet: 2 of the 3
    samples); for every scene ``points_only_fh``, the walk on FH superpoints alone of the bare
    scene. Each with its ``..._seeded_class_ceiling``."""
    from .oracles import seeded_class_oracle
    from ..metrics import semantic_report
    from ..pseudo.registry import label

    def miou(pred: np.ndarray) -> float:
        return semantic_report(s.semantic, pred, s.classes)["miou"]

    def add(key: str, q: Any, value: float | None = None) -> None:
        acc.setdefault(key, []).append(miou(q.semantic) if value is None else value)
        acc.setdefault(_prefixed(key, "seeded_class_ceiling"), []).append(
            miou(seeded_class_oracle(s, q.extras["superpoint"], w.point_semantic)))
    add("propagate", p, miou_p)
    bare = _bare(s)
    if s.segment is not None:
        add("points_only", label(bare, w, "propagate"))
    # the walk on FH superpoints alone, the partition bare scans got before the ensemble
    add("points_only_fh", label(bare, w, "propagate", **{"partition.method": "fh"}))


def _bare_scan_targets(sc: dict[str, Any], draws: int) -> dict[str, Any]:
    """The figures the real scans as bare points (a scan's own segments dropped) are held to,
    each beside its bar (issue 20): 200 random points, the mean over the scans (>= 0.72) and
    each scan's ratio to its seeded-class ceiling (>= 0.9), over ``draws`` draws (the issue asks
    >= 4); one click per instance, the mean (>= 0.62). ``with_own_segments_200pts``: the same
    draws' mean with scene0000_00 on its mesh segments, as the scans ship."""
    per = sc.get("per_scene_200pts", {})
    out: dict[str, Any] = {"draws": draws, "target_draws": 4}
    if per:
        bare = {n: r.get("points_only", r["propagate"]) for n, r in per.items()}
        ratio = {n: r.get("points_only_ratio_to_ceiling", r["ratio_to_ceiling"]) for n, r in per.items()}
        out.update({"bare_200pts_mean": round(float(np.mean(list(bare.values()))), 4), "target_bare_200pts_mean": 0.72,
                    "bare_200pts_ratio_to_ceiling": ratio, "target_bare_ratio_to_ceiling": 0.9,
                    "bare_200pts_fh_mean": round(float(np.mean([r["points_only_fh"] for r in per.values()])), 4),
                    "with_own_segments_200pts": sc["miou"].get("200pts", {}).get("propagate")})
    cb = sc.get("per_scene_clicks_bare", {})
    if cb:
        out.update({"bare_clicks_mean": round(float(np.mean(list(cb.values()))), 4), "target_bare_clicks_mean": 0.62})
    return out


@ranges_checked("bench propagate")
def run(budgets: Annotated[tuple[int, ...], COUNT_RANGE] = (20, 50, 100, 200), seeds: Count = 4, n_synthetic: Count0 = 2, one_million: bool = True,
        shared: str | None = None) -> dict[str, Any]:
    from .. import weak
    from ..metrics import semantic_report
    from dataclasses import replace

    from ..pseudo.registry import label
    root = shared_root(shared)
    res: dict[str, Any] = {"bench": "propagate", "machine": machine(), "data": str(root) if root else None, "results": {}}
    data = _scenes(root, n_synthetic)
    for dset, scenes in data.items():
        if not scenes:
            res["results"][dset] = "not available (no ../shared/data)"
            continue
        table: dict[str, Any] = {}
        top = f"{max(budgets)}pts"
        per_scene: dict[str, dict[str, list[float]]] = {s.name: {} for s in scenes}
        clicks_bare: dict[str, list[float]] = {}
        settings = [(f"{b}pts", dict(count=b, stratified=False)) for b in budgets]
        settings += [(f"{b}pts_stratified", dict(count=b, stratified=True)) for b in budgets if b == 200]
        settings += [("clicks", None)]
        for name, kw in settings:
            rows = {"nearest": [], "propagate": []}
            times = {"nearest": [], "propagate": []}
            for s in scenes:
                if kw is None and s.instance is None:
                    continue
                for seed in range(seeds):
                    w = weak.points(s, seed=seed, **kw) if kw else weak.clicks(s, seed=seed)
                    w = replace(w, point_instance=None)  # semantic labels are scored: no instance walks
                    for m in rows:
                        t = time.perf_counter()
                        p = label(s, w, m)
                        if m == "propagate":
                            p_prop = p
                        times[m].append(time.perf_counter() - t)
                        rows[m].append(semantic_report(s.semantic, p.semantic, s.classes)["miou"])
                    if name == top:
                        _scene_breakdown(per_scene[s.name], s, w, p_prop, rows["propagate"][-1])
                    if kw is None:  # each scene's clicks on its bare points (its own segments dropped)
                        q = p_prop if s.segment is None else label(_bare(s), w, "propagate")
                        clicks_bare.setdefault(s.name, []).append(semantic_report(s.semantic, q.semantic, s.classes)["miou"])
            if rows["nearest"]:
                table[name] = {m: round(float(np.mean(v)), 4) for m, v in rows.items()}
                table[name]["gain_points"] = round(100 * (table[name]["propagate"] - table[name]["nearest"]), 1)
                table[name]["seconds_per_scene"] = {m: round(float(np.mean(v)), 3) for m, v in times.items()}
        rows_top = {k: {m: round(float(np.mean(v)), 4) for m, v in d.items()} for k, d in per_scene.items() if d}
        for r in rows_top.values():  # the figure over its ceiling, as issue 20 asks for every scene
            for key in ("propagate", "points_only", "points_only_fh"):
                if key in r:
                    r[_prefixed(key, "ratio_to_ceiling")] = round(r[key] / max(r[_prefixed(key, "seeded_class_ceiling")], 1e-9), 3)
        res["results"][dset] = {"scenes": [s.name for s in scenes], "miou": table, f"per_scene_{top}": rows_top,
                                "per_scene_clicks_bare": {k: round(float(np.mean(v)), 4) for k, v in clicks_bare.items()}}
    sc = res["results"].get("scannet")
    if isinstance(sc, dict):
        res["targets_scannet"] = _bare_scan_targets(sc, seeds)
    if one_million:
        res["one_million"] = _one_million(7)
        res["one_million"]["targets"] = {"seconds": 10, "peak_gb": 4}
    return res

"""``pcweak bench memory``: the memory each labeller holds, against the figures that ``pcweak
label --workers`` budgets by (``Labeller.fixed_bytes`` + ``bytes_per_point`` x points).

Each labeller runs in a fresh process, as a worker of ``pcweak label`` does: it reads the scene
and its weak labels from files, imports its libraries, then labels. The process's resident-set
high-water mark is reset just before labelling (``/proc/self/clear_refs``), so the peak is the
labelling's, not the reading's; ``held_gb`` is the peak less the resident memory before.

Scenes: bare synthetic rooms (their segments dropped, as a real scan has none) at two
densities, about 130k and 1.07M points, with ``frames`` rendered RGB-D frames: 200 labelled
points for ``propagate`` and ``nearest``, tight boxes for ``gp-boxes`` and ``smallest-box``,
perfect 2D masks of every frame plus the 200 points for ``lift-masks``; and synthetic KITTI-like
LiDAR frames of two sizes (900 and 3,600 columns, about 5 x 10^4 and 2 x 10^5 points; sizes
learned from ``boxed`` other frames) for the LiDAR object labellers: one click per object,
cluster labels, image boxes; and for propagation, whose graph has more neighbours on scan
lines. Where the real samples are present (``shared``), ScanNet's scene0000_00 bare with its
posed frames and KITTI's first training frame too. The line through
a labeller's two synthetic sizes splits what it holds into a fixed part and a part per point
(``fit``); ``covered``: the budget (``Labeller.memory_bytes``) holds the measurement.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import machine, shared_root
from ..params import Count, Seed, ranges_checked

ROOM_METHODS = ("propagate", "nearest", "gp-boxes", "smallest-box", "lift-masks")
LIDAR_METHODS = ("click-boxes", "cluster-boxes", "boxes2d-frustum")
SCAN_LINE_METHODS = ("propagate",)  # measured on the LiDAR frames too: their scan lines give it a larger graph
SEED_POINTS = 200


def _peak_reset() -> bool:
    """Resets this process's resident-set high-water mark (Linux >= 4.0); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def labelled_and_measured(scene_path: str, weak_path: str, method: str,
                          run: Callable[[Any, Any], Any]) -> tuple[Any, dict[str, Any]]:
    """In a fresh process: read the files and import ``method``'s libraries, then ``run(scene,
    weak)`` measured; returns what it returned and ``seconds``, ``before_kb``, ``peak_kb``,
    ``peak_from`` (the labelling's peak, not the reading's)."""
    from ..open3d_lib import open3d
    from ..ops.extension import compiled
    from ..pseudo.registry import get_labeller
    from ..scene import Scene, WeakLabels
    scene, weak = Scene.load(scene_path), WeakLabels.load(weak_path)
    get_labeller(method)  # imports every labeller's libraries
    compiled()
    open3d()  # the normals' library, imported by the labellers on first use
    reset = _peak_reset()
    before_kb = _status_kb("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    result = run(scene, weak)
    seconds = time.perf_counter() - t
    peak_kb = (_status_kb("VmHWM") if reset else None) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result, {"seconds": seconds, "before_kb": before_kb, "peak_kb": peak_kb,
                    "peak_from": "VmHWM after clear_refs" if reset else "ru_maxrss (the reading's peak included)"}


def _measure(scene_path: str, weak_path: str, method: str, params_json: str, score: bool = False) -> dict[str, Any]:
    """In a fresh process: read the files, label, and return the seconds and memory (GB); with
    ``score``, the labels' ``evaluate`` figures against the scene's ground truth too (``miou``,
    ``mean_best_iou`` where the scene has instances), taken after the peak is read."""
    from ..pseudo.registry import label
    (scene, pseudo), out = labelled_and_measured(
        scene_path, weak_path, method, lambda scene, weak: (scene, label(scene, weak, method, **json.loads(params_json))))
    if score:
        out.update(scores(scene, pseudo))
    return out


def scores(scene: Any, pseudo: Any) -> dict[str, float]:
    """``evaluate``'s ``miou`` of ``pseudo`` on ``scene``, and ``mean_best_iou`` where the scene has
    instances, rounded to 4 places."""
    from ..metrics.evaluate import evaluate
    e = evaluate(scene, pseudo)
    out = {"miou": round(e["miou"], 4)}
    if "instance" in e:
        out["mean_best_iou"] = round(e["instance"]["mean_best_iou"], 4)
    return out


def in_fresh_process(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a fresh (spawned) process, so that its peak memory is its own."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _in_fresh_process(scene_path: Path, weak_path: Path, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return in_fresh_process(_measure, str(scene_path), str(weak_path), method, json.dumps(params))


def _row(scene: Any, scan_lines: bool, method: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One labeller on one scene over its runs: the largest memory held (the peak depends on how
    the labeller's threads interleave) and the smallest, against the budget (``scan_lines``: the
    scene's points lie along scan lines, which a propagating labeller budgets apart)."""
    from ..pseudo.registry import get_labeller
    held = [max(g["peak_kb"] - g["before_kb"], 0) * 1024 for g in runs]
    top = runs[int(np.argmax(held))]
    budget = get_labeller(method).memory_bytes(scene.num_points, scan_lines)
    return {"method": method, "scene": scene.name, "points": scene.num_points, "scan_lines": scan_lines,
            "seconds": round(min(g["seconds"] for g in runs), 1), "runs": len(runs),
            "rss_before_gb": round(top["before_kb"] / 2**20, 3), "peak_gb": round(top["peak_kb"] / 2**20, 3),
            "held_gb": round(max(held) / 2**30, 3), "held_gb_least": round(min(held) / 2**30, 3),
            "bytes_per_point": round(max(held) / scene.num_points), "budgeted_gb": round(budget / 2**30, 3),
            "covered": max(held) <= budget, "peak_from": top["peak_from"]}


def _fit(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Fixed and per-point memory through a labeller's two sizes (a line through the two
    measurements), beside the registry's figures."""
    from ..pseudo.registry import get_labeller
    by_size = sorted(rows, key=lambda r: r["points"])
    a, b = by_size[0], by_size[-1]
    lab = get_labeller(a["method"])
    out: dict[str, Any] = {"budgeted_bytes_per_point": lab.per_point_bytes(a["scan_lines"]),
                           "budgeted_fixed_mb": round(lab.fixed_bytes / 2**20)}
    if b["points"] > a["points"]:
        slope = (b["held_gb"] - a["held_gb"]) * 2**30 / (b["points"] - a["points"])
        out.update(bytes_per_point=round(slope), fixed_mb=round((a["held_gb"] * 2**30 - slope * a["points"]) / 2**20))
    return out


def _room_weak(scene: Any, masks: bool) -> dict[str, Any]:
    """Each room labeller's weak labels on ``scene``: 200 labelled points, tight boxes, and (with
    ``masks``) perfect 2D masks of its frames plus the same points."""
    from .. import weak
    points = replace(weak.points(scene, count=SEED_POINTS, seed=0), point_instance=None)
    boxes = weak.boxes(scene, seed=0)
    cases: dict[str, Any] = {"propagate": points, "nearest": points, "gp-boxes": boxes, "smallest-box": boxes}
    if masks:
        cases["lift-masks"] = replace(weak.masks2d(scene, seed=0), point_index=points.point_index,
                                      point_semantic=points.point_semantic)
    return cases


def _lidar_weak(frame: Any) -> dict[str, Any]:
    """Each LiDAR labeller's weak labels on ``frame``: one click per object, cluster labels,
    image boxes, and 200 labelled points for propagation (its graph on scan lines)."""
    from .. import weak
    return {"click-boxes": weak.clicks(frame, seed=0), "cluster-boxes": weak.clusters(frame),
            "boxes2d-frustum": weak.boxes2d(frame),
            "propagate": replace(weak.points(frame, count=SEED_POINTS, seed=0), point_instance=None)}


def _room_cases(density: float, frames: int, seed: int) -> tuple[Any, dict[str, Any]]:
    """The bare room and each room labeller's weak labels."""
    from ..data.synthetic_indoor import synthetic_room
    room = synthetic_room(seed, density=density, n_frames=frames)
    room = replace(room, segment=None, name=f"synthetic_room_{seed}_density_{density:g}")
    return room, _room_weak(room, masks=frames > 0)


def _lidar_geometry(seed: int, boxed: int) -> dict[str, Any]:
    """The object sizes learned from ``boxed`` fully boxed frames (not the measured one)."""
    from .. import weak
    from ..data.address import load_scene
    from ..pseudo.object_boxes import learn_box_geometry
    others = [load_scene(f"synthetic-lidar:{seed + 1 + i}") for i in range(boxed)]
    return learn_box_geometry((s, weak.boxes(s, axis_aligned=False)) for s in others).to_dict()


def _lidar_cases(seed: int, azimuth_steps: int) -> tuple[Any, dict[str, Any]]:
    """A LiDAR frame of ``azimuth_steps`` columns and its weak labels per labeller."""
    from ..data.synthetic_lidar import synthetic_lidar
    frame = synthetic_lidar(seed, azimuth_steps=azimuth_steps)
    frame = replace(frame, name=f"synthetic_lidar_{seed}_azimuth_{azimuth_steps}")
    return frame, _lidar_weak(frame)


def _real_room(shared: Path) -> list[tuple[Any, dict[str, Any]]]:
    """ScanNet's scene0000_00 under ``shared``, bare (its segments dropped), with its posed
    frames, and its weak labels; none where it is absent."""
    import warnings
    from ..data.address import load_scene
    scan = shared / "scannet" / "scans" / "scene0000_00"
    if not scan.is_dir():
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = load_scene(f"scannet:{scan}", frame_step=1)
    s = replace(s, segment=None, name="scene0000_00_bare")
    return [(s, _room_weak(s, masks=bool(s.frames)))]


def _real_lidar(shared: Path) -> list[tuple[Any, dict[str, Any]]]:
    """KITTI's first training frame under ``shared`` and its weak labels; none where absent."""
    from ..data.address import load_scene
    frames = sorted((shared / "kitti" / "training" / "velodyne").glob("*.bin"))
    if not frames:
        return []
    s = load_scene(f"kitti:{shared / 'kitti' / 'training' / frames[0].stem}")
    return [(s, _lidar_weak(s))]


@ranges_checked("bench memory")
def run(densities: list[float] | float = (1500.0, 12200.0), frames: int = 12, methods: list[str] | str | None = None,
        seed: Seed = 7, azimuth_steps: list[int] | int = (900, 3600), lidar_seed: Seed = 0, boxed: Count = 4,
        repeats: Count = 1, shared: str | None = None) -> dict[str, Any]:
    """Per labeller and scene size: points, seconds, resident memory before and at the peak and
    held between (GB), bytes per point, the budgeted memory (``Labeller.memory_bytes``) and
    whether it covers the measurement; per labeller with two sizes, the line through them
    (``fit``: fixed MB and bytes per point; ``<method> (scan lines)`` the line through its
    LiDAR frames, budgeted apart). ``methods``: a subset of ``ROOM_METHODS +
    LIDAR_METHODS`` (all by default); ``densities``: the rooms' surface samples per m^2 (1,500:
    about 130k points, 12,200: about 1.07M); ``azimuth_steps``: the LiDAR frames' columns (1,800
    is KITTI's, about 10^5 points); ``repeats``: runs per labeller and scene (a row keeps the
    largest and the least memory held); ``shared``: the folder of the real samples (default
    ../shared/data, "" for none), whose scans are measured too but left out of the line."""
    real = shared_root(shared)
    known = ROOM_METHODS + LIDAR_METHODS
    wanted = list(known) if methods is None else ([methods] if isinstance(methods, str) else list(methods))
    for m in wanted:
        if m not in known:
            raise ValueError(f"bench memory: methods: {m!r} is not one of {', '.join(known)}")
    sizes = [float(d) for d in (densities if isinstance(densities, (list, tuple)) else [densities])]
    columns = [int(a) for a in (azimuth_steps if isinstance(azimuth_steps, (list, tuple)) else [azimuth_steps])]
    if not sizes or min(sizes) <= 0:
        raise ValueError(f"bench memory: densities: {densities!r} is not a list of surface samples per m^2 > 0")
    if not columns or min(columns) < 1:
        raise ValueError(f"bench memory: azimuth_steps: {azimuth_steps!r} is not a list of integers >= 1")
    if repeats < 1:
        raise ValueError(f"bench memory: repeats: {repeats} is not an integer >= 1")
    if "lift-masks" in wanted and frames < 1:
        raise ValueError("bench memory: frames: lift-masks needs at least one rendered frame")
    from ..pseudo.registry import get_labeller
    from ..segment.descriptors import along_scan_lines
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pcweak-bench-memory-") as tmp:
        def measure(scene: Any, cases: dict[str, Any], params: dict[str, Any]) -> None:
            scene_path = scene.save(Path(tmp) / "scene.npz")
            scan_lines = along_scan_lines(scene.coord)  # once per scene, for every labeller's budget
            for method, w in cases.items():
                if method not in wanted:
                    continue
                weak_path = w.save(Path(tmp) / f"{method}.weak.npz")
                given = params if get_labeller(method).learns_geometry else {}
                row = _row(scene, scan_lines, method, [_in_fresh_process(scene_path, weak_path, method, given) for _ in range(repeats)])
                rows.append(row)
                print(f"{method} on {scene.name} ({scene.num_points} points): {row['seconds']} s, held "
                      f"{row['held_gb']} GB, {row['bytes_per_point']} bytes per point (budgeted {row['budgeted_gb']} GB)",
                      file=sys.stderr, flush=True)

        if any(m in ROOM_METHODS for m in wanted):
            for density in sizes:
                measure(*_room_cases(density, frames if "lift-masks" in wanted else 0, seed), {})
            for scene, cases in _real_room(real) if real else []:
                measure(scene, cases, {})
        if any(m in LIDAR_METHODS + SCAN_LINE_METHODS for m in wanted):
            params = {"geometry": _lidar_geometry(lidar_seed, boxed)} if any(m in LIDAR_METHODS for m in wanted) else {}
            for steps in columns:
                measure(*_lidar_cases(lidar_seed, steps), params)
            for scene, cases in _real_lidar(real) if real else []:
                measure(scene, cases, params)
    lines: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["scene"].startswith("synthetic"):
            apart = r["scan_lines"] and get_labeller(r["method"]).scan_line_bytes_per_point is not None
            lines.setdefault(f"{r['method']} (scan lines)" if apart else r["method"], []).append(r)
    fit = {key: _fit(group) for key, group in lines.items()}
    return {"bench": "memory", "machine": machine(), "densities": sizes, "frames": frames, "azimuth_steps": columns,
            "rows": rows, "fit": fit, "all_covered": all(r["covered"] for r in rows),
            "seconds": round(time.perf_counter() - t0, 1)}

"""``pcweak bench superpoints``: how well each partition follows objects, and what it costs.

Per scene and partition (FH as ``scene_superpoints`` computes it for a scene without its own
segments; every level of the l0 hierarchy): the majority-class oracle mIoU (every superpoint
given its most frequent GT class, ``oracles.seeded_class_oracle`` with every class seeded), the
superpoint count, the mean points per superpoint, and the seconds it took (normals and shape
features included; l0's finest row holds the time of all its levels, made in one run).
Scenes: the real ScanNet samples as bare points (scene0000_00 also with ScanNet's own mesh
segments, on which its labels were drawn, so 1.0 there is circular), the real KITTI frames
(classes from the GT boxes), the real SemanticKITTI scan, and synthetic rooms. Last, the time
per million points on a large synthetic room. ``targets`` checks the real-scans issue's bar:
oracle >= 0.88 on each ScanNet sample with >= 20 points per superpoint, in < 10 s per 100k
points.
"""
from __future__ import annotations

import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import machine, shared_lidar_scenes, shared_root
from ..params import Count0, ranges_checked


def _scenes(shared: Path | None, n_synthetic: int) -> list[tuple[str, Any, np.ndarray | None]]:
    """(group, scene, own segments or None)."""
    from ..data.address import load_scene
    from ..data.scannet import read_scannet_export
    from ..data.synthetic_indoor import synthetic_room
    out: list[tuple[str, Any, np.ndarray | None]] = []
    exp = shared / "scannet" / "scannet_train_instance_data" if shared else None
    if exp and exp.is_dir():
        for name in ("scene0000_00", "scene0000_01", "scene0000_02"):
            s = read_scannet_export(exp, name)
            own = None
            raw = shared / "scannet" / "scans" / name
            if raw.is_dir():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    own = load_scene(f"scannet:{raw}", frames=False, axis_alignment=shared / "scannet" / "infos" / f"{name}.json").segment
            out.append(("scannet", s, own))
    out += [(kind, s, None) for kind, scenes in shared_lidar_scenes(shared).items() for s in scenes]
    for seed in range(n_synthetic):
        out.append(("synthetic", synthetic_room(100 + seed, n_frames=0), None))
    return out


def _row(scene, seg: np.ndarray, seconds: float | None) -> dict[str, Any]:
    from ..metrics import semantic_report
    from .oracles import seeded_class_oracle
    lab = seeded_class_oracle(scene, seg, np.arange(len(scene.classes)))
    n_sp = int(len(np.unique(seg)))
    row = {"oracle_miou": round(semantic_report(scene.semantic, lab, scene.classes)["miou"], 4), "superpoints": n_sp,
           "points_per_superpoint": round(scene.num_points / max(n_sp, 1), 1)}
    if seconds is not None:
        row["seconds"] = round(seconds, 2)
        row["seconds_per_100k_points"] = round(seconds / scene.num_points * 1e5, 2)
    return row


@ranges_checked("bench superpoints")
def run(n_synthetic: Count0 = 3, shared: str | None = None, million: bool = True) -> dict[str, Any]:
    """``million``: also time the l0 partition on a synthetic room of about a million points."""
    from ..segment.l0_partition import L0Config
    from ..segment.superpoints import partition_color, scene_superpoints, superpoint_hierarchy
    root = shared_root(shared)
    res: dict[str, Any] = {"bench": "superpoints", "machine": machine(), "l0_config": L0Config().__dict__, "scenes": {}}
    from ..ops.extension import compiled
    compiled()  # built before any timing
    for group, scene, own in _scenes(root, n_synthetic):
        bare = replace(scene, segment=None, normal=None)
        t = time.perf_counter()
        fh = scene_superpoints(bare, method="fh")
        r: dict[str, Any] = {"group": group, "points": scene.num_points, "fh": _row(scene, fh, time.perf_counter() - t)}
        t = time.perf_counter()
        levels = superpoint_hierarchy(bare.coord, partition_color(bare))
        dt = time.perf_counter() - t
        r["l0"] = [_row(scene, lv, dt if i == 0 else None) for i, lv in enumerate(levels)]
        if own is not None:
            r["own_segments"] = _row(scene, own, None)
        res["scenes"][scene.name] = r
        print(f"{scene.name}: fh {r['fh']['oracle_miou']} ({r['fh']['points_per_superpoint']} pts/sp), "
              f"l0 {[(x['oracle_miou'], x['points_per_superpoint']) for x in r['l0']]}", flush=True, file=sys.stderr)
    if million:
        from ..data.synthetic_indoor import synthetic_room
        big = synthetic_room(7, density=12200.0, n_frames=0)
        t = time.perf_counter()
        lv = superpoint_hierarchy(big.coord, big.color)
        dt = time.perf_counter() - t
        res["million"] = {"points": big.num_points, "seconds": round(dt, 2), "seconds_per_million": round(dt / big.num_points * 1e6, 2),
                          "superpoints_per_level": [int(x.max()) + 1 for x in lv]}
    sc = [r for r in res["scenes"].values() if r["group"] == "scannet"]
    if sc:
        fine = [r["l0"][0] for r in sc]
        res["targets"] = {"oracle_each_scannet_ge_0.88": all(f["oracle_miou"] >= 0.88 for f in fine),
                          "points_per_superpoint_ge_20": all(f["points_per_superpoint"] >= 20 for f in fine),
                          "seconds_per_100k_lt_10": all(f["seconds_per_100k_points"] < 10 for f in fine),
                          "scannet_oracle": [f["oracle_miou"] for f in fine],
                          "scannet_fh_oracle": [r["fh"]["oracle_miou"] for r in sc]}
    return res

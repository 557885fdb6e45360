"""Benchmarks: ``pcweak bench NAME --json`` prints one JSON object with measured figures."""
from __future__ import annotations

import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    import torch
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "python": platform.python_version()}


def best_of(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Minimum wall time of ``repeat`` runs (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    d: dict[str, float] = {}
    t = time.perf_counter()
    yield d
    d["s"] = time.perf_counter() - t


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
SHARED_SAMPLES = ("scannet", "kitti", "semantickitti")  # the folders the benches read


def shared_root(shared: str | None) -> Path | None:
    """The folder of the real samples a benchmark reads: ``None`` means ../shared/data beside
    the project where it exists, ``""`` leaves the real samples out (``None`` returned), any
    other value must be an existing folder holding at least one of ``SHARED_SAMPLES``
    (FileNotFoundError naming it otherwise, before any work), so that a mistyped path, or the
    folder above the samples, never silently drops the real scans from a figure."""
    if shared is None:
        return SHARED if SHARED.is_dir() else None
    if shared == "":
        return None
    if not Path(shared).is_dir():
        raise FileNotFoundError(f"shared={shared}: no such folder (the real samples, as ../shared/data; "
                                f"shared= leaves them out)")
    if not any((Path(shared) / d).is_dir() for d in SHARED_SAMPLES):
        raise FileNotFoundError(f"shared={shared}: holds none of the real samples' folders ({', '.join(SHARED_SAMPLES)}); "
                                f"give the folder that holds them, as ../shared/data")
    return Path(shared)


def shared_lidar_scenes(shared: Path | None) -> dict[str, list]:
    """The real LiDAR scenes with ground truth under ``shared`` (../shared/data), read with
    their addresses' readers and sorted by name: ``kitti`` (the KITTI training frames, classes
    from their boxes) and ``semantickitti`` (the SemanticKITTI scans with a label file); an
    empty list where there are none."""
    from ..data.address import load_scene
    from ..data.collection import enumerate_scenes
    from ..errors import AddressError
    out: dict[str, list] = {"kitti": [], "semantickitti": []}
    if shared is None:
        return out
    for kind, folder in (("kitti", shared / "kitti" / "training"), ("semantickitti", shared / "semantickitti" / "sequences")):
        try:
            scenes = [load_scene(address) for _, address in enumerate_scenes(f"{kind}:{folder}")] if folder.is_dir() else []
        except AddressError:  # the folder holds no scans
            scenes = []
        out[kind] = [s for s in scenes if s.semantic is not None]
    return out


BENCHES = {"ops": "pcweak.bench.ops", "propagate": "pcweak.bench.propagate", "gp": "pcweak.bench.gp", "train": "pcweak.bench.train", "lift": "pcweak.bench.lift",
           "train-weak": "pcweak.bench.train_weak", "spconv": "pcweak.bench.spconv_rows",
           "superpoints": "pcweak.bench.superpoints", "pseudo-boxes": "pcweak.bench.pseudo_boxes",
           "detect": "pcweak.bench.detect", "memory": "pcweak.bench.memory", "voxel": "pcweak.bench.voxel",
           "proposals": "pcweak.bench.proposals"}

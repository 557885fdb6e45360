"""Benchmarks: ``pcweak bench NAME --json`` prints one JSON object with measured figures."""
from __future__ import annotations

import os
import platform
import time
from contextlib import contextmanager
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


BENCHES = {"ops": "pcweak.bench.ops", "propagate": "pcweak.bench.propagate", "gp": "pcweak.bench.gp", "train": "pcweak.bench.train", "lift": "pcweak.bench.lift",
           "train-weak": "pcweak.bench.train_weak", "spconv": "pcweak.bench.spconv_rows",
           "superpoints": "pcweak.bench.superpoints", "pseudo-boxes": "pcweak.bench.pseudo_boxes",
           "detect": "pcweak.bench.detect"}

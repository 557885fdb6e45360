"""``pcweak bench spconv``: the demo config's training step on this CPU with each implementation
of spconv's CPU gather / scatter-add (the per-kernel-offset row moves around each matmul):
pcweak's compiled kernels (the default), numpy (the fallback where the ops are not built) and
spconv's own kernels (which race on more than one thread; see ``models/spconv_compat.py``).

Every implementation trains its own copy of the same initial model on the same voxelised rooms
(configs/demo.yaml's backbone, learning rate and voxel size; full labels), epochs interleaved so
that machine noise falls on all alike. Per implementation: seconds per epoch (median), seconds
per step, points and voxels per second, the time inside gather / scatter-add, and how many of
``repeat_checks`` identical forward + backward passes gave features or gradients that differ
from the first (0 for a race-free implementation). ``max_abs_diff_vs_numpy`` compares the first
step's logits and gradients with numpy's."""
from __future__ import annotations

import copy
import sys
import time
from typing import Any

import numpy as np

from . import machine
from ..params import Count, Seed, ranges_checked


def _demo_model_args() -> dict[str, Any]:
    from ..demo import demo_config
    cfg = demo_config()
    return {"backbone": cfg["model"]["init_args"]["backbone"], "lr": cfg["model"]["init_args"]["lr"],
            "voxel_size": cfg["data"]["init_args"]["voxel_size"], "batch_size": cfg["data"]["init_args"]["batch_size"]}


def _rooms(rooms: int, voxel_size: float, batch_size: int, cache: str) -> list[dict[str, Any]]:
    """One augmented, voxelised view of each of the demo's first ``rooms`` training rooms, in
    the demo's batches."""
    import tempfile
    from ..train.datamodule import PointDataModule
    dm = PointDataModule(dataset="synthetic", synthetic_train=rooms, synthetic_val=0, supervision="full",
                         voxel_size=voxel_size, batch_size=batch_size, cache_dir=cache or tempfile.mkdtemp(prefix="pcweak-bench-spconv-"))
    dm.prepare_data()
    dm.setup("fit")
    return list(dm.train_dataloader())


class _RowTimer:
    """Wraps spconv's current gather / scatter-add to add up the seconds spent in them."""

    def __init__(self) -> None:
        self.seconds = {"gather": 0.0, "scatter_add": 0.0}

    def __enter__(self) -> "_RowTimer":
        from spconv.pytorch import ops
        self._ops, self._saved = ops, ops.SpconvOps
        saved, secs = self._saved, self.seconds

        class Timed:
            def __getattr__(self, name):
                return getattr(saved, name)

            @staticmethod
            def gather_cpu(*a) -> None:
                t = time.perf_counter()
                saved.gather_cpu(*a)
                secs["gather"] += time.perf_counter() - t

            @staticmethod
            def scatter_add_cpu(*a) -> None:
                t = time.perf_counter()
                saved.scatter_add_cpu(*a)
                secs["scatter_add"] += time.perf_counter() - t
        ops.SpconvOps = Timed()
        return self

    def __exit__(self, *exc) -> None:
        self._ops.SpconvOps = self._saved


def _backward(model, batch):
    """Zeroes the gradients, runs forward and the loss's backward; returns the logits."""
    import torch
    model.zero_grad(set_to_none=True)
    logits = model(batch)
    torch.nn.functional.cross_entropy(logits, batch["seed_label"], ignore_index=-1).backward()
    return logits


def _forward_backward(model, batch) -> tuple[Any, list[Any]]:
    """Copies of one step's logits and gradients."""
    logits = _backward(model, batch)
    return logits.detach().clone(), [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


@ranges_checked("bench spconv")
def run(kernels: str = "pcweak,numpy,spconv", rooms: Count = 8, epochs: Count = 3, repeat_checks: Count = 20,
        seed: Seed = 0, cache: str = "") -> dict[str, Any]:
    import torch
    from ..models.spconv_compat import ROW_KERNELS, use_row_kernels
    from ..tasks.semantic import SemanticSegmentation
    chosen = [k.strip() for k in kernels.split(",") if k.strip()]
    if not chosen or any(k not in ROW_KERNELS for k in chosen):
        raise ValueError(f"kernels: a comma-separated subset of {list(ROW_KERNELS)}, got {kernels!r}")
    if rooms < 1 or epochs < 1 or repeat_checks < 0:
        raise ValueError("rooms and epochs must be >= 1, repeat_checks >= 0")
    if "pcweak" in chosen:
        with use_row_kernels("pcweak"):  # refuses now, before the rooms are made, when the ops are not built
            pass
    args = _demo_model_args()
    print(f"[bench] voxelising {rooms} demo rooms at {args['voxel_size']} m ...", file=sys.stderr, flush=True)
    batches = _rooms(rooms, args["voxel_size"], args["batch_size"], cache)
    points = sum(len(b["point_label"]) for b in batches)
    voxels = sum(len(b["grid_coord"]) for b in batches)
    torch.manual_seed(seed)
    base = SemanticSegmentation(backbone=args["backbone"], lr=args["lr"])
    runs = {}
    for k in chosen:
        model = copy.deepcopy(base).train()
        runs[k] = {"model": model, "opt": torch.optim.AdamW(model.parameters(), lr=args["lr"]), "epochs": [],
                   "rows": {"gather": 0.0, "scatter_add": 0.0}}
    # agreement on the first step from identical weights, and repeatability (the race check)
    first = {}
    for k in chosen:
        with use_row_kernels(k):
            ref = _forward_backward(copy.deepcopy(base).train(), batches[0])
            first[k] = ref
            differ = 0
            probe = copy.deepcopy(base).train()
            for _ in range(repeat_checks):
                out = _forward_backward(probe, batches[0])
                differ += int(not (torch.equal(out[0], ref[0]) and all(torch.equal(a, b) for a, b in zip(out[1], ref[1]))))
        runs[k]["repeat_checks_differing"] = differ
    for e in range(epochs):
        for k in chosen:
            r = runs[k]
            with use_row_kernels(k), _RowTimer() as rt:
                t = time.perf_counter()
                for b in batches:
                    _backward(r["model"], b)
                    r["opt"].step()
                r["epochs"].append(time.perf_counter() - t)
            for name, s in rt.seconds.items():
                r["rows"][name] += s
        print(f"[bench] epoch {e + 1}/{epochs}: " + ", ".join(f"{k} {runs[k]['epochs'][-1]:.1f} s" for k in chosen),
              file=sys.stderr, flush=True)
    rows = {}
    for k in chosen:
        r = runs[k]
        epoch_s = float(np.median(r["epochs"]))
        diff = None
        if "numpy" in first:
            diff = max([float((first[k][0] - first["numpy"][0]).abs().max())]
                       + [float((a - b).abs().max()) for a, b in zip(first[k][1], first["numpy"][1])])
        rows[k] = {"seconds_per_epoch": round(epoch_s, 3), "seconds_per_step": round(epoch_s / len(batches), 4),
                   "points_per_second": round(points / epoch_s), "voxels_per_second": round(voxels / epoch_s),
                   "gather_seconds_per_epoch": round(r["rows"]["gather"] / epochs, 3),
                   "scatter_add_seconds_per_epoch": round(r["rows"]["scatter_add"] / epochs, 3),
                   "repeat_checks_differing": r["repeat_checks_differing"], "max_abs_diff_vs_numpy": diff}
    ratios = {}
    for k in chosen:
        for other in chosen:
            if other != k:
                ratios[f"{other}_over_{k}"] = round(rows[other]["seconds_per_epoch"] / rows[k]["seconds_per_epoch"], 3)
    return {"bench": "spconv", "machine": machine(), "config": "configs/demo.yaml", "backbone": args["backbone"],
            "voxel_size": args["voxel_size"], "rooms": rooms, "points_per_epoch": points, "voxels_per_epoch": voxels,
            "epochs": epochs, "repeat_checks": repeat_checks, "kernels": rows, "time_ratios": ratios}

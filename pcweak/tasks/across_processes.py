"""Evaluation state joined across the processes of a distributed run (DDP: one process per
device, each evaluating its own share of the scenes), so that a score is the benchmark's score
of every scene, the same on every process, rather than a mean of per-process scores.

A per-process mean is not the metric: ScanNet's mIoU is computed from the confusion of all
scenes together and AP from all detections ranked together, and processes that see different
classes would log different metric names, which makes Lightning's cross-process reduction wait
forever. Each function is a no-op in a single process. Every process must call it at the same
point (they are collectives).
"""
from __future__ import annotations

from typing import Any

import torch


def process_count() -> int:
    """The number of processes of the distributed run this process is part of (1 without one)."""
    import torch.distributed as dist
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def summed(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``tensor`` summed over the processes (a confusion matrix, counts), on its own device.
    ``device`` is the process's compute device: NCCL reduces on the GPU only."""
    if process_count() == 1:
        return tensor
    import torch.distributed as dist
    t = tensor.to(device).clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.to(tensor.device)


def joined(items: list[Any]) -> list[Any]:
    """Every process's ``items`` (picklable: per-scene predictions and ground truth), one list in
    process order, on every process."""
    if process_count() == 1:
        return items
    import torch.distributed as dist
    parts: list[Any] = [None] * process_count()
    dist.all_gather_object(parts, items)
    return [x for part in parts for x in part]


def from_first(value: Any) -> Any:
    """The first process's ``value`` (picklable), on every process: a result only it computed
    (from files only it wrote)."""
    if process_count() == 1:
        return value
    import torch.distributed as dist
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]

"""The optimiser both tasks train with: AdamW under a one-cycle learning-rate schedule stepped
per batch (SparseUNet's and CenterPoint's usual recipe). Short runs (a few hundred steps) need the
warm-up and the per-step decay; the schedule is recomputed from the run's step count, so a resumed
run with more epochs stretches it instead of running past its end."""
from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch


def one_cycle(step: int, total: int, warmup: float = 0.1, start: float = 0.04, end: float = 1e-4) -> float:
    """Learning-rate factor at ``step`` of ``total``: linear from ``start`` to 1 over the first
    ``warmup`` fraction, then cosine down to ``end``; ``end`` past the last step."""
    w = max(int(round(warmup * total)), 1)
    if step < w:
        return start + (1.0 - start) * step / w
    t = min((step - w) / max(total - w, 1), 1.0)
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * t))


def adamw_one_cycle(module: L.LightningModule, lr: float, weight_decay: float) -> dict[str, Any]:
    """``configure_optimizers``' answer: AdamW at peak ``lr`` under ``one_cycle`` over the run's
    optimiser steps (``trainer.estimated_stepping_batches``)."""
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    trainer = module._trainer  # (the property raises when the module is not attached)
    steps = max(int(trainer.estimated_stepping_batches), 1) if trainer is not None else 1
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: one_cycle(step, steps))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

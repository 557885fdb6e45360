"""An exponential moving average of the weights, validated, checkpointed and kept at the end.

Short CPU runs end with a few hundred steps of one-room batches, and each step moves the
weights and the batch norms' running statistics towards its room: the last validations of one
run swing by 0.03-0.07 mIoU (docs/results.md, ``bench train-weak``). The average over the last
~1/(1-decay) steps does not follow the last rooms. Lightning's ``WeightAveraging`` swaps the
average in for validation, saves it as the checkpoint's ``state_dict`` (the trained weights go
to ``current_model_state``, so a resumed run continues both) and copies it into the model when
training ends; this subclass chooses the average.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torch
from lightning.pytorch.callbacks import WeightAveraging


def ema_update_(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor,
                decay: float = 0.99, warmup: float = 10.0) -> None:
    """One update, in place, of a group of averaged tensors of one device and dtype (the
    ``multi_avg_fn`` of ``torch.optim.swa_utils.AveragedModel``, which calls it per group) after
    ``num_averaged`` updates: ``d * averaged + (1 - d) * current`` with ``d = min(decay, (1 + n)
    / (warmup + n))``, so the first updates follow the weights closely and a short run is not
    weighted towards its initial weights (with a fixed 0.99, 240 steps still keep 9 % of the
    random initialisation). Integer tensors (batch-norm step counters) take the current value.
    One scalar read and one fused lerp per group, not per tensor."""
    if not current[0].is_floating_point():
        torch._foreach_copy_(averaged, current)
        return
    if current[0].dtype != averaged[0].dtype:  # the average was copied before the trainer cast the model (64-true)
        current = [c.to(averaged[0].dtype) for c in current]
    n = float(num_averaged)
    d = min(decay, (1.0 + n) / (warmup + n))
    torch._foreach_lerp_(averaged, current, 1.0 - d)


class WeightEMA(WeightAveraging):
    """``WeightAveraging`` with ``ema_update_`` after every optimiser step (parameters and
    buffers, so the batch-norm statistics are averaged with the weights that made them).

    Args:
        decay: the average's decay per step; 0.99 averages over roughly the last 100 steps.
        warmup: steps over which the decay rises to ``decay`` (``ema_update_``).
    """

    def __init__(self, decay: float = 0.99, warmup: float = 10.0, **kwargs: Any) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"WeightEMA decay: a number in (0, 1), got {decay!r}")
        if not warmup >= 1.0:
            raise ValueError(f"WeightEMA warmup: a number of steps >= 1, got {warmup!r}")
        super().__init__(multi_avg_fn=partial(ema_update_, decay=float(decay), warmup=float(warmup)), **kwargs)

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        """Outside ``fit`` (validate, test, predict) the checkpoint's ``state_dict`` already is
        the average, which is what those should run: nothing to restore, nothing to warn about."""
        if self._average_model is None:
            return
        super().on_load_checkpoint(trainer, pl_module, checkpoint)

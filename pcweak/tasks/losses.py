"""Weak-label losses as small objects a task composes from its config.

Each loss has a ``name`` (logged as ``train/loss_<name>``), a ``weight`` and ``__call__(out)``
returning a scalar tensor, or None when the batch holds nothing it can supervise (no seed in
it, no second view). ``out`` is a ``LossInputs``: the network's outputs for one batch and the
batch itself. Consistency-type losses (``ramps = True``) are scaled by ``rampup`` of the
training progress.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F


def js_divergence(logits_a: torch.Tensor, logits_b: torch.Tensor, detach_b: bool = False) -> torch.Tensor:
    """Mean Jensen-Shannon divergence between rows of two (P,C) logit tensors (natural log)."""
    pa, pb = logits_a.softmax(1), logits_b.softmax(1)
    if detach_b:
        pb = pb.detach()
    m = 0.5 * (pa + pb)
    lm = m.clamp_min(1e-8).log()
    kl_a = (pa * (pa.clamp_min(1e-8).log() - lm)).sum(1)
    kl_b = (pb * (pb.clamp_min(1e-8).log() - lm)).sum(1)
    return (0.5 * (kl_a + kl_b)).mean()


def rampup(epoch: float, epochs: float) -> float:
    """Sigmoid-shaped ramp exp(-5 (1 - t)^2) from 0 to 1 over ``epochs`` (1 afterwards)."""
    if epochs <= 0:
        return 1.0
    t = min(max(epoch / epochs, 0.0), 1.0)
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


@dataclass
class LossInputs:
    """What the losses of one training step see.

    ``logits`` (V,C) per voxel of the first view (or (N,C) per point, with ``batch``'s targets
    per point and ``inverse`` the identity); ``batch`` the collated batch (``seed_label``,
    ``pseudo_label``, ``pseudo_weight``, ``instance_label``, ``inverse`` ...); ``offset`` (V,3)
    predicted centre offsets (instance tasks); ``second_view`` a function returning the (P,C)
    logits of the same P sampled points in view one and view two (None without a second view;
    computed once, on first use)."""
    logits: torch.Tensor
    batch: dict[str, Any]
    offset: torch.Tensor | None = None
    second_view: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None
    _pair: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    def pair(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.second_view is None:
            return None
        if self._pair is None:
            self._pair = self.second_view()
        return self._pair


@dataclass
class SeedCE:
    """Cross-entropy on the labelled (seed) voxels (``seed_label`` >= 0); on points when the
    task predicts per point (its ``LossInputs`` then hold point logits and point targets)."""
    weight: float = 1.0
    name: str = "seed"
    ramps: bool = False

    def __call__(self, out: LossInputs) -> torch.Tensor | None:
        lab = out.batch["seed_label"]
        if not (lab >= 0).any():
            return None
        return F.cross_entropy(out.logits, lab, ignore_index=-1)


@dataclass
class PseudoCE:
    """Cross-entropy on pseudo-labelled voxels, each weighted by its pseudo-label's confidence
    (``pseudo_weight``) and normalised by the weights' sum."""
    weight: float = 1.0
    name: str = "pseudo"
    ramps: bool = False

    def __call__(self, out: LossInputs) -> torch.Tensor | None:
        lab = out.batch["pseudo_label"]
        ok = lab >= 0
        if not ok.any():
            return None
        w = out.batch["pseudo_weight"][ok]
        return (F.cross_entropy(out.logits[ok], lab[ok], reduction="none") * w).sum() / w.sum().clamp_min(1e-6)


@dataclass
class TwoViewConsistency:
    """Jensen-Shannon divergence between the two augmented views' predictions of the same
    points (matched through the original points)."""
    weight: float = 1.0
    name: str = "consistency"
    ramps: bool = True

    def __call__(self, out: LossInputs) -> torch.Tensor | None:
        pair = out.pair()
        return None if pair is None else js_divergence(*pair)


@dataclass
class RegionMask:
    """CPCM's masked consistency: the second view, whose colour is masked on a random 75 % of
    the cells of a quantile grid, learns from the unmasked first view (which gets no gradient)."""
    weight: float = 1.0
    name: str = "regionmask"
    ramps: bool = True

    def __call__(self, out: LossInputs) -> torch.Tensor | None:
        pair = out.pair()
        return None if pair is None else js_divergence(pair[1], pair[0], detach_b=True)


@dataclass
class OffsetLoss:
    """Centre offsets of voxels with an instance (``instance_label`` >= 0): L1 to the target
    offset plus the negative cosine of their directions (PointGroup). ``targets(batch)`` gives
    the (V,3) targets and the (V,) mask."""
    targets: Callable[[dict[str, Any]], tuple[torch.Tensor, torch.Tensor]]
    weight: float = 1.0
    name: str = "offset"
    ramps: bool = False

    def __call__(self, out: LossInputs) -> torch.Tensor | None:
        if out.offset is None:
            return None
        tgt, ok = self.targets(out.batch)
        if not ok.any():
            return None
        off = out.offset[ok]
        l1 = (off - tgt[ok]).abs().sum(1).mean()
        cos = -(F.normalize(off, dim=1) * F.normalize(tgt[ok], dim=1)).sum(1)
        has_dir = tgt[ok].norm(dim=1) > 1e-6
        return l1 + (cos[has_dir].mean() if has_dir.any() else off.new_zeros(()))


def weak_losses(loss_seed: float, loss_pseudo: float, loss_consistency: float, loss_regionmask: float) -> list[Any]:
    """The semantic losses whose weight is not 0, in a fixed order."""
    made = [SeedCE(loss_seed), PseudoCE(loss_pseudo), TwoViewConsistency(loss_consistency), RegionMask(loss_regionmask)]
    return [loss for loss in made if loss.weight]


def compose(losses: list[Any], out: LossInputs, ramp: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of ``losses`` on ``out`` (consistency-type ones times ``ramp``) and the
    unweighted value of each that applied, keyed ``train/loss_<name>``."""
    total = out.logits.new_zeros(())
    logs: dict[str, torch.Tensor] = {}
    for loss in losses:
        value = loss(out)
        if value is None:
            continue
        total = total + (ramp if loss.ramps else 1.0) * loss.weight * value
        logs[f"train/loss_{loss.name}"] = value
    return total, logs

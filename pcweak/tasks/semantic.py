"""Semantic segmentation from weak labels (LightningModule).

Losses, each switched on by a weight in the YAML config:
  ``loss_seed``        cross-entropy on labelled (seed) voxels
  ``loss_pseudo``      confidence-weighted cross-entropy on pseudo-labels (any labeller's npz)
  ``loss_consistency`` Jensen-Shannon divergence between two augmented views, matched through
                       the original points (each point's voxel in either view)
  ``loss_regionmask``  CPCM's masked consistency: the second view has the colour of a random
                       75 % of the cells of a quantile grid masked (``data.region_mask_grid``)
Consistency-type losses ramp up over ``rampup_epochs`` (exp(-5 (1 - t)^2)). Metrics are computed
on the original points through the voxel inverse map.
"""
from __future__ import annotations

import math
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from ..metrics import iou_from_confusion
from ..models.sparse_unet import SpUNet


def js_divergence(logits_a: torch.Tensor, logits_b: torch.Tensor, detach_b: bool = False) -> torch.Tensor:
    """Mean Jensen-Shannon divergence between rows of two logit tensors (natural log)."""
    pa, pb = logits_a.softmax(1), logits_b.softmax(1)
    if detach_b:
        pb = pb.detach()
    m = 0.5 * (pa + pb)
    lm = m.clamp_min(1e-8).log()
    kl_a = (pa * (pa.clamp_min(1e-8).log() - lm)).sum(1)
    kl_b = (pb * (pb.clamp_min(1e-8).log() - lm)).sum(1)
    return (0.5 * (kl_a + kl_b)).mean()


def rampup(epoch: float, epochs: float) -> float:
    """Sigmoid-shaped ramp from 0 to 1 over ``epochs`` (1 afterwards)."""
    if epochs <= 0:
        return 1.0
    t = min(max(epoch / epochs, 0.0), 1.0)
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


class SemanticSegmentation(L.LightningModule):
    """SpUNet + weak-label losses.

    Args:
        num_classes / class_names: label space (class_names only names the logged IoUs).
        in_channels: input features per voxel (3 rgb + 3 normal by default).
        backbone: SpUNet keyword arguments (``layers``, ``channels``, ``base_channels``).
        loss_*: weights of the losses above (0 switches a loss off).
        rampup_epochs: epochs over which consistency-type losses reach their weight.
        lr / weight_decay: AdamW; the learning rate follows a cosine schedule over the run.
    """

    def __init__(self, num_classes: int = 20, in_channels: int = 6, class_names: list[str] | None = None,
                 backbone: dict | None = None, loss_seed: float = 1.0, loss_pseudo: float = 0.0,
                 loss_consistency: float = 0.0, loss_regionmask: float = 0.0, rampup_epochs: float = 0.0,
                 lr: float = 0.002, weight_decay: float = 1e-4, consistency_points: int = 50_000) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = SpUNet(in_channels=in_channels, num_classes=num_classes, **(backbone or {}))
        self.register_buffer("_confusion", torch.zeros(num_classes, num_classes + 1, dtype=torch.long), persistent=False)

    def forward(self, batch: dict[str, Any], prefix: str = "") -> torch.Tensor:
        return self.model(batch[f"{prefix}feat"], batch[f"{prefix}grid_coord"], batch[f"{prefix}batch"], batch["batch_size"])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        h = self.hparams
        logits = batch["_logits"] if "_logits" in batch else self(batch)
        total = logits.new_zeros(())
        logs = {}
        if h.loss_seed and (batch["seed_label"] >= 0).any():
            l_seed = F.cross_entropy(logits, batch["seed_label"], ignore_index=-1)
            total = total + h.loss_seed * l_seed
            logs["train/loss_seed"] = l_seed
        if h.loss_pseudo:
            lab = batch["pseudo_label"]
            ok = lab >= 0
            if ok.any():
                w = batch["pseudo_weight"][ok]
                l_ps = (F.cross_entropy(logits[ok], lab[ok], reduction="none") * w).sum() / w.sum().clamp_min(1e-6)
                total = total + h.loss_pseudo * l_ps
                logs["train/loss_pseudo"] = l_ps
        if (h.loss_consistency or h.loss_regionmask) and "v2_feat" in batch:
            logits2 = self(batch, "v2_")
            n = len(batch["inverse"])
            take = torch.randperm(n, device=logits.device)[: h.consistency_points] if n > h.consistency_points else torch.arange(n, device=logits.device)
            a, b = logits[batch["inverse"][take]], logits2[batch["v2_inverse"][take]]
            r = rampup(self.current_epoch + batch_idx / max(self.trainer.num_training_batches, 1), h.rampup_epochs)
            if h.loss_consistency:
                l_c = js_divergence(a, b)
                total = total + r * h.loss_consistency * l_c
                logs["train/loss_consistency"] = l_c
            if h.loss_regionmask:  # the masked view learns from the unmasked one
                l_m = js_divergence(b, a, detach_b=True)
                total = total + r * h.loss_regionmask * l_m
                logs["train/loss_regionmask"] = l_m
        logs["train/loss"] = total
        self.log_dict(logs, batch_size=batch["batch_size"], prog_bar=False)
        self.log("loss", total, prog_bar=True, batch_size=batch["batch_size"], logger=False)
        return total

    # -- evaluation on the original points
    def _accumulate(self, batch: dict[str, Any]) -> None:
        logits = batch["_logits"] if "_logits" in batch else self(batch)
        pred = logits.argmax(1)[batch["inverse"]]
        gt = batch["point_label"]
        C = self.hparams.num_classes
        m = gt >= 0
        idx = gt[m] * (C + 1) + pred[m]
        self._confusion += torch.bincount(idx, minlength=C * (C + 1)).view(C, C + 1)

    def _report(self, stage: str) -> None:
        cm = self._confusion.cpu().numpy()
        iou = iou_from_confusion(cm)
        names = self.hparams.class_names or [str(i) for i in range(self.hparams.num_classes)]
        miou = float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0
        acc = float(np.trace(cm[:, :-1]) / max(cm.sum(), 1))
        self.log(f"{stage}/miou", miou, prog_bar=True, sync_dist=True)
        self.log(f"{stage}/acc", acc, sync_dist=True)
        for i, v in enumerate(iou):
            if np.isfinite(v):
                self.log(f"{stage}/iou_{names[i]}", float(v), sync_dist=True)
        self._confusion.zero_()

    def on_validation_epoch_start(self) -> None:
        self._confusion.zero_()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._accumulate(batch)

    def on_validation_epoch_end(self) -> None:
        self._report("val")

    def on_test_epoch_start(self) -> None:
        self._confusion.zero_()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._accumulate(batch)

    def on_test_epoch_end(self) -> None:
        self._report("test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """Per scene: point ``semantic`` (N,) and ``confidence`` (N,) (max softmax probability)."""
        prob = self(batch).softmax(1)[batch["inverse"]]
        conf, lab = prob.max(1)
        out, start = [], 0
        for name, end in zip(batch["names"], batch["offset"].tolist()):
            out.append({"name": name, "semantic": lab[start:end].cpu().numpy(), "confidence": conf[start:end].cpu().numpy()})
            start = end
        return out

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        epochs = max(int(self.trainer.max_epochs or 1), 1) if self.trainer is not None else 1
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=self.hparams.lr * 0.01)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

"""Semantic segmentation from weak labels (LightningModule).

The losses (``tasks.losses``), each switched on by a weight in the YAML config:
  ``loss_seed``        ``SeedCE``: cross-entropy on labelled (seed) voxels
  ``loss_pseudo``      ``PseudoCE``: confidence-weighted cross-entropy on pseudo-labels
  ``loss_consistency`` ``TwoViewConsistency``: Jensen-Shannon divergence between two augmented
                       views, matched through the original points
  ``loss_regionmask``  ``RegionMask``: CPCM's masked consistency (``data.region_mask_grid``)
Consistency-type losses ramp up over ``rampup_epochs``. Metrics are computed on the original
points through the voxel inverse map.

``point_head``: ``models.point_head.PointHead`` predicts per point, trained and scored on points
(one class per voxel caps point mIoU at ``bench train-weak``'s ``val_voxel_ceiling``).
"""
from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

from ..metrics import iou_from_confusion
from ..models.point_head import PointHead
from ..models.sparse_unet import SpUNet
from .across_processes import summed
from .arg_checks import SEGMENTATION_LOSSES, SEGMENTATION_RULES, check_args, check_some_loss
from .losses import LossInputs, compose, rampup, weak_losses
from .schedule import adamw_one_cycle


class SemanticSegmentation(L.LightningModule):
    """SpUNet + weak-label losses.

    Args:
        num_classes / class_names: label space (class_names only names the logged IoUs).
        in_channels: input features per voxel (3 rgb + 3 normal by default).
        backbone: SpUNet keyword arguments (``layers``, ``channels``, ``base_channels``).
        loss_*: weights of the losses above (0 switches a loss off).
        rampup_epochs: epochs over which consistency-type losses reach their weight.
        lr / weight_decay: AdamW; one-cycle learning rate over the run's steps (``configure_optimizers``).
        point_head: predict per point (above) instead of per voxel.
    """

    def __init__(self, num_classes: int = 20, in_channels: int = 6, class_names: list[str] | None = None,
                 backbone: dict | None = None, loss_seed: float = 1.0, loss_pseudo: float = 0.0,
                 loss_consistency: float = 0.0, loss_regionmask: float = 0.0, rampup_epochs: float = 0.0,
                 lr: float = 0.002, weight_decay: float = 1e-4, consistency_points: int = 50_000,
                 point_head: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.check_args(dict(self.hparams))
        # with the point head the network's own voxel classifier would be trained by nothing
        self.model = SpUNet(in_channels=in_channels, num_classes=0 if point_head else num_classes, **(backbone or {}))
        self.point_head = PointHead(self.model.out_channels, in_channels, num_classes) if point_head else None
        self.losses = weak_losses(loss_seed, loss_pseudo, loss_consistency, loss_regionmask)
        # (C, C+1) counts, GT row x predicted column (the last column: ignored); a plain tensor, not a
        # buffer, so that weight averaging (``train.weight_ema``) neither averages nor swaps it
        self._confusion = torch.zeros(num_classes, num_classes + 1, dtype=torch.long)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A point-head checkpoint saved while the network still carried an untrained voxel
        classifier (``model.head``) loads without it."""
        if self.model.head is None:  # the weights and, from a fit with weight averaging, the trained ones
            for state in (checkpoint.get("state_dict") or {}, checkpoint.get("current_model_state") or {}):
                for key in [k for k in state if k.startswith("model.head.")]:
                    del state[key]

    @classmethod
    def check_args(cls, values: dict[str, Any]) -> None:
        """ValueError naming the first setting out of range (``tasks.arg_checks``); called by the
        constructor and, before anything is built, by the training CLI."""
        check_args(values, SEGMENTATION_RULES)
        check_some_loss(values, SEGMENTATION_LOSSES)

    def forward(self, batch: dict[str, Any], prefix: str = "") -> torch.Tensor:
        return self.model(batch[f"{prefix}feat"], batch[f"{prefix}grid_coord"], batch[f"{prefix}batch"], batch["batch_size"])

    def point_logits(self, batch: dict[str, Any], prefix: str = "") -> torch.Tensor:
        """(N,C) logits of the batch's original points: the point head's, or each point's voxel's."""
        inverse = batch[f"{prefix}inverse"]
        if self.point_head is None:
            return self(batch, prefix)[inverse]
        x = self.model.features(batch[f"{prefix}feat"], batch[f"{prefix}grid_coord"], batch[f"{prefix}batch"], batch["batch_size"])
        return self.point_head(x, inverse, batch[f"{prefix}point_feat"])

    def loss_inputs(self, batch: dict[str, Any]) -> LossInputs:
        """The network's outputs for ``batch`` as the losses see them (per point with the point
        head: the batch's point targets stand in for the voxel ones)."""
        if self.point_head is None:
            return self._loss_inputs(batch, self(batch))
        logits = self.point_logits(batch)
        n = len(logits)
        points = {**batch, "seed_label": batch["point_seed"], "pseudo_label": batch["point_pseudo"],
                  "pseudo_weight": batch["point_pseudo_weight"], "instance_label": batch["point_instance_label"],
                  "inverse": torch.arange(n, device=logits.device)}
        second = None
        if "v2_feat" in batch and any(loss.ramps for loss in self.losses):
            def second():
                take = self._consistency_sample(n, logits.device)
                return logits[take], self.point_logits(batch, "v2_")[take]
        return LossInputs(logits, points, second_view=second)

    def _consistency_sample(self, n: int, device) -> torch.Tensor:
        """At most ``consistency_points`` of ``n`` points, drawn at random."""
        cap = self.hparams.consistency_points
        return torch.randperm(n, device=device)[:cap] if n > cap else torch.arange(n, device=device)

    def _loss_inputs(self, batch: dict[str, Any], logits: torch.Tensor, offset: torch.Tensor | None = None) -> LossInputs:
        """``LossInputs`` around the first view's (V,C) ``logits``; the second view (when the
        batch has one and a loss needs it) is run on first use, on at most
        ``consistency_points`` sampled points."""
        second = None
        if "v2_feat" in batch and any(loss.ramps for loss in self.losses):
            def second():
                logits2 = self(batch, "v2_")
                take = self._consistency_sample(len(batch["inverse"]), logits.device)
                return logits[batch["inverse"][take]], logits2[batch["v2_inverse"][take]]
        return LossInputs(logits, batch, offset=offset, second_view=second)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        out = self.loss_inputs(batch)
        ramp = rampup(self.current_epoch + batch_idx / max(self.trainer.num_training_batches, 1), self.hparams.rampup_epochs)
        total, logs = compose(self.losses, out, ramp)
        logs["train/loss"] = total
        self.log_dict(logs, batch_size=batch["batch_size"], prog_bar=False)
        self.log("loss", total, prog_bar=True, batch_size=batch["batch_size"], logger=False)
        return total

    # -- evaluation on the original points
    def _accumulate(self, batch: dict[str, Any]) -> None:
        self._accumulate_semantic(batch, self.point_logits(batch))

    def _accumulate_semantic(self, batch: dict[str, Any], logits: torch.Tensor) -> None:
        """Adds the argmax of the batch's (N,C) point ``logits`` to the confusion."""
        pred = logits.argmax(1)
        gt = batch["point_label"]
        C = self.hparams.num_classes
        m = gt >= 0
        idx = gt[m] * (C + 1) + pred[m]
        self._confusion += torch.bincount(idx, minlength=C * (C + 1)).view(C, C + 1).cpu()

    def _report(self, stage: str) -> None:
        cm = summed(self._confusion, self.device).numpy()  # every process's scenes: one score, on each
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
        """Per scene: ``name``, point ``semantic`` (N,) int64, ``confidence`` (N,) (max softmax
        probability) and ``prob`` (N,C) float32, the class probabilities."""
        return self._scene_predictions(batch, self.point_logits(batch).softmax(1))

    @staticmethod
    def _scene_predictions(batch: dict[str, Any], prob: torch.Tensor) -> list[dict[str, Any]]:
        """``predict_step``'s per-scene dicts from the batch's (N,C) point probabilities."""
        conf, lab = prob.max(1)
        out, start = [], 0
        for name, end in zip(batch["names"], batch["offset"].tolist()):
            out.append({"name": name, "semantic": lab[start:end].cpu().numpy(), "confidence": conf[start:end].cpu().numpy(),
                        "prob": prob[start:end].float().cpu().numpy()})
            start = end
        return out

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.hparams.lr, self.hparams.weight_decay)

"""Instance segmentation from weak labels: semantic + offset heads, clustering of shifted points.

Training targets come from the data module's per-voxel ``instance_label`` (GT instances, GP box
pseudo-labels or propagated clicks) and semantic labels. Each voxel regresses the offset to its
instance's centroid (in voxel units; L1 + direction loss). At inference the voxels predicted as
"thing" classes are shifted by their offsets and grouped: ``ops.ball_query`` links shifted voxels
of the same predicted class within ``cluster_radius`` voxels, connected components become
proposals (at least ``min_voxels``) with score = mean class probability. AP is computed on the
original points with the ScanNet protocol.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import ops
from ..metrics import from_labels, instance_ap, match_instances
from ..models.sparse_unet import SpUNet
from .across_processes import joined
from .arg_checks import (COUNT, COUNT0, NON_NEGATIVE, POSITIVE, SEGMENTATION_LOSSES, SEGMENTATION_RULES, check_args,
                         check_some_loss)
from .losses import LossInputs, OffsetLoss
from .semantic import SemanticSegmentation


def offset_targets(grid: torch.Tensor, batch: torch.Tensor, inst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(V,3) float32 instance centroid minus voxel (voxel units) and (V,) bool mask of the voxels
    with an instance, from (V,3) ``grid`` coordinates, (V,) ``batch`` ids and (V,) ``inst`` ids."""
    ok = inst >= 0
    tgt = torch.zeros(len(grid), 3, dtype=torch.float32, device=grid.device)
    if ok.any():
        key = batch[ok] * (int(inst.max()) + 1) + inst[ok]
        _, group = torch.unique(key, return_inverse=True)
        cen = ops.scatter(grid[ok].float(), group, int(group.max()) + 1, "mean")
        tgt[ok] = cen[group] - grid[ok].float()
    return tgt, ok


def offset_targets_of_batch(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``offset_targets`` of a collated batch (its ``grid_coord``, ``batch``, ``instance_label``)."""
    return offset_targets(batch["grid_coord"], batch["batch"], batch["instance_label"])


def cluster_shifted(shifted: torch.Tensor, sem: torch.Tensor, prob: torch.Tensor, batch: torch.Tensor, things: torch.Tensor,
                    radius: float, min_voxels: int, k: int = 16) -> tuple[torch.Tensor, dict[int, int], dict[int, float]]:
    """Group shifted voxels into proposals; returns (V,) instance ids (-1 = none), class and score per id."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    V = len(shifted)
    inst = torch.full((V,), -1, dtype=torch.long)
    cls: dict[int, int] = {}
    score: dict[int, float] = {}
    cand = torch.nonzero(things[sem] if len(sem) else torch.zeros(0, dtype=torch.bool)).squeeze(1)
    if len(cand) == 0:
        return inst, cls, score
    # one "scene" per (batch, class): neighbours never join different scenes or classes
    key = batch[cand] * (len(things) + 1) + sem[cand]
    order = torch.argsort(key, stable=True)
    cand, key = cand[order], key[order]
    _, counts = torch.unique_consecutive(key, return_counts=True)
    off = torch.cumsum(counts, 0)
    pts = shifted[cand].float().contiguous()
    nb = ops.ball_query(pts, pts, radius, k, off, off).idx
    rows = torch.arange(len(cand))[:, None].expand_as(nb)
    ok = nb >= 0
    g = coo_matrix((np.ones(int(ok.sum())), (rows[ok].numpy(), nb[ok].numpy())), shape=(len(cand), len(cand)))
    n, comp = connected_components(g, directed=False)
    comp = torch.from_numpy(comp)
    sizes = torch.bincount(comp, minlength=n)
    next_id = 0
    for c in torch.nonzero(sizes >= min_voxels).squeeze(1).tolist():
        members = cand[comp == c]
        inst[members] = next_id
        cl = int(sem[members[0]])
        cls[next_id] = cl
        score[next_id] = float(prob[members, cl].mean())
        next_id += 1
    return inst, cls, score


class InstanceSegmentation(SemanticSegmentation):
    """SpUNet with semantic and offset heads (PointGroup-style), trained from weak labels.

    Args (besides ``SemanticSegmentation``'s):
        stuff_classes: class ids that are not instances (ScanNet: wall 0, floor 1).
        loss_offset: weight of the offset losses; cluster_radius: grouping radius (voxels);
        min_voxels: smallest proposal; ap_min_points: ScanNet AP's minimum region size.
    """

    def __init__(self, num_classes: int = 20, in_channels: int = 6, class_names: list[str] | None = None,
                 backbone: dict | None = None, loss_seed: float = 1.0, loss_pseudo: float = 0.0, loss_consistency: float = 0.0,
                 loss_regionmask: float = 0.0, rampup_epochs: float = 0.0, lr: float = 0.002, weight_decay: float = 1e-4,
                 consistency_points: int = 50_000, stuff_classes: list[int] = [0, 1], loss_offset: float = 1.0,
                 cluster_radius: float = 1.5, min_voxels: int = 10, ap_min_points: int = 100) -> None:
        super().__init__(num_classes, in_channels, class_names, backbone, loss_seed, loss_pseudo, loss_consistency,
                         loss_regionmask, rampup_epochs, lr, weight_decay, consistency_points)
        self.save_hyperparameters()
        self.check_args(dict(self.hparams))
        self.model = SpUNet(in_channels=in_channels, num_classes=num_classes, extra_head=3, **(backbone or {}))
        things = torch.ones(num_classes, dtype=torch.bool)
        things[list(stuff_classes)] = False
        self.register_buffer("things", things, persistent=False)
        if loss_offset:
            self.losses.append(OffsetLoss(offset_targets_of_batch, loss_offset))
        self._scenes: list = []

    @classmethod
    def check_args(cls, values: dict[str, Any]) -> None:
        check_args(values, {**SEGMENTATION_RULES, "loss_offset": NON_NEGATIVE, "cluster_radius": POSITIVE,
                            "min_voxels": COUNT, "ap_min_points": COUNT0})
        check_some_loss(values, SEGMENTATION_LOSSES + ("loss_offset",))
        stuff, n = values.get("stuff_classes"), values.get("num_classes")
        if stuff is not None and isinstance(n, int) and not all(isinstance(c, int) and 0 <= c < n for c in stuff):
            raise ValueError(f"model.stuff_classes: expected class ids in [0, {n}), got {list(stuff)!r}")

    def forward(self, batch: dict[str, Any], prefix: str = "") -> torch.Tensor:
        return self.forward_both(batch, prefix)[0]

    def forward_both(self, batch: dict[str, Any], prefix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(batch[f"{prefix}feat"], batch[f"{prefix}grid_coord"], batch[f"{prefix}batch"], batch["batch_size"])

    def loss_inputs(self, batch: dict[str, Any]) -> LossInputs:
        logits, offset = self.forward_both(batch)
        return self._loss_inputs(batch, logits, offset)

    def _instances(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict, dict]:
        """(V,C) voxel logits, (V,) predicted class, (V,) proposal id (-1: none) and each
        proposal's class and score (``cluster_shifted``) of a batch."""
        logits, offset = self.forward_both(batch)
        prob = logits.softmax(1)
        sem = prob.argmax(1)
        shifted = batch["grid_coord"].float() + offset
        inst, cls, score = cluster_shifted(shifted.cpu(), sem.cpu(), prob.cpu(), batch["batch"].cpu(), self.things.cpu(),
                                           self.hparams.cluster_radius, self.hparams.min_voxels)
        return logits, sem, inst, cls, score

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """``SemanticSegmentation.predict_step``'s per-scene fields plus ``instance`` (N,) int64,
        each point's proposal (-1: none; ids per scene from 0, in the order of the proposals),
        and per proposal ``instance_class`` (K,) int64 and ``instance_score`` (K,) float32 (its
        voxels' mean probability of its class), as validation's AP scores them."""
        logits, _, inst, cls, score = self._instances(batch)
        point = logits[batch["inverse"]] if self.point_head is None else self.point_logits(batch)
        out = self._scene_predictions(batch, point.softmax(1))
        inv, start = batch["inverse"].cpu(), 0
        for scene, end in zip(out, batch["offset"].tolist()):
            p = inst[inv[start:end]].numpy().astype(np.int64)
            ids = np.unique(p[p >= 0])
            p[p >= 0] = np.searchsorted(ids, p[p >= 0])
            scene["instance"] = p
            scene["instance_class"] = np.array([cls[int(k)] for k in ids], np.int64)
            scene["instance_score"] = np.array([score[int(k)] for k in ids], np.float32)
            start = end
        return out

    def _accumulate(self, batch: dict[str, Any]) -> None:
        logits, sem, inst, cls, score = self._instances(batch)
        self._accumulate_semantic(batch, logits[batch["inverse"]])
        inv = batch["inverse"].cpu()
        start = 0
        for end in batch["offset"].tolist():
            p_inst = inst[inv[start:end]].numpy()
            p_sem = sem.cpu()[inv[start:end]].numpy()
            found = from_labels(batch["point_label"][start:end].cpu().numpy(), batch["point_instance"][start:end].cpu().numpy(),
                                p_sem, p_inst, None)
            for k in np.unique(p_inst[p_inst >= 0]):
                found.pred_class[int(k)] = cls[int(k)]
                found.pred_score[int(k)] = score[int(k)]
            names, stuff = self._ap_classes()  # matched now: the epoch keeps each scene's overlaps, not its points
            self._scenes.append(match_instances(found, names, ignore=stuff, min_region_size=self.hparams.ap_min_points))
            start = end

    def _ap_classes(self) -> tuple[list[str], list[str]]:
        """The class names AP is computed over, and the stuff classes it leaves out."""
        names = self.hparams.class_names or [str(i) for i in range(self.hparams.num_classes)]
        return names, [names[i] for i in self.hparams.stuff_classes]

    def _report(self, stage: str) -> None:
        super()._report(stage)
        names, stuff = self._ap_classes()
        scenes = joined(self._scenes)  # every process's scenes: one AP, on each
        if scenes:
            r = instance_ap(scenes, names, ignore=stuff, min_region_size=self.hparams.ap_min_points)
            for k in ("ap", "ap50", "ap25"):
                self.log(f"{stage}/{k}", float(np.nan_to_num(r[k])), sync_dist=True)
        self._scenes = []

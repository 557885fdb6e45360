"""3D detection from weak labels (KITTI classes): SECOND-style backbone + centre head.

Heatmap targets are Gaussians of fixed width (sigma 1 BEV cell for Pedestrian and Cyclist,
0.7 for Car, whatever the object's size) at the centres of every object's box; regression
(offset, z, log size, yaw) is learned at the same centres, from GT boxes or, in the weak
modes, pseudo boxes, each weighted by its confidence (``reg_weight``). Decoding: 3x3 max-pool peaks, top-K, then
rotated NMS in bird's-eye view. Self-training (``self_training_rounds`` R > 0, ST3D-style within
one run): after each of R equal parts of the run, the detector's detections on the training
frames replace the pseudo boxes whose weak labels they agree with (``pseudo.agreement``).
``test`` writes KITTI result files and prints their AP (2D / BEV /
3D, R11 / R40, by the devkit's rules: ``metrics.kitti``) as JSON.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from ..classes import KITTI_OBJECT_CLASSES
from ..geometry import KITTI_PC_RANGE, box_iou, voxel_grid_problem
from ..kitti_objects import KittiObjects, objects_from_lidar, write_objects
from ..metrics.kitti import evaluate_result_files, kitti_ap
from ..models.second import SecondCenter
from .across_processes import from_first, joined
from .arg_checks import CHANNELS, COUNT, COUNT0, IOU, NON_NEGATIVE, POSITIVE, POSITIVE_EACH, SCORE, check_args
from .schedule import adamw_one_cycle

CLASSES = KITTI_OBJECT_CLASSES


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on Gaussian heatmaps."""
    p = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = (torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = (torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * neg).sum()
    return -(pos_loss + neg_loss) / pos.sum().clamp_min(1)


def rotated_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS on bird's-eye-view rotated IoU."""
    order = np.argsort(-scores)
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        if len(order) == 1:
            break
        ov = box_iou(boxes[i:i + 1], boxes[order[1:]], "bev")[0]
        order = order[1:][ov <= iou]
    return np.array(keep, np.int64)


class Detection(L.LightningModule):
    def __init__(self, voxel_size: list[float] = [0.1, 0.1, 0.2], channels: list[int] = [16, 32, 64, 64], bev_channels: int = 128,
                 lr: float = 0.003, weight_decay: float = 1e-4, score_threshold: float = 0.1, nms_iou: float = 0.1,
                 max_detections: int = 50, loss_reg: float = 2.0, loss_giou2d: float = 1.0,
                 pc_range: list[float] = list(KITTI_PC_RANGE), self_training_rounds: int = 0,
                 self_training_min_score: float = 0.3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.check_args(dict(self.hparams))
        self.pc = np.asarray(pc_range, np.float64)
        self.vs = np.asarray(voxel_size, np.float64)
        grid = tuple(int(round(v)) for v in (self.pc[3:] - self.pc[:3]) / self.vs)
        self.model = SecondCenter(grid, 4, len(CLASSES), channels, bev_channels)
        self.stride = self.model.stride
        self.cell = self.vs[:2] * self.stride
        self._frames: list[tuple[str, KittiObjects, KittiObjects]] = []  # (frame, ground truth, detections)
        self.rounds_done: list[dict[str, int]] = []

    @classmethod
    def check_args(cls, values: dict[str, Any]) -> None:
        """ValueError naming the first setting out of range (``tasks.arg_checks``); called by the
        constructor and, before anything is built, by the training CLI."""
        check_args(values, {"voxel_size": POSITIVE_EACH, "channels": CHANNELS, "bev_channels": COUNT, "lr": POSITIVE,
                            "weight_decay": NON_NEGATIVE, "score_threshold": SCORE, "nms_iou": IOU, "max_detections": COUNT,
                            "loss_reg": NON_NEGATIVE, "loss_giou2d": NON_NEGATIVE, "self_training_rounds": COUNT0,
                            "self_training_min_score": SCORE})
        problem = "pc_range" in values and "voxel_size" in values and voxel_grid_problem(values["pc_range"], values["voxel_size"])
        if problem:
            raise ValueError(f"model.pc_range / model.voxel_size: expected {problem}")

    def forward(self, batch):
        return self.model(batch["feat"], batch["coord"], batch["batch"], batch["batch_size"])

    def _targets(self, batch, shape):
        B, K, Y, X = shape
        hm = torch.zeros(shape)
        reg_t, reg_idx, reg_src = [], [], []
        yy, xx = torch.meshgrid(torch.arange(Y, dtype=torch.float32), torch.arange(X, dtype=torch.float32), indexing="ij")
        for b in range(B):
            for c, cls in zip(batch["centres"][b].cpu().numpy(), batch["centre_class"][b].cpu().numpy()):
                gx, gy = (c[0] - self.pc[0]) / self.cell[0], (c[1] - self.pc[1]) / self.cell[1]
                if not (0 <= gx < X and 0 <= gy < Y) or cls < 0:
                    continue
                sigma = 1.0 if cls else 0.7
                g = torch.exp(-((xx - math.floor(gx)) ** 2 + (yy - math.floor(gy)) ** 2) / (2 * sigma ** 2))
                hm[b, cls] = torch.maximum(hm[b, cls], g)
            for k, box in enumerate(batch["reg_boxes"][b].cpu().numpy()):
                gx, gy = (box[0] - self.pc[0]) / self.cell[0], (box[1] - self.pc[1]) / self.cell[1]
                if not (0 <= gx < X and 0 <= gy < Y):
                    continue
                ix, iy = int(gx), int(gy)
                reg_idx.append((b, iy, ix))
                reg_src.append((b, k))
                reg_t.append([gx - ix, gy - iy, box[2], *np.log(np.maximum(box[3:6], 1e-3)), math.sin(box[6]), math.cos(box[6])])
        return hm, reg_idx, torch.tensor(reg_t, dtype=torch.float32).reshape(-1, 8), reg_src

    def training_step(self, batch, batch_idx):
        heat, reg = self(batch)
        hm, idx, rt, src = self._targets(batch, tuple(heat.shape))
        loss_hm = focal_loss(heat, hm.to(heat.device))
        loss = loss_hm
        if idx:
            b, y, x = (torch.tensor(v, device=reg.device) for v in zip(*idx))
            pred = reg[b, :, y, x]
            w = torch.tensor([float(batch["reg_weight"][i][k]) if "reg_weight" in batch else 1.0 for i, k in src],
                             dtype=pred.dtype, device=pred.device)
            per_box = (pred - rt.to(pred.device)).abs().mean(1)
            loss_reg = (per_box * w).sum() / w.sum().clamp_min(1e-6)  # pseudo boxes count by their confidence
            loss = loss + self.hparams.loss_reg * loss_reg
            self.log("train/loss_reg", loss_reg, batch_size=batch["batch_size"])
            if "reg_box2d" in batch and self.hparams.loss_giou2d:
                l2d = self.projection_loss(pred, b, y, x, batch, src)
                loss = loss + self.hparams.loss_giou2d * l2d
                self.log("train/loss_giou2d", l2d, batch_size=batch["batch_size"])
        else:  # no box in the batch: the regression head still takes part, so that every process's
            loss = loss + 0 * reg.sum()  # step reduces the same parameters (DDP)
        self.log("train/loss_heatmap", loss_hm, batch_size=batch["batch_size"])
        self.log("loss", loss, prog_bar=True, batch_size=batch["batch_size"], logger=False)
        return loss

    def boxes_from_reg(self, r: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Differentiable (R,7) boxes from regression outputs (R,8) at BEV cells (y, x)."""
        cx = self.pc[0] + (x.float() + r[:, 0]) * float(self.cell[0])
        cy = self.pc[1] + (y.float() + r[:, 1]) * float(self.cell[1])
        size = torch.exp(r[:, 3:6].clamp(-3, 3))
        return torch.cat([cx[:, None], cy[:, None], r[:, 2:3], size, torch.atan2(r[:, 6], r[:, 7])[:, None]], 1)

    def projection_loss(self, pred: torch.Tensor, b: torch.Tensor, y: torch.Tensor, x: torch.Tensor, batch,
                        src: list[tuple[int, int]]) -> torch.Tensor:
        """VG-W3D's output-level 2D-3D constraint: GIoU between the image box of the projected
        predicted 3D box and the annotated 2D box."""
        boxes = self.boxes_from_reg(pred, y, x)
        unit = torch.tensor([[1, 1, -1], [-1, 1, -1], [-1, -1, -1], [1, -1, -1], [1, 1, 1], [-1, 1, 1], [-1, -1, 1], [1, -1, 1]],
                            dtype=boxes.dtype, device=boxes.device) / 2
        c, s = torch.cos(boxes[:, 6]), torch.sin(boxes[:, 6])
        local = unit[None] * boxes[:, None, 3:6]
        wx = local[..., 0] * c[:, None] - local[..., 1] * s[:, None] + boxes[:, None, 0]
        wy = local[..., 0] * s[:, None] + local[..., 1] * c[:, None] + boxes[:, None, 1]
        wz = local[..., 2] + boxes[:, None, 2]
        pts = torch.stack([wx, wy, wz, torch.ones_like(wx)], -1)  # (R,8,4)
        target = torch.stack([torch.as_tensor(batch["reg_box2d"][i][k], dtype=boxes.dtype) for i, k in src]).to(boxes.device)
        P = torch.stack([torch.as_tensor(batch["proj"][int(i)], dtype=boxes.dtype) for i in b.tolist()]).to(boxes.device)
        uvw = torch.einsum("rij,rkj->rki", P, pts)
        uv = uvw[..., :2] / uvw[..., 2:3].clamp_min(0.1)
        pb = torch.cat([uv.min(1).values, uv.max(1).values], 1)
        ix = (torch.minimum(pb[:, 2], target[:, 2]) - torch.maximum(pb[:, 0], target[:, 0])).clamp_min(0)
        iy = (torch.minimum(pb[:, 3], target[:, 3]) - torch.maximum(pb[:, 1], target[:, 1])).clamp_min(0)
        inter = ix * iy
        area = lambda q: (q[:, 2] - q[:, 0]).clamp_min(0) * (q[:, 3] - q[:, 1]).clamp_min(0)  # noqa: E731
        union = area(pb) + area(target) - inter
        hull = (torch.maximum(pb[:, 2], target[:, 2]) - torch.minimum(pb[:, 0], target[:, 0])) * \
               (torch.maximum(pb[:, 3], target[:, 3]) - torch.minimum(pb[:, 1], target[:, 1]))
        giou = inter / union.clamp_min(1e-6) - (hull - union) / hull.clamp_min(1e-6)
        return (1 - giou).mean()

    def decode(self, heat: torch.Tensor, reg: torch.Tensor) -> list[dict[str, np.ndarray]]:
        h = self.hparams
        prob = heat.sigmoid()
        peaks = prob * (F.max_pool2d(prob, 3, 1, 1) == prob)
        out = []
        for b in range(prob.shape[0]):
            K, Y, X = prob.shape[1:]
            sc, flat = peaks[b].reshape(-1).topk(min(h.max_detections, K * Y * X))
            ok = sc > h.score_threshold
            sc, flat = sc[ok], flat[ok]
            cls = (flat // (Y * X)).cpu().numpy()
            y, x = (flat % (Y * X)) // X, flat % X
            r = reg[b, :, y, x].T.detach().reshape(-1, 8)
            boxes = self.boxes_from_reg(r, y, x).cpu().double().numpy().reshape(-1, 7)
            scores = sc.cpu().numpy()
            keep = []
            for c in np.unique(cls):
                m = np.flatnonzero(cls == c)
                keep += list(m[rotated_nms(boxes[m], scores[m], h.nms_iou)])
            keep = np.array(sorted(keep), np.int64)
            out.append({"box": boxes[keep], "score": scores[keep], "label": cls[keep]})
        return out

    def detections(self, batch) -> list[tuple[str, Any, KittiObjects]]:
        """(frame name, its ``EvalFrame``, detections as KITTI objects in the camera frame) for
        each frame of an evaluation batch."""
        heat, reg = self(batch)
        out = []
        for b, det in enumerate(self.decode(heat, reg)):
            ev = batch["kitti"][b]  # train.lidar_datamodule.EvalFrame
            objs = objects_from_lidar(det["box"], [CLASSES[c] for c in det["label"]], ev.calib, ev.image_size, scores=det["score"])
            out.append((batch["names"][b], ev, objs))
        return out

    def _eval_step(self, batch):
        for name, ev, objs in self.detections(batch):
            self._frames.append((name, ev.ground_truth, objs))

    def predict_step(self, batch, batch_idx) -> list[dict[str, Any]]:
        """Per frame: ``name`` and ``objects``, its detections as ``KittiObjects`` (what a KITTI
        result file holds)."""
        return [{"name": name, "objects": objs} for name, _, objs in self.detections(batch)]

    def _report(self, stage: str, print_json: bool = False) -> None:
        """Validation: KITTI AP of the collected frames in memory. Test: the detections are
        written as KITTI result files (``<log dir>/kitti_results/data/<frame>.txt``, beside the
        ground truth they are scored against in ``label_2/``) and scored from those files by the
        code behind ``pcweak evaluate kitti:... --detections``; the JSON line names the folder."""
        frames, self._frames = joined(self._frames), []  # every process's frames: one AP, on each
        if not frames:
            return
        if print_json:
            ap = None
            # on every process: the trainer's log_dir is itself a collective in a distributed run
            out = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "kitti_results"
            if self.trainer.is_global_zero:  # one writer of the files, one line printed
                names = [n for n, _, _ in frames]
                for name, gt, det in frames:
                    write_objects(out / "label_2" / f"{name}.txt", gt)
                    write_objects(out / "data" / f"{name}.txt", det)
                (out / "ids.txt").write_text("".join(f"{n}\n" for n in names))
                ap = evaluate_result_files(out / "label_2", out / "data", names)
                print(json.dumps({"kitti_ap": ap}, default=float))
            ap = from_first(ap)
        else:
            ap = kitti_ap([g for _, g, _ in frames], [d for _, _, d in frames])
        for mode in ("bev", "3d"):
            for cls in CLASSES:
                v = ap[mode].get(cls, {}).get("moderate", {}).get("R40", float("nan"))
                # the same value on every process: the mean over them changes nothing
                self.log(f"{stage}/{mode}_{cls}_moderate_R40", float(np.nan_to_num(v)), sync_dist=True)

    def _round_steps(self) -> list[int]:
        """The optimiser steps after which a self-training round runs: R rounds split the run
        into R + 1 equal parts."""
        R = self.hparams.self_training_rounds
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        return sorted({max(1, total * r // (R + 1)) for r in range(1, R + 1)}) if R else []

    def on_train_start(self) -> None:
        # a resumed run lost its refined targets with the process: refine once with the restored model
        if any(s <= self.trainer.global_step for s in self._round_steps()):
            self.self_training_round()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.trainer.global_step in self._round_steps() and self.trainer.global_step not in [r["step"] for r in self.rounds_done]:
            self.self_training_round()

    @torch.no_grad()
    def self_training_round(self) -> dict[str, int]:
        """Detect on every training frame that has pseudo boxes (no augmentation) and let each
        detection replace the pseudo box whose weak label it agrees with
        (``LidarDataset.refine``). Returns and logs the step, frames and boxes replaced."""
        dm = self.trainer.datamodule
        if not hasattr(dm, "train_dataset"):
            raise ValueError("model.self_training_rounds needs the LiDAR data module (pcweak.train.lidar_datamodule)")
        ds = dm.train_dataset()
        was_training = self.training
        self.eval()
        replaced = boxes = 0
        frames = ds.weak_frames()
        for i in frames:
            batch = ds.frame_batch(i)
            batch.update({k: batch[k].to(self.device) for k in ("feat", "coord", "batch")})
            det = self.decode(*self(batch))[0]
            swapped, held = ds.refine(i, det["box"], det["label"], det["score"], min_score=self.hparams.self_training_min_score)
            replaced, boxes = replaced + swapped, boxes + held
        self.train(was_training)
        row = {"step": int(self.trainer.global_step), "frames": len(frames), "boxes": boxes, "replaced": replaced}
        self.rounds_done.append(row)
        self.log("train/self_training_replaced", float(replaced), batch_size=1)
        return row

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch)

    def on_validation_epoch_end(self):
        self._report("val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch)

    def on_test_epoch_end(self):
        self._report("test", print_json=True)

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.hparams.lr, self.hparams.weight_decay)

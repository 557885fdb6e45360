"""``pcweak predict`` writes what the model predicts, one file per scene, as each batch ends:
segmentation models' per-point labels as ``<scene>.npz`` in the pseudo-label format (what
``pcweak evaluate --pseudo`` and ``pcweak viz --pseudo`` read), detectors' boxes as KITTI result
files ``<frame>.txt`` (what ``pcweak evaluate kitti:... --detections`` and KITTI's devkit read)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from lightning.pytorch.callbacks import BasePredictionWriter

if TYPE_CHECKING:
    from ..scene import PseudoLabels


class PredictionWriter(BasePredictionWriter):
    """Writes each predicted scene into ``folder`` (made when the first is written; a file of
    the same name is replaced atomically). ``checkpoint`` is recorded in each label file's
    ``params``; ``written`` counts the files."""

    def __init__(self, folder: str | Path, checkpoint: str | None = None) -> None:
        super().__init__("batch")
        self.folder = Path(folder)
        self.checkpoint = checkpoint
        self.written = 0

    def write_on_batch_end(self, trainer: Any, pl_module: Any, prediction: Sequence[dict[str, Any]],
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int, dataloader_idx: int) -> None:
        for p in prediction:
            if "objects" in p:
                from ..kitti_objects import write_objects
                write_objects(self.folder / f"{p['name']}.txt", p["objects"])
            else:
                self._write_labels(pl_module, p)
            self.written += 1

    def _write_labels(self, pl_module: Any, p: dict[str, Any]) -> None:
        names = tuple(getattr(pl_module.hparams, "class_names", None) or ())
        prediction_labels(p, names, {"ckpt": self.checkpoint}).save(self.folder / f"{p['name']}.npz")


def prediction_labels(p: dict[str, Any], classes: Sequence[str], params: dict[str, Any],
                      min_confidence: float = 0.0, fingerprint: str = "{}") -> "PseudoLabels":
    """A segmentation model's prediction of one scene (``predict_step``'s dict: ``semantic``,
    ``confidence``, and from an instance model ``instance``, ``instance_class``,
    ``instance_score``) as ``PseudoLabels`` (method ``model``); points below ``min_confidence``
    get no class (-1) and no instance."""
    from ..scene import PseudoLabels
    semantic = p["semantic"].astype("int64")
    confidence = p["confidence"].astype("float32")
    low = confidence < min_confidence
    semantic[low] = -1
    instance = None
    if "instance" in p:
        instance = p["instance"].astype("int64")
        instance[low] = -1
    extras = {k: p[k] for k in ("instance_class", "instance_score") if k in p}
    return PseudoLabels(semantic=semantic, confidence=confidence, instance=instance, method="model", classes=tuple(classes),
                        params=json.dumps(params, sort_keys=True), fingerprint=fingerprint, extras=extras)

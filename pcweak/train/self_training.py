"""Self-training: a trained model turns scenes into new pseudo-labels (``Trainer.predict``, so it
runs under any Lightning strategy), which a config can train the next round on
(``data.supervision: pseudo`` with ``data.pseudo_dir`` pointing at the output folder)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch


def predict_pseudo_labels(ckpt: str | Path, scenes: Sequence[tuple[str, str]], out: str | Path, overwrite: bool = False,
                          accelerator: str = "auto", devices: int | str = "auto", strategy: str = "auto",
                          voxel_size: float | None = None, feature_names: Sequence[str] | None = None,
                          min_confidence: float = 0.0) -> dict[str, Any]:
    """Label ``scenes`` ((name, address) pairs) with the model in ``ckpt``; one
    ``<out>/<name>.npz`` per scene (``out`` may be a file for a single scene). A scene whose
    output was made from the same scene, checkpoint (SHA-256) and settings is skipped unless
    ``overwrite``; any other existing output is labelled again. Voxel size and input features
    default to the ones the checkpoint was trained with."""
    import lightning as L
    from torch.utils.data import DataLoader

    from .datamodule import SceneDataset, collate
    from ..scene import PseudoLabels
    from ..tasks.semantic import SemanticSegmentation
    from .. import __version__
    from ..label_jobs import file_sha256, is_current, scene_identity
    from ..safe_load import torch_load
    ckpt = Path(ckpt)
    meta = torch_load(ckpt, "--ckpt")  # checked before Lightning reads it again
    dm = meta.get("datamodule_hyper_parameters", {}) or {}
    model = SemanticSegmentation.load_from_checkpoint(ckpt, map_location="cpu")
    single = str(out).lower().endswith(".npz") and len(scenes) == 1
    target = (lambda name: Path(out)) if single else (lambda name: Path(out) / f"{name}.npz")
    settings = {"ckpt_sha256": file_sha256(ckpt), "min_confidence": min_confidence,
                "voxel_size": voxel_size or dm.get("voxel_size", 0.05),
                "feature_names": list(feature_names or dm.get("feature_names", ("color", "normal")))}
    stamp = {name: json.dumps({"scene": scene_identity(address), "method": "model", "params": settings,
                               "pcweak": __version__}, sort_keys=True) for name, address in scenes}
    # an existing output is kept only when the same checkpoint and settings made it from this scene
    todo = [s for s in scenes if overwrite or not is_current(target(s[0]), stamp[s[0]])]
    if todo:
        ds = SceneDataset(todo, "full", voxel_size=settings["voxel_size"], feature_names=settings["feature_names"],
                          train=False)
        loader = DataLoader(ds, batch_size=1, collate_fn=collate)
        trainer = L.Trainer(accelerator=accelerator, devices=devices, strategy=strategy, logger=False,
                            enable_checkpointing=False, enable_model_summary=False)
        names = tuple(model.hparams.class_names or ())
        for batch in trainer.predict(model, loader):
            for p in batch:
                sem = p["semantic"].astype("int64")
                conf = p["confidence"].astype("float32")
                sem[conf < min_confidence] = -1
                PseudoLabels(semantic=sem, confidence=conf, method="model", classes=names,
                             params=json.dumps({"ckpt": str(ckpt), **settings}, sort_keys=True),
                             fingerprint=stamp[p["name"]]).save(target(p["name"]))
    return {"labelled": len(todo), "skipped_existing": len(scenes) - len(todo), "output": str(out), "method": "model"}

"""Self-training: a trained model turns scenes into new pseudo-labels (``Trainer.predict``, so it
runs under any Lightning strategy), which a config can train the next round on
(``data.supervision: pseudo`` with ``data.pseudo_dir`` pointing at the output folder).

Two ways: ``predict_pseudo_labels`` keeps the model's own argmax; ``model_walk_labels`` walks
from the weak points again over a graph that also compares the model's class probabilities
(the propagation's learned-feature term), as One Thing One Click iterates network and graph
propagation: the model carries what it learned across scenes (the look of a sink), the walk
keeps every seed's label and the scene's own boundaries.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch


# the tasks whose checkpoints label scenes point by point: class path as LightningCLI saves it ->
# the class's module and name (an allow-list: a checkpoint never names what gets imported)
SEGMENTATION_TASKS = {
    "pcweak.tasks.SemanticSegmentation": ("pcweak.tasks.semantic", "SemanticSegmentation"),
    "pcweak.tasks.semantic.SemanticSegmentation": ("pcweak.tasks.semantic", "SemanticSegmentation"),
    "pcweak.tasks.InstanceSegmentation": ("pcweak.tasks.instance", "InstanceSegmentation"),
    "pcweak.tasks.instance.InstanceSegmentation": ("pcweak.tasks.instance", "InstanceSegmentation"),
}


def _load_model(ckpt: str | Path, voxel_size: float | None, feature_names: Sequence[str] | None) -> tuple[Any, dict[str, Any]]:
    """The checkpoint's model and its input settings (voxel size and input features: the ones
    it was trained with unless given); the checkpoint is checked before Lightning reads it."""
    from ..label_jobs import file_sha256
    from ..safe_load import torch_load
    import importlib
    meta = torch_load(ckpt, "--ckpt")
    task = (meta.get("hyper_parameters", {}) or {}).get("_class_path") or "pcweak.tasks.SemanticSegmentation"
    if task not in SEGMENTATION_TASKS:
        raise ValueError(f"--ckpt {ckpt}: a {task} checkpoint; --method model and model-walk take a segmentation "
                         f"model's (a detector writes its detections with pcweak predict / test --config ...)")
    dm = meta.get("datamodule_hyper_parameters", {}) or {}
    module, name = SEGMENTATION_TASKS[task]
    model = getattr(importlib.import_module(module), name).load_from_checkpoint(ckpt, map_location="cpu")
    return model, {"ckpt_sha256": file_sha256(ckpt), "voxel_size": voxel_size or dm.get("voxel_size", 0.05),
                   "feature_names": list(feature_names or dm.get("feature_names", ("color", "normal")))}


def _predictions(model: Any, scenes: Sequence[tuple[str, str]], settings: dict[str, Any], accelerator: str,
                 devices: int | str, strategy: str) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(scene, prediction) for each of ``scenes`` in turn, one scene in memory at a time; a
    prediction holds ``semantic``, ``confidence`` and ``prob`` (``predict_step``). A progress
    bar on stderr counts the scenes."""
    import lightning as L
    from torch.utils.data import DataLoader, Subset
    from tqdm import tqdm

    from .datamodule import SceneDataset, collate
    trainer = L.Trainer(accelerator=accelerator, devices=devices, strategy=strategy, logger=False,
                        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False)
    # one dataset (its warnings once per run), holding one scene at a time (cache of 0 bytes)
    ds = SceneDataset(list(scenes), "full", voxel_size=settings["voxel_size"], feature_names=settings["feature_names"],
                      train=False, cache_bytes=0)
    for i in tqdm(range(len(scenes)), desc="label[model]", unit="scene", disable=not scenes):
        (pred,), = trainer.predict(model, DataLoader(Subset(ds, [i]), batch_size=1, collate_fn=collate))
        yield ds.scene(i), pred


def _todo(scenes: Sequence[tuple[str, str]], out: str | Path, stamp: dict[str, str], overwrite: bool):
    """The output path of each scene, and the scenes whose output is not current (made from the
    same scene, checkpoint and settings; any other existing output is labelled again)."""
    from ..label_jobs import is_current
    from ..npzio import names_npz_file
    single = names_npz_file(out) and len(scenes) == 1
    target = (lambda name: Path(out)) if single else (lambda name: Path(out) / f"{name}.npz")
    return target, [s for s in scenes if overwrite or not is_current(target(s[0]), stamp[s[0]])]


def predict_pseudo_labels(ckpt: str | Path, scenes: Sequence[tuple[str, str]], out: str | Path, overwrite: bool = False,
                          accelerator: str = "auto", devices: int | str = "auto", strategy: str = "auto",
                          voxel_size: float | None = None, feature_names: Sequence[str] | None = None,
                          min_confidence: float = 0.0) -> dict[str, Any]:
    """Label ``scenes`` ((name, address) pairs) with the model in ``ckpt`` (a semantic or an
    instance segmentation model; an instance model's files also hold its proposals, as
    ``pcweak predict`` writes them); one ``<out>/<name>.npz`` per scene (``out`` may be a file
    for a single scene). A scene whose
    output was made from the same scene, checkpoint (SHA-256) and settings is skipped unless
    ``overwrite``; any other existing output is labelled again. Voxel size and input features
    default to the ones the checkpoint was trained with; points below ``min_confidence`` get -1."""
    from ..code_stamp import MODEL_MODULES, made_by
    from ..label_jobs import scene_identity
    from .predictions import prediction_labels
    model, settings = _load_model(ckpt, voxel_size, feature_names)
    settings["min_confidence"] = min_confidence
    stamp = {name: json.dumps({"scene": scene_identity(address), "method": "model", "params": settings,
                               **made_by(MODEL_MODULES)}, sort_keys=True) for name, address in scenes}
    target, todo = _todo(scenes, out, stamp, overwrite)
    names = tuple(model.hparams.class_names or ())
    for scene, p in _predictions(model, todo, settings, accelerator, devices, strategy):
        prediction_labels(p, names, {"ckpt": str(ckpt), **settings}, min_confidence, stamp[p["name"]]).save(target(p["name"]))
    return {"labelled": len(todo), "skipped_existing": len(scenes) - len(todo), "output": str(out), "method": "model"}


def model_walk_labels(ckpt: str | Path, scenes: Sequence[tuple[str, str]], weak: str | Path, out: str | Path,
                      params: dict[str, Any] | None = None, overwrite: bool = False, accelerator: str = "auto",
                      devices: int | str = "auto", strategy: str = "auto", voxel_size: float | None = None,
                      feature_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Label ``scenes`` ((name, address) pairs) by propagation from their weak points
    (``weak``: a folder of ``<name>.npz`` WeakLabels files, or one file for a single scene) over a
    graph whose learned-feature term compares the model's (N,C) class probabilities
    (``graph.w_feat`` > 0; the other settings as ``propagate``'s, from ``params``, dotted or
    nested). One ``<out>/<name>.npz`` per scene (``out`` may be a file for a single scene),
    ``method`` ``"model-walk"``. Resumes like ``predict_pseudo_labels``; the weak file's
    SHA-256 is part of what an output must have been made from. Every argument and weak file
    is checked before the model runs."""
    from ..data.address import load_scene
    from ..errors import SceneError
    from ..scene import WeakLabels
    from ..code_stamp import MODEL_MODULES, made_by
    from ..label_jobs import file_sha256, scene_identity
    from ..classes import joined_class_list, placeholder_class
    from .splits import shown
    from ..pseudo.propagate import propagate_config
    from ..pseudo.registry import propagate_scene
    cfg = propagate_config(params)
    if not cfg.graph.w_feat > 0:
        raise ValueError(f"graph.w_feat must be > 0 for model-walk (the model's probabilities are that term), got {cfg.graph.w_feat}")
    weak = Path(weak)
    files = {name: weak if weak.is_file() else weak / f"{name}.npz" for name, _ in scenes}
    for name, f in files.items():
        if not f.is_file():
            raise FileNotFoundError(f"--weak: no weak-label file for scene {name!r} at {f}")
    model, settings = _load_model(ckpt, voxel_size, feature_names)
    config = dataclasses.asdict(cfg)
    stamp = {name: json.dumps({"scene": scene_identity(address), "weak_sha256": file_sha256(files[name]),
                               "method": "model-walk", "params": config, "model": settings,
                               **made_by(MODEL_MODULES)},
                              sort_keys=True) for name, address in scenes}
    target, todo = _todo(scenes, out, stamp, overwrite)
    labels = {}
    # the model's classes (placeholders where an older checkpoint names none), which a scene's own
    # list must join: a folder's model has the folder's joined list, a file's own may stop lower
    known = tuple(model.hparams.class_names or ()) or tuple(placeholder_class(i) for i in range(model.hparams.num_classes))
    for name, address in todo:  # every weak file against its scene before the model runs
        w = labels[name] = WeakLabels.load(files[name])
        if w.point_index is None or not len(w.point_index):
            raise ValueError(f"--weak: {files[name]} has no labelled points (model-walk propagates from them)")
        scene = load_scene(address)
        try:
            w.check_against(scene)
        except SceneError as e:
            raise SceneError(f"--weak {files[name]}: {e}") from None
        if scene.classes and joined_class_list(known, scene.classes) is None:
            raise ValueError(f"--ckpt: the model predicts {len(known)} classes ({shown(known)}) that disagree with "
                             f"scene {name!r}'s {len(scene.classes)} ({shown(scene.classes)})")
    for scene, p in _predictions(model, todo, settings, accelerator, devices, strategy):
        res = propagate_scene(scene, labels[p["name"]], cfg, features=p["prob"])
        res.method = "model-walk"
        res.params = json.dumps({"ckpt": str(ckpt), **settings, "propagate": config}, sort_keys=True)
        res.fingerprint = stamp[p["name"]]
        res.save(target(p["name"]))
    return {"labelled": len(todo), "skipped_existing": len(scenes) - len(todo), "output": str(out), "method": "model-walk"}

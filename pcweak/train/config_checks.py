"""A parsed training config checked against itself and against the checkpoint it starts from,
before anything is built: settings that would be dropped without a word, or meet a model that
cannot read them, are a ValueError naming them (pcweak prints it as one line); settings that
only cost time are named in a warning.

``config`` below is one subcommand's parsed namespace (``fit``'s, ``validate``'s, ...), the
data facts already linked into ``model.init_args`` (``lightning_cli.link_data_facts``).
"""
from __future__ import annotations

import warnings
from typing import Any

from ..classes import joined_class_list
from .lightning_cli import LINKS


def _plain(value: Any) -> Any:
    """A config value as plain Python (jsonargparse Namespaces as dicts, tuples as lists), so a
    config's value compares equal to the same value read back from a checkpoint."""
    from jsonargparse import Namespace
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _same_class(saved: str | None, given: Any) -> bool:
    """Whether a checkpoint's saved class path (None: not recorded) names the config's class;
    by class name, as one class is named through its package or its module
    (``pcweak.tasks.SemanticSegmentation``, ``pcweak.tasks.semantic.SemanticSegmentation``)."""
    return not saved or saved.rsplit(".", 1)[-1] == str(given).rsplit(".", 1)[-1]


# the model arguments that follow from its class list
CLASS_FACTS = ("class_names", "num_classes", "stuff_classes")


def check_against_checkpoint(config: Any, checkpoint: dict, ckpt_path: str) -> list[str]:
    """The model a ``--ckpt_path`` run gets against the one the config describes. LightningCLI
    builds the checkpoint's model (its class and every saved hyper-parameter replace the
    config's), which the run must do to load the weights; so

    * a checkpoint of another model class, or one built for other data (another class list,
      number of input channels from ``data.feature_names``, voxel size or point-cloud range, the
      facts ``LINKS`` takes from the data) is a ValueError naming both: the data would reach a
      model that cannot read it (spconv's "channel size mismatch" deep in the first batch) or
      whose outputs mean other classes. Data whose class list the model's holds already
      (``classes.joined_class_list`` of the two is the model's: a folder model's new files,
      whose own lists stop at their highest label) is not other data;
    * other model settings that differ (a learning rate, a backbone, a detector's thresholds)
      are not used: one warning lists them with the checkpoint's values, which are.

    ``config`` is one subcommand's parsed namespace, its data facts already linked into
    ``model.init_args``. Returns the model settings whose given values are not used."""
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    model = config.get("model")
    if not hparams or model is None or not model.get("class_path"):
        return []
    ckpt_class = hparams.pop("_class_path", None)
    hparams.pop("_instantiator", None)
    if not _same_class(ckpt_class, model.class_path):
        raise ValueError(f"--ckpt_path {ckpt_path}: a {ckpt_class} checkpoint, but the config's model is "
                         f"{model.class_path}; give the config the checkpoint was trained with")
    given = _plain(model.get("init_args")) or {}
    data_cls = (config.get("data") or {}).get("class_path", "the data")
    data_args = _plain((config.get("data") or {}).get("init_args")) or {}
    ckpt_data = checkpoint.get("datamodule_hyper_parameters") or {}
    linked = {target: setting for _, target, setting in LINKS}
    known = _plain(hparams.get("class_names")) or []
    # data whose classes the model's list holds already (a folder model's joined list; new files of
    # that folder whose own lists stop lower): the model's list, count and stuff classes stand
    covered = bool(known) and joined_class_list(known, given.get("class_names") or []) == tuple(known)
    for target, source in linked.items():
        if covered and target in CLASS_FACTS:
            continue
        if target in hparams and target in given and _plain(hparams[target]) != given[target]:
            raise ValueError(f"--ckpt_path {ckpt_path}: the checkpoint's model was built for {target} "
                             f"{_plain(hparams[target])!r} (data.{source} {ckpt_data.get(source, '?')!r} in its "
                             f"training), but the data ({data_cls}, data.{source} {data_args.get(source, '?')!r}) "
                             f"gives {given[target]!r}; give the data settings the model was trained with")
    ignored = [k for k, v in hparams.items() if k in given and k not in linked and _plain(v) != given[k]]
    if ignored:
        warnings.warn(f"--ckpt_path {ckpt_path}: the checkpoint's model settings are used, not the config's: "
                      + "; ".join(f"model.init_args.{k} {_plain(hparams[k])!r} (given {given[k]!r})" for k in ignored)
                      + " (a run from a checkpoint continues or evaluates the model it holds)")
    return ignored


# data settings a resumed fit may change: where the same data lies (named in a warning) and how
# it is served (batches, workers, memory, the predict scenes); any other setting changes what
# the model trains on
DATA_LOCATIONS = ("root", "cache_dir", "weak_dir", "pseudo_dir")
DATA_SERVING = ("batch_size", "num_workers", "scene_cache_gb", "predict_scenes", "predict_split", "predict_ids")


def check_resumed_data(config: Any, checkpoint: dict, ckpt_path: str) -> list[str]:
    """``pcweak fit --ckpt_path``: the data the run resumes on against the data the checkpoint
    was trained on (its ``datamodule_hyper_parameters``). A setting that changes what is trained
    on (the scenes, the supervision and its seed, the weak labels' kind and count, the voxel
    size, the features, the augmentation) is a ValueError naming each with both values: the
    resumed model, its optimizer and schedule would go on from a training on other data, and
    its checkpoints hold neither run. ``DATA_LOCATIONS`` that differ are taken as the same data
    moved, in one warning; ``DATA_SERVING`` may change. Settings the checkpoint does not record
    (an older pcweak's) are not compared. Returns the locations that differ."""
    saved = checkpoint.get("datamodule_hyper_parameters") or {}
    ckpt_data = {k: v for k, v in saved.items() if not k.startswith("_")}
    data = config.get("data") or {}
    ckpt_class = saved.get("_class_path")
    if not ckpt_data or not data.get("class_path"):
        return []
    if not _same_class(ckpt_class, data.class_path):
        raise ValueError(f"--ckpt_path {ckpt_path}: trained on {ckpt_class}, but the config's data is "
                         f"{data.class_path}; give the config the checkpoint was trained with")
    given = _plain(data.get("init_args")) or {}
    differ = {k: (_plain(v), given[k]) for k, v in ckpt_data.items() if k in given and _plain(v) != given[k]}
    other = {k: v for k, v in differ.items() if k not in DATA_LOCATIONS and k not in DATA_SERVING}
    if other:
        raise ValueError(f"--ckpt_path {ckpt_path}: the checkpoint was trained on other data: "
                         + "; ".join(f"data.init_args.{k} {was!r} (given {now!r})" for k, (was, now) in other.items())
                         + "; resuming would go on training it on these: give the settings it was trained with, or "
                           "start a new fit without --ckpt_path")
    moved = [k for k in differ if k in DATA_LOCATIONS]
    if moved:
        warnings.warn(f"--ckpt_path {ckpt_path}: resuming on data found elsewhere, taken to be the data it was trained "
                      f"on: " + "; ".join(f"data.init_args.{k} {differ[k][1]!r} (trained from {differ[k][0]!r})"
                                          for k in moved))
    return moved


# a task -> the data module whose batches it reads (subclasses included); a model or data
# class of the user's own passes
TASK_DATA: tuple[tuple[str, str, str], ...] = (
    ("pcweak.tasks.semantic.SemanticSegmentation", "pcweak.train.datamodule.PointDataModule",
     "point clouds with point labels (configs/demo.yaml, configs/scannet, configs/s3dis)"),
    ("pcweak.tasks.detection.Detection", "pcweak.train.lidar_datamodule.LidarDataModule",
     "LiDAR frames with boxes (configs/kitti)"),
)


def check_model_data_pair(config: Any) -> None:
    """ValueError when the model is a task that reads another data module's batches (a
    segmenter given LiDAR frames ended in ``KeyError: 'inverse'`` from the first batch, a
    detector given rooms in Lightning's "Error while merging hparams ... voxel_size")."""
    from jsonargparse.typing import import_object
    model, data = config.get("model"), config.get("data")
    if model is None or data is None or not model.get("class_path") or not data.get("class_path"):
        return
    model_cls, data_cls = import_object(model.class_path), import_object(data.class_path)
    for task, module, reads in TASK_DATA:
        task_cls, module_cls = import_object(task), import_object(module)
        if issubclass(model_cls, task_cls) and not issubclass(data_cls, module_cls):
            raise ValueError(f"model {model.class_path} trains on {reads}, read by {module}; the config's data is "
                             f"{data.class_path}")


def _settings(section: Any) -> dict[str, Any]:
    """A config section's ``init_args`` over its class's defaults, as plain Python (the values
    the class will be built with)."""
    import inspect

    from jsonargparse.typing import import_object
    if section is None or not section.get("class_path"):
        return {}
    cls = import_object(section.class_path)
    values = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
              if p.default is not inspect.Parameter.empty}
    values.update(_plain(section.get("init_args")) or {})
    return values


def check_model_settings(config: Any) -> None:
    """The model's settings (its defaults, the config's and the command line's ``init_args``, the
    data's facts linked in: ``_settings``) checked by the task's own ``check_args`` before
    anything is built: ValueError naming the setting, which pcweak prints as one line."""
    from jsonargparse.typing import import_object
    model = config.get("model")
    if model is None or not model.get("class_path"):
        return
    check = getattr(import_object(model.class_path), "check_args", None)
    if check is not None:
        check(_settings(model))


def check_precision(config: Any) -> None:
    """``trainer.precision`` against spconv, which runs every sparse convolution and has float16
    kernels (on GPUs) but no bfloat16 ones: bfloat16, and float16 AMP on a CPU (which Lightning
    turns into bfloat16), would end in spconv's ``KeyError: torch.bfloat16`` at the first
    batch. ValueError naming the setting."""
    trainer = config.get("trainer")
    if trainer is None or trainer.get("precision") is None:
        return
    precision, accelerator = str(trainer.get("precision")), str(trainer.get("accelerator") or "auto")
    if "bf16" in precision:
        raise ValueError(f"trainer.precision {precision!r}: spconv, which runs the sparse convolutions, has no bfloat16 "
                         f"kernels; use 16-mixed on a GPU, or 32")
    if precision.startswith("16"):
        import torch
        on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
        if on_cpu:
            raise ValueError(f"trainer.precision {precision!r} on the CPU: Lightning runs it as bfloat16, for which "
                             f"spconv (the sparse convolutions) has no kernels; use 32 on a CPU, 16-mixed on a GPU")


# strategies whose processes are forked or spawned from the one the command started: the run's
# outcome (checkpoint paths, prediction counts) stays in those children
IN_PROCESS_LAUNCHES = ("spawn", "fork", "notebook")


def check_strategy(config: Any) -> None:
    """``trainer.strategy`` against how pcweak runs several devices: ``ddp`` starts the command
    once per device and every process does the whole run; the spawn, fork and notebook
    variants run the training in children of this process, which then reports what it did not
    see (no checkpoint folder, 0 predictions) or cannot pickle the CLI at all. ValueError
    naming the setting."""
    trainer = config.get("trainer")
    strategy = trainer.get("strategy") if trainer is not None else None
    if isinstance(strategy, str) and any(word in strategy for word in IN_PROCESS_LAUNCHES):
        plain = strategy.replace("_spawn", "").replace("_fork", "").replace("_notebook", "")
        raise ValueError(f"trainer.strategy {strategy!r}: pcweak runs several devices with {plain!r}, one process per "
                         f"device each started as this command (its spawned, forked or notebook variants keep the "
                         f"run's results in child processes)")


# a loss weight above 0 -> what the data must give for that loss to apply (the batch keys it
# reads), as (data setting, test, what the data gives otherwise)
LOSS_NEEDS: dict[str, tuple[tuple[str, Any, str], ...]] = {
    "loss_seed": (("supervision", lambda d: d["supervision"] != "pseudo", "no labelled points"),),
    "loss_pseudo": (("supervision", lambda d: "pseudo" in d["supervision"], "no pseudo-labels"),),
    "loss_consistency": (("two_views", lambda d: bool(d["two_views"]), "no second view to compare"),),
    "loss_regionmask": (("two_views", lambda d: bool(d["two_views"]), "no second view to mask"),
                        ("region_mask_grid", lambda d: d["region_mask_grid"] > 0,
                         "an unmasked second view (the loss would be loss_consistency's)")),
}


def _unread_lidar_settings(data: dict[str, Any]) -> list[str]:
    """LiDAR data's ``box_fraction`` set (away from its default) for a weak mode that boxes no
    share of the frames (``full`` boxes all, ``boxes2d`` none): one warning; returns it."""
    import inspect

    from .lidar_datamodule import BOXED_SHARE_MODES, LidarDataModule
    default = inspect.signature(LidarDataModule.__init__).parameters["box_fraction"].default
    if "box_fraction" not in data or data.get("weak_mode") in BOXED_SHARE_MODES or data["box_fraction"] == default:
        return []
    line = (f"data.box_fraction {data['box_fraction']!r}: data.weak_mode {data.get('weak_mode')!r} boxes "
            f"{'every' if data.get('weak_mode') == 'full' else 'no'} training frame (a boxed share is for "
            f"{' or '.join(BOXED_SHARE_MODES)}), so it is not used")
    warnings.warn(line)
    return [line]


def check_training_against_data(config: Any) -> list[str]:
    """A segmentation model's loss weights against what its point data gives (``LOSS_NEEDS``):
    a loss above 0 that the data gives nothing to (``loss_consistency`` without
    ``data.two_views``, ``loss_pseudo`` without pseudo supervision, ``loss_seed`` with pseudo
    supervision alone, ``loss_regionmask`` without a masked second view) would be skipped at
    every step, leaving a run that trains without it: ValueError naming both settings; so are
    a detector's self-training rounds over full boxes (nothing to refine).
    Simulated boxes (``data.weak_kind boxes``, no ``weak_dir``) for supervision that trains on
    labelled points would stop at the first batch: ValueError. Data made for no loss (a second
    view, pseudo-labels read or made) only costs time, and settings nothing in the run reads
    (weak labels under full supervision, a points ratio for simulated clicks, a LiDAR boxed share
    for a weak mode without one) are dropped: one warning each. Returns the warnings."""
    model, data = _settings(config.get("model")), _settings(config.get("data"))
    if model.get("self_training_rounds", 0) > 0 and data.get("weak_mode") == "full":
        raise ValueError(f"model.init_args.self_training_rounds {model['self_training_rounds']}: data.weak_mode 'full' "
                         f"gives no pseudo boxes to refine, so no round would change a target; set it 0 or a weak mode")
    if "supervision" not in data or "loss_seed" not in model:
        return _unread_lidar_settings(data)
    for loss, needs in LOSS_NEEDS.items():
        for setting, ok, otherwise in needs:
            if model.get(loss, 0) > 0 and not ok(data):
                raise ValueError(f"model.init_args.{loss} {model[loss]!r}: data.{setting} {data[setting]!r} gives "
                                 f"{otherwise}, so this loss would never apply; set data.{setting} for it or "
                                 f"model.init_args.{loss} 0")
    if "points" in data["supervision"] and data.get("weak_kind") == "boxes" and not data.get("weak_dir"):
        raise ValueError(f"data.weak_kind 'boxes': simulated boxes hold no labelled points, which data.supervision "
                         f"{data['supervision']!r} trains on; use weak_kind points or clicks, or supervision pseudo "
                         f"with a box labeller (data.pseudo_method)")
    said = []
    if data.get("two_views") and not (model.get("loss_consistency", 0) > 0 or model.get("loss_regionmask", 0) > 0):
        said.append("data.two_views true: a second view of every scene is made and no loss reads it "
                    "(model.init_args.loss_consistency and loss_regionmask are 0)")
    if "pseudo" in data["supervision"] and not model.get("loss_pseudo", 0) > 0:
        said.append(f"data.supervision {data['supervision']!r}: pseudo-labels are read (and made by "
                    f"data.pseudo_method) and no loss reads them (model.init_args.loss_pseudo is 0)")
    sup = data["supervision"]
    for key in ("pseudo_method", "pseudo_dir"):
        if data.get(key) and "pseudo" not in sup:
            said.append(f"data.{key} {data[key]!r}: data.supervision {sup!r} reads no pseudo-labels, so it is not used")
    # weak labels are read for labelled points, or by the labeller that makes pseudo-labels from them
    reads_weak = "points" in sup or ("pseudo" in sup and bool(data.get("pseudo_method")))
    unread = [f"data.{k} {data[k]!r}" for k in ("weak_dir", "points_ratio") if data.get(k) is not None]
    unread += [f"data.weak_kind {data['weak_kind']!r}"] if data.get("weak_kind", "points") != "points" else []
    if unread and not reads_weak:
        said.append(f"{', '.join(unread)}: data.supervision {sup!r} reads no weak labels"
                    + (" (every point's own label trains)" if sup == "full" else "") + ", so not used")
    elif reads_weak and data.get("points_ratio") is not None and data.get("weak_kind") in ("clicks", "boxes"):
        said.append(f"data.points_ratio {data['points_ratio']!r}: simulated {data['weak_kind']} are one per object, "
                    f"so it is not used")
    for line in said:
        warnings.warn(line)
    return said

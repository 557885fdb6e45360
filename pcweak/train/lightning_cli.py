"""``pcweak fit|validate|test|predict`` through LightningCLI (``--print_config`` works).

Configs name the model and data classes with ``class_path`` (see ``configs/``); any option can
be overridden on the command line, e.g. ``--trainer.max_epochs 20 --trainer.devices 2
--trainer.strategy ddp``; ``--ckpt_path last.ckpt`` resumes.

The data side states each fact once and the model takes it from there (``LINKS``): the class
list, the number of classes and of input channels, the stuff classes, and for LiDAR the voxel
size and point-cloud range. A config never restates them under ``model``; a model whose class
has no such parameter simply does not receive it.
"""
from __future__ import annotations

from typing import Any, Sequence

TRAIN_COMMANDS = ("fit", "validate", "test", "predict")

# What a config (or a checkpoint's hyper-parameters) may name by import path: a class_path, a
# callable, a type. Anything else is refused before its module is imported, so a downloaded
# config runs no code of its own choosing (an import runs the module; Lightning calls a
# LambdaCallback's functions with the trainer). The most specific entry decides.
CONFIG_IMPORTS_ALLOWED: tuple[str, ...] = (
    "pcweak.tasks", "pcweak.train",
    "lightning.pytorch.callbacks", "lightning.pytorch.loggers", "lightning.pytorch.strategies",
    "lightning.pytorch.accelerators", "lightning.pytorch.plugins", "lightning.pytorch.profilers",
    "lightning.fabric.plugins",  # where some of lightning.pytorch.plugins' classes are defined
    "torch.optim",
)
CONFIG_IMPORTS_DENIED: tuple[str, ...] = (
    "*", "lightning.pytorch.callbacks.LambdaCallback", "lightning.pytorch.callbacks.lambda_function",
)


def restrict_config_imports() -> None:
    """Make jsonargparse refuse any import path given as a value that ``CONFIG_IMPORTS_ALLOWED``
    does not cover (``CONFIG_IMPORTS_DENIED`` taking the rest); paths from pcweak's and
    Lightning's own code (type hints, defaults) are not checked. Process-wide; idempotent."""
    from jsonargparse import set_parsing_settings
    set_parsing_settings(import_path_denylist=list(CONFIG_IMPORTS_DENIED),
                         import_path_allowlist=list(CONFIG_IMPORTS_ALLOWED))


def denied_import(message: str) -> str | None:
    """One line for a parse error whose cause is an import path ``restrict_config_imports``
    refused (jsonargparse buries it among the union's other alternatives); None for any other."""
    import re
    found = re.search(r"Importing '([^']+)' is not allowed", message)
    if found is None:
        return None
    key = re.search(r'Parser key "([^"]+)"', message)
    return (f"{key.group(1) + ': ' if key else ''}{found.group(1)} is not a class or function a pcweak config may "
            f"name (those under {', '.join(CONFIG_IMPORTS_ALLOWED)}; not LambdaCallback): a config runs no code "
            f"of its own choosing")


# datamodule attribute -> model init argument, filled in when the command line is parsed, and
# the data setting it comes from (named when a checkpoint's model was built from another value)
LINKS: tuple[tuple[str, str, str], ...] = (
    ("class_names", "class_names", "dataset"),
    ("num_classes", "num_classes", "dataset"),
    ("in_channels", "in_channels", "feature_names"),
    ("stuff_class_ids", "stuff_classes", "dataset"),
    ("voxel_size", "voxel_size", "voxel_size"),
    ("pc_range", "pc_range", "pc_range"),
)


def link_data_facts(config) -> list[str]:
    """Set ``config.model.init_args`` from the datamodule that ``config.data`` describes: each
    ``LINKS`` attribute of the datamodule goes to the model parameter of that name, where the
    model's class takes one (a detector takes no class list, a segmenter no point-cloud range).
    ``config`` is one subcommand's parsed namespace. Returns the model parameters set.
    ValueError when the model is given a value other than its default that contradicts the data."""
    import inspect

    from jsonargparse import Namespace
    from jsonargparse.typing import import_object
    data, model = config.get("data"), config.get("model")
    if data is None or model is None or not data.get("class_path") or not model.get("class_path"):
        return []
    args = data.get("init_args") or Namespace()
    datamodule = import_object(data.class_path)(**args.as_dict())
    takes = inspect.signature(import_object(model.class_path).__init__).parameters
    if model.get("init_args") is None:
        model.init_args = Namespace()
    done = []
    for source, target, _ in LINKS:
        value = getattr(datamodule, source, None)
        if target not in takes or value is None:
            continue
        value = list(value) if isinstance(value, tuple) else value
        given, default = model.init_args.get(target), takes[target].default
        if given is not None and given != default and given != value:
            raise ValueError(f"model.init_args.{target}={given!r} contradicts the data ({data.class_path}: {value!r}); "
                             f"it is taken from the data, so leave it out of the model's arguments")
        model.init_args[target] = value
        done.append(target)
    return done


def _cli_class():
    from lightning.pytorch.cli import LightningCLI

    class PcweakCLI(LightningCLI):
        """LightningCLI whose model takes the dataset's facts from the datamodule (``LINKS``);
        ``--print_config`` prints the config with them filled in."""

        def parse_arguments(self, parser, args) -> None:
            import sys
            argv = list(sys.argv[1:] if args is None else args)
            printing = [a for a in argv if a == "--print_config" or a.startswith("--print_config=")]
            self.config = parser.parse_args([a for a in argv if a not in printing])
            sub = self.config.get("subcommand")
            section = self.config[sub] if sub else self.config  # the subcommand's own settings
            from .config_checks import check_model_data_pair, check_model_settings, check_precision, check_strategy
            check_model_data_pair(section)
            check_precision(section)
            check_strategy(section)
            linked = link_data_facts(section)  # ValueError: pcweak's one-line error
            check_model_settings(section)
            if sub == "fit":  # the losses against the data they train on (validate, test, predict train none)
                from .config_checks import check_training_against_data
                check_training_against_data(section)
            if sub == "predict" and self.config.predict.get("return_predictions") is None:
                self.config.predict.return_predictions = False  # written per batch (PredictionWriter), not kept
            if printing:
                import yaml
                full = yaml.safe_load(parser.dump(self.config, skip_validation=True))
                print(f"# model.init_args linked from the datamodule: {', '.join(linked) or 'none'}")
                print(yaml.safe_dump(full[sub] if sub else full, sort_keys=False), end="")
                raise SystemExit(0)

        def _parse_ckpt_path(self) -> None:  # LightningCLI reads the checkpoint's hyper-parameters here
            sub = self.config.get("subcommand")
            ckpt_path = self.config[sub].get("ckpt_path") if sub else None
            if sub in ("validate", "test", "predict") and ckpt_path is None:
                raise ValueError(f"--ckpt_path: pcweak {sub} needs the checkpoint of a trained model (a fit's "
                                 f"checkpoints/last.ckpt, say); the model the config builds has random weights, so "
                                 f"its {'predictions' if sub == 'predict' else 'scores'} would mean nothing")
            checkpoint = check_ckpt_path(ckpt_path)
            if checkpoint is not None:
                from .config_checks import check_against_checkpoint, check_resumed_data
                check_against_checkpoint(self.config[sub], checkpoint, str(ckpt_path))
                if sub == "fit":  # validate / test / predict may score a model on any data
                    check_resumed_data(self.config[sub], checkpoint, str(ckpt_path))
            super()._parse_ckpt_path()

        def instantiate_trainer(self, **kwargs: Any) -> Any:
            from .atomic_checkpoints import use_atomic_checkpoints
            trainer = super().instantiate_trainer(**kwargs)
            use_atomic_checkpoints(trainer)  # a full disk or a crash never leaves a cut checkpoint
            return trainer

        def before_fit(self) -> None:
            from .eval_sampler import check_evaluation_shares
            from .interrupted_checkpoint import InterruptedCheckpoint
            check_evaluation_shares(self.trainer, self.datamodule, "fit")
            share_run_folder(self.trainer)
            self.trainer.callbacks.append(InterruptedCheckpoint())  # Ctrl-C: resume from where it stopped

        def before_validate(self) -> None:
            evaluation_run(self.trainer, self.datamodule, "validate")

        def before_test(self) -> None:
            evaluation_run(self.trainer, self.datamodule, "test")

        def before_predict(self) -> None:
            from pathlib import Path
            from .predictions import PredictionWriter
            evaluation_run(self.trainer, self.datamodule, "predict")
            folder = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "predictions"
            ckpt = self.config.predict.get("ckpt_path")
            self.writer = PredictionWriter(folder, str(ckpt) if ckpt else None)
            self.trainer.callbacks.append(self.writer)

        def after_predict(self) -> None:
            import sys
            from ..tasks.across_processes import joined
            written = sum(joined([self.writer.written]))  # every process's (each predicts its share)
            if self.trainer.is_global_zero:
                print(f"pcweak predict: {written} predictions in {self.writer.folder}", file=sys.stderr)

        def after_fit(self) -> None:
            import sys
            cb = self.trainer.checkpoint_callback
            if cb is not None and self.trainer.is_global_zero:
                print(f"pcweak fit: checkpoints in {cb.dirpath} (last: {cb.last_model_path or 'none'}; "
                      f"best: {cb.best_model_path or 'none'})", file=sys.stderr)
    return PcweakCLI


def share_run_folder(trainer) -> None:
    """Loggers of one run that write under the same folder (a CSV and a TensorBoard logger with
    the same ``save_dir`` and ``name``) share the first one's version, so a run makes one
    ``version_N`` folder holding metrics, events and checkpoints, not one folder per logger."""
    loggers = list(trainer.loggers)
    if len(loggers) < 2:
        return
    first = loggers[0]
    root = getattr(first, "root_dir", None)
    for lg in loggers[1:]:
        if getattr(lg, "root_dir", None) == root and hasattr(lg, "_version"):
            lg._version = first.version


def evaluation_run(trainer, datamodule, stage: str) -> None:
    """A validate / test / predict run: a scene for each process (``check_evaluation_shares``),
    one run folder (``share_run_folder``), and quiet about the checkpoint callback, which saves
    nothing outside ``fit`` and would warn that the checkpoint it is handed lies in another
    run's folder (as a checkpoint to evaluate does)."""
    import warnings

    from .eval_sampler import check_evaluation_shares
    check_evaluation_shares(trainer, datamodule, stage)
    share_run_folder(trainer)
    warnings.filterwarnings("ignore", message=r"The dirpath has changed from", category=UserWarning)


LIGHTNING_CKPT_WORDS = ("best", "last", "hpc", "registry")  # ckpt_path values Lightning resolves itself


def check_ckpt_path(ckpt_path: str | None) -> dict | None:
    """A ``ckpt_path`` file (the command line's or a config's) read once without unpickling code,
    before Lightning reads it: a missing, damaged or code-carrying checkpoint is one ReaderError
    naming it (Lightning's own load ends in a traceback) and nothing in it runs. Returns the
    checkpoint (None without a file: no ``ckpt_path``, or a word Lightning resolves itself)."""
    from ..safe_load import torch_load
    if ckpt_path is None:
        return None
    value = str(ckpt_path)
    if value in LIGHTNING_CKPT_WORDS or value.startswith("registry:"):
        return None
    checkpoint = torch_load(value, "--ckpt_path")
    return checkpoint if isinstance(checkpoint, dict) else None


def run_lightning_cli(argv: Sequence[str], run: bool = True):
    """Run LightningCLI on ``argv`` (``fit --config ...``); with ``run=False`` return the CLI
    object with model, datamodule and trainer built (``argv`` then has no subcommand)."""
    import lightning as L
    import pcweak.train.datamodule  # noqa: F401  (importable class paths)
    import pcweak.train.lidar_datamodule  # noqa: F401
    import pcweak.tasks  # noqa: F401

    import sys
    restrict_config_imports()
    argv = list(argv)
    from_sys = run and argv == sys.argv[1:]
    cli = _cli_class()(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                       args=None if from_sys else argv, save_config_kwargs={"overwrite": True}, seed_everything_default=0,
                       parser_kwargs={"description": "pcweak training (LightningCLI)", "exit_on_error": False,
                                      **{c: {"exit_on_error": False} for c in TRAIN_COMMANDS}}, run=run)
    return 0 if run else cli

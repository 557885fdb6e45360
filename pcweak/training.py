"""``pcweak fit|validate|test|predict`` through LightningCLI (``--print_config`` works).

Configs name the model and data classes with ``class_path`` (see ``configs/``); any option can
be overridden on the command line, e.g. ``--trainer.max_epochs 20 --trainer.devices 2
--trainer.strategy ddp``; ``--ckpt_path last.ckpt`` resumes.
"""
from __future__ import annotations

from typing import Sequence

TRAIN_COMMANDS = ("fit", "validate", "test", "predict")


def run_lightning_cli(argv: Sequence[str], run: bool = True):
    """Run LightningCLI on ``argv`` (``fit --config ...``); with ``run=False`` return the CLI
    object with model, datamodule and trainer built (``argv`` then has no subcommand)."""
    import lightning as L
    from lightning.pytorch.cli import LightningCLI

    import pcweak.data.datamodule  # noqa: F401  (importable class paths)
    import pcweak.data.lidar_datamodule  # noqa: F401
    import pcweak.tasks  # noqa: F401

    import sys
    argv = list(argv)
    from_sys = run and argv == sys.argv[1:]
    cli = LightningCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                       args=None if from_sys else argv, save_config_kwargs={"overwrite": True}, seed_everything_default=0,
                       parser_kwargs={"description": "pcweak training (LightningCLI)"}, run=run)
    return 0 if run else cli

"""One training run of a YAML config with overrides, quiet and with one progress line per
epoch: what ``pcweak demo`` and ``pcweak bench train-weak`` train with."""
from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence, TextIO

# LightningCLI overrides of a semantic config that set its supervision (the demo's three rows
# and the settings of ``pcweak bench train-weak``)
SUPERVISION_RUNS: dict[str, list[str]] = {
    "full": ["--data.init_args.supervision", "full"],
    "points": ["--data.init_args.supervision", "points"],
    "points+propagate": ["--data.init_args.supervision", "points+pseudo", "--data.init_args.pseudo_method", "propagate",
                         "--model.init_args.loss_pseudo", "1.0"],
    "clicks+walk": ["--data.init_args.supervision", "points+pseudo", "--data.init_args.weak_kind", "clicks",
                    "--data.init_args.pseudo_method", "propagate", "--model.init_args.loss_pseudo", "1.0"],
    "boxes+gp": ["--data.init_args.supervision", "pseudo", "--data.init_args.weak_kind", "boxes",
                 "--data.init_args.pseudo_method", "gp-boxes", "--model.init_args.loss_pseudo", "1.0"],
}


def _progress_callback(prefix: str, name: str, epochs: int, stream: TextIO):
    """A Lightning callback printing one line per validation: epoch, val mIoU, elapsed time."""
    import lightning as L

    class Progress(L.Callback):
        def __init__(self) -> None:
            self.t0 = time.time()

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            m = trainer.callback_metrics.get("val/miou")
            if trainer.sanity_checking or m is None:
                return
            print(f"[{prefix}]   {name}: epoch {trainer.current_epoch + 1}/{epochs}, val mIoU {float(m):.3f}, "
                  f"{time.time() - self.t0:.0f} s", file=stream, flush=True)
    return Progress()


def fit_run(config: str | Path, overrides: Sequence[str], log_dir: str | Path, name: str, epochs: int,
            prefix: str = "train", stream: TextIO = sys.stdout) -> tuple[Any, dict[str, Any]]:
    """Fit ``config`` with ``overrides`` (LightningCLI arguments) for ``epochs`` epochs, a CSV
    log in ``log_dir/name``, no progress bar; Lightning's banners and third-party warnings are
    silenced. Returns the CLI (model, datamodule, trainer) and ``{"val_miou": last epoch's,
    "best_val_miou", "val_iou_per_class": last epoch's, "seconds", "checkpoint": best,
    "last_checkpoint"}``."""
    import lightning.pytorch  # noqa: F401  (its import sets its loggers to INFO: quieten them after it)
    import torch
    from .lightning_cli import run_lightning_cli
    for logger_name in ("lightning.pytorch", "lightning.fabric"):  # no GPU/TPU banners, tips or "Seed set" lines
        logging.getLogger(logger_name).setLevel(logging.WARNING)
    t = time.time()
    loggers = [{"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(log_dir), "name": name}}]
    with warnings.catch_warnings():  # third-party deprecation chatter is not the user's business
        warnings.filterwarnings("ignore", module=r"(lightning|torch|spconv|pytorch_lightning)(\.|$)")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        cli = run_lightning_cli(["--config", str(config), "--trainer.max_epochs", str(epochs),
                                 "--trainer.logger", json.dumps(loggers), "--trainer.enable_progress_bar", "false",
                                 "--trainer.enable_model_summary", "false", *overrides], run=False)
        cli.trainer.callbacks.append(_progress_callback(prefix, name, epochs, stream))
        cli.trainer.fit(cli.model, cli.datamodule)
    ckpt = cli.trainer.checkpoint_callback
    last = cli.trainer.callback_metrics.get("val/miou")
    best = ckpt.best_model_score if ckpt is not None and ckpt.best_model_score is not None else last
    as_float = lambda v: round(float(v), 4) if isinstance(v, (float, torch.Tensor)) else None  # noqa: E731
    last_ckpt = Path(ckpt.dirpath) / "last.ckpt" if ckpt is not None and ckpt.dirpath else None
    per_class = {k.split("/iou_", 1)[1]: as_float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/iou_")}
    return cli, {"val_miou": as_float(last), "best_val_miou": as_float(best), "val_iou_per_class": per_class,
                 "seconds": round(time.time() - t, 1),
                 "checkpoint": str(ckpt.best_model_path) if ckpt else None,
                 "last_checkpoint": str(last_ckpt) if last_ckpt is not None and last_ckpt.is_file() else None}

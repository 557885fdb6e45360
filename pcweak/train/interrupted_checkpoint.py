"""A checkpoint of a fit that Ctrl-C stops, so that it resumes from where it stopped rather than
from the last epoch's end (``last.ckpt``), which may be hours back on a large split.

Lightning catches the KeyboardInterrupt inside ``Trainer.fit`` (its "Detected KeyboardInterrupt,
attempting graceful shutdown") and tells the callbacks (``on_exception``) before it exits; this
one saves ``interrupted.ckpt`` beside the run's other checkpoints and says how to resume.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback


class InterruptedCheckpoint(Callback):
    """Saves ``<checkpoint folder>/interrupted.ckpt`` when Ctrl-C stops a fit after its first
    optimiser step (before it, there is nothing to resume), and prints the command's resume
    option. The folder is the ``ModelCheckpoint``'s (the run's ``checkpoints/``), else the
    trainer's ``default_root_dir``."""

    FILENAME = "interrupted.ckpt"

    def __init__(self) -> None:
        self.saved: Path | None = None

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.state.fn != "fit" or trainer.global_step < 1:
            return
        cb = trainer.checkpoint_callback
        folder = Path(cb.dirpath) if cb is not None and cb.dirpath else Path(trainer.default_root_dir)
        self.saved = folder / self.FILENAME
        # optimiser and loops too: a run to resume. Not trainer.save_checkpoint, whose closing
        # barrier waits for every process: in a distributed run a process the interrupt did not
        # reach (`kill -INT` to the first alone) trains on in its own collective, and both wait
        # forever. Each process's state is the same under DDP; the first writes it.
        dump = getattr(getattr(trainer, "_checkpoint_connector", None), "dump_checkpoint", None)  # Lightning 2.x
        if dump is None:  # a Lightning without it: its public save (and barrier)
            trainer.save_checkpoint(self.saved, weights_only=False)
        else:
            trainer.strategy.save_checkpoint(dump(weights_only=False), self.saved)  # by the first process only
        if trainer.is_global_zero:
            print(f"pcweak fit: interrupted at epoch {trainer.current_epoch}, step {trainer.global_step}; the same "
                  f"command with --ckpt_path {self.saved} resumes from there", file=sys.stderr)

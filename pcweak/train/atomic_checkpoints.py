"""Checkpoints written whole or not at all, beside where they go.

Lightning's own save writes a local checkpoint through an fsspec transaction, whose temporary
file lies in the system's temporary folder and is moved into place on commit: where that folder
is another file system than the run's (``/tmp`` on tmpfs, the run on a disk), the move is a copy,
and a full disk or a crash during it leaves a truncated ``last.ckpt`` that a resume cannot read
(measured: a run on a nearly full disk left a 1,044,480-byte cut ``best-epoch=0.ckpt``). Here a
local checkpoint is written to a temporary file in its own folder and renamed over the old one
(``npzio.atomic_write_bytes``), so a reader sees the old checkpoint or the new, and a failed
save leaves no file behind. Remote paths (``s3://``...) keep Lightning's save.
"""
from __future__ import annotations

import io
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are atomic (module docstring)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        import fsspec
        import torch
        from fsspec.implementations.local import LocalFileSystem

        from ..npzio import atomic_write_bytes
        fs, local = fsspec.core.url_to_fs(str(path))
        if storage_options is not None or not isinstance(fs, LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(local, buffer.getbuffer())


def use_atomic_checkpoints(trainer: Any) -> None:
    """Give ``trainer``'s strategy ``AtomicCheckpointIO`` where it has Lightning's default
    (a checkpoint plugin the config names is kept)."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()

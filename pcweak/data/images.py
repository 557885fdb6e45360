"""Lazy image readers for posed frames (colour and depth), shared by the dataset readers."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ReaderError


def image_loader(path: Path) -> Callable[[], np.ndarray]:
    """A zero-argument loader of an (H,W,3) uint8 RGB image (read on each call, not cached)."""
    def load() -> np.ndarray:
        from PIL import Image
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except OSError as e:
            raise ReaderError(f"{path}: unreadable image ({e})") from e
    return load


def depth_loader(path: Path, scale: float = 1000.0) -> Callable[[], np.ndarray]:
    """A loader of an (H,W) float32 depth map in metres from an integer image (``scale`` units per metre)."""
    def load() -> np.ndarray:
        from PIL import Image
        try:
            with Image.open(path) as im:
                return np.asarray(im, dtype=np.float32) / scale
        except OSError as e:
            raise ReaderError(f"{path}: unreadable depth image ({e})") from e
    return load


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file without decoding it."""
    from PIL import Image
    with Image.open(path) as im:
        return im.size

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


DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I", "F")  # PIL modes of one channel wide enough for depth in millimetres


def depth_loader(path: Path, scale: float = 1000.0) -> Callable[[], np.ndarray]:
    """A loader of an (H,W) float32 depth map in metres from a one-channel 16-bit, 32-bit or
    float image (``scale`` units per metre); ReaderError naming the file for an unreadable one,
    or one of colour or 8 bits (no depth in millimetres fits in 0-255)."""
    def load() -> np.ndarray:
        from PIL import Image
        try:
            with Image.open(path) as im:
                if im.mode not in DEPTH_MODES:
                    raise ReaderError(f"{path}: a depth image must be one channel of 16 or 32 bits (ScanNet's are 16-bit "
                                      f"PNGs in millimetres), this one is PIL mode {im.mode!r}: a colour or 8-bit image")
                return np.asarray(im, dtype=np.float32) / scale
        except OSError as e:
            raise ReaderError(f"{path}: unreadable depth image ({e})") from e
    return load


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file without decoding it; ReaderError naming the file for
    one that is not an image."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as e:
        raise ReaderError(f"{path}: unreadable image ({e})") from e

"""Deterministic, atomic ``.npz`` writing and checked reading.

``numpy.savez`` stamps every member with the current time, so two runs give different
bytes; here every member gets a fixed timestamp and a fixed order, so the same arrays always
give byte-identical files. Writes go to a temporary file in the target folder and are moved
into place with ``os.replace``: a crash never leaves a half-written output.
"""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import ReaderError

_EPOCH = (1980, 1, 1, 0, 0, 0)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename). Creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise ``arrays`` to npz bytes, deterministically (sorted keys, fixed timestamps)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            arr = np.asarray(arrays[key])
            if arr.dtype == object:
                raise TypeError(f"npz key {key!r}: object arrays are not allowed")
            member = io.BytesIO()
            np.lib.format.write_array(member, arr if arr.flags.c_contiguous else arr.copy(order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Atomically write a deterministic compressed npz."""
    return atomic_write_bytes(path, npz_bytes(arrays))


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an npz into memory; corrupt or missing files raise ReaderError."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:  # ours to close: np.load leaks its own handle when the zip is corrupt
            z = np.load(f, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an npz archive")
            with z:
                return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ReaderError(f"{path}: not a readable .npz file ({e})") from e

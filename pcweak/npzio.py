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
from typing import Iterable, Mapping

import numpy as np

from .errors import ReaderError

_EPOCH = (1980, 1, 1, 0, 0, 0)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename). Creates parent folders;
    IsADirectoryError naming ``path`` where it is a folder (before a temporary file is made
    beside it, in the folder above); any other OSError (a read-only folder, a full disk) names
    ``path``, not the temporary file, which is removed."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give the file to write")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; an output gets the usual mode
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:  # a read-only folder, a full disk: name the output
            raise type(e)(e.errno, f"cannot write {path} ({e.strerror})") from None
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


def npz_members(path: str | os.PathLike) -> dict[str, int]:
    """Member name (without ``.npy``) -> declared uncompressed size in bytes, read from the
    zip's directory alone (nothing is decompressed); ReaderError for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise ReaderError(f"{path}: not a readable .npz file (a single .npy array, not an npz archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            return {i.filename[:-4] if i.filename.endswith(".npy") else i.filename: i.file_size for i in zf.infolist()}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ReaderError(f"{path}: not a readable .npz file ({e})") from e


def load_npz(path: str | os.PathLike, allowed: set[str] | frozenset[str] | None = None,
             max_bytes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Read every array of an npz into memory; corrupt or missing files raise ReaderError.

    ``allowed``: the member names the caller accepts; any other is refused before anything is
    decompressed (an unknown member may be a deflate bomb). ``max_bytes``: per member, the most
    uncompressed bytes it may declare (checked from the zip's directory, before decompressing)."""
    path = Path(path)
    members = npz_members(path)
    if allowed is not None:
        unknown = sorted(set(members) - set(allowed))
        if unknown:
            raise ReaderError(f"{path}: unknown keys {unknown}; expected some of {sorted(allowed)}")
    for name, limit in (max_bytes or {}).items():
        if name in members and members[name] > limit:
            raise ReaderError(f"{path}: key {name!r} declares {members[name]} bytes, more than the {limit} its "
                              f"shape allows")
    try:
        with open(path, "rb") as f:  # ours to close: np.load leaks its own handle when the zip is corrupt
            z = np.load(f, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an npz archive")
            with z:
                return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ReaderError(f"{path}: not a readable .npz file ({e})") from e


def check_output_file(out: str | os.PathLike, suffix: str, flag: str) -> None:
    """ValueError naming ``flag`` unless ``out`` names a file ending in ``suffix`` (any case)
    that is not a folder: checked before the work that writes it (bytes of one format under
    another's name, or a folder where a file is meant, would otherwise fail or mislead after it)."""
    p = Path(out)
    if p.suffix.lower() != suffix:
        raise ValueError(f"{flag} {out}: the file name must end in {suffix} (the file is written as {suffix[1:].upper()})")
    if p.is_dir():
        raise ValueError(f"{flag} {out}: is a folder; give the {suffix[1:].upper()} file to write")
    check_writable(p, flag)


def names_npz_file(out: str | os.PathLike) -> bool:
    """True when an output argument, as typed, names the one ``.npz`` file to write: it ends in
    ``.npz`` (no trailing separator) and is no existing folder. Any other name is a folder that
    gets one ``<scene>.npz`` per scene."""
    return str(out).lower().endswith(".npz") and not Path(out).is_dir()


def check_writable(path: str | os.PathLike, flag: str) -> None:
    """ValueError naming ``flag`` when ``path`` (a file or folder to write, existing or not)
    cannot be made where it is: the nearest existing folder at or above it is read-only (a
    read-only mount, a folder without write permission for this user). Checked before the work
    whose output it is; a write can still fail later (a full disk), which names the file."""
    part = _nearest_existing(path)
    if part is None:
        return
    folder = part if part.is_dir() else part.parent  # a file is replaced by a rename in its folder
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: cannot write into {folder} (read-only, or no write permission)")


def check_not_an_input(out: str | os.PathLike, inputs: Iterable[tuple[str, str | os.PathLike]], flag: str) -> None:
    """ValueError naming ``flag`` when ``out`` is the same file as one of ``inputs`` (``(what,
    path)`` pairs, e.g. ``("the scene's file", "room.npz")``): the write would replace what the
    command reads, a pseudo-label file over its scene or its weak labels. Links count as the file
    they name."""
    if not Path(out).is_file():
        return
    for what, path in inputs:
        if Path(path).is_file() and os.path.samefile(out, path):
            raise ValueError(f"{flag} {out}: is {what}, which this command reads; writing there would replace it: "
                             f"give another path")


def _nearest_existing(path: str | os.PathLike) -> Path | None:
    """``path`` or its nearest parent that exists (None where none does: a relative path whose
    every part is still to be made)."""
    return next((part for part in (Path(path), *Path(path).parents) if part.exists()), None)


def can_hold_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder or can be made one: its nearest existing part is a folder
    (a cache folder named like a file, or under one, would fail at its first write)."""
    part = _nearest_existing(path)
    return part is None or part.is_dir()

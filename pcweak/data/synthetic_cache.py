"""Procedural scenes kept on disk between runs (the training datamodules' synthetic datasets).

A cached scene file is used only when the generator code that made it is the code that would
make it now: each file's ``meta["generator"]`` holds ``code_stamp.reader_stamp()``, a hash of the
generators' source files and what they import (they live in ``pcweak.data`` beside the readers
and name their scenes through ``address``, which reaches every reader, so the readers' group
stamps both), and a file without it, with another, or unreadable is made again.
So upgrading pcweak (or editing a generator) never trains on rooms of an older generator, and
pseudo-labels made from them are redone too (their job fingerprint hashes the scene file).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..code_stamp import reader_stamp
from ..errors import ReaderError
from ..npzio import load_npz
from ..scene import Scene

def stamp_of(path: Path) -> str | None:
    """The generator stamp a cached scene file holds; None for a missing or unreadable file or
    one without a stamp."""
    try:
        d = load_npz(path, max_bytes={"meta": 1 << 20})
        meta = json.loads(str(d["meta"])) if "meta" in d else {}
    except (ReaderError, ValueError):
        return None
    return meta.get("generator") if isinstance(meta, dict) else None


def ensure_cached(path: str | Path, make: Callable[[], Scene]) -> bool:
    """Writes ``make()`` to ``path`` (atomically, stamped) unless the file there was made by
    the current generators; True when it was (re)made."""
    path = Path(path)
    if path.is_file() and stamp_of(path) == reader_stamp():
        return False
    scene = make()
    scene.meta = {**scene.meta, "generator": reader_stamp()}
    scene.save(path)
    return True

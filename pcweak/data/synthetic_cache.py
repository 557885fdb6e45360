"""Procedural scenes kept on disk between runs (the training datamodules' synthetic datasets).

A cached scene file is used only when the generator code that made it is the code that would
make it now: each file's ``meta["generator"]`` holds ``generator_stamp()``, a hash of the
generators' source files and what they import, and a file without it, with another, or
unreadable is made again.
So upgrading pcweak (or editing a generator) never trains on rooms of an older generator, and
pseudo-labels made from them are redone too (their job fingerprint hashes the scene file).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..code_stamp import READER_MODULES, code_stamp
from ..errors import ReaderError
from ..npzio import load_npz
from ..scene import Scene

def generator_stamp() -> str:
    """``code_stamp`` of ``code_stamp.READER_MODULES``: the generators live in ``pcweak.data``
    beside the readers and import what those compute with (``address`` for their scenes'
    names, ``scene``), so one group stamps both."""
    return code_stamp(READER_MODULES)


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
    if path.is_file() and stamp_of(path) == generator_stamp():
        return False
    scene = make()
    scene.meta = {**scene.meta, "generator": generator_stamp()}
    scene.save(path)
    return True

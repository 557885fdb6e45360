"""Procedural scenes kept on disk between runs (the training datamodules' synthetic datasets).

A cached scene file is used only when the generator code that made it is the code that would
make it now: each file's ``meta["generator"]`` holds ``generator_stamp()``, a hash of the
generators' source files, and a file without it, with another, or unreadable is made again.
So upgrading pcweak (or editing a generator) never trains on rooms of an older generator, and
pseudo-labels made from them are redone too (their job fingerprint hashes the scene file).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Callable

from ..errors import ReaderError
from ..npzio import load_npz
from ..scene import Scene

# the modules whose code decides what a synthetic scene holds
GENERATOR_MODULES = ("pcweak.data.synthetic_indoor", "pcweak.data.synthetic_lidar", "pcweak.data.raycast",
                     "pcweak.geometry", "pcweak.classes", "pcweak.kitti_objects", "pcweak.camera")


@lru_cache(maxsize=None)
def code_stamp(modules: tuple[str, ...]) -> str:
    """16 hex digits of the SHA-256 of the source files of ``modules`` (dotted names, in the
    order given; a package stands for every module file in its folder, by name), read without
    importing them: what a file made by that code records, so that a change of the code makes
    the file again."""
    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ImportError(f"code_stamp: no source for module {name!r}")
        if spec.submodule_search_locations:  # a package: its modules, each under its own name
            files = [(f"{name}.{f.stem}" if f.stem != "__init__" else name, f)
                     for f in sorted(Path(spec.origin).parent.glob("*.py"))]
        else:
            files = [(name, Path(spec.origin))]
        for mod, path in files:
            h.update(mod.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def generator_stamp() -> str:
    """``code_stamp`` of ``GENERATOR_MODULES``."""
    return code_stamp(GENERATOR_MODULES)


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

"""``pcweak import`` of a folder of scenes: each scene's annotation tables found by its name in
folders of tables, one weak-label file ``<output>/<scene>.npz`` written per scene (atomically),
the folder ``pcweak label --weak`` reads. Lives beside ``label_jobs`` because it wires the
readers to ``weak.from_tables``.

Each file records a fingerprint of what made it (the scene's identity, the tables' content, the
options, pcweak's version); a resumed import skips a scene only when its file's fingerprint
equals the job's, so a file made from other tables or options is never kept.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PcweakError
from .scene import WeakLabels

TABLE_SUFFIXES = (".csv", ".tsv", ".txt")  # what a folder of tables holds as tables; other files are left alone


@dataclass(frozen=True)
class ImportOptions:
    """What every scene of one import shares: the class list where a scene has none, the
    coordinate frame of the tables, the snapping distance (metres) and the reader options."""
    classes: tuple[str, ...] | None
    coords: str
    max_distance: float
    reader: dict[str, Any]


def _is_table(f: Path) -> bool:
    return f.is_file() and f.suffix.lower() in TABLE_SUFFIXES and not f.name.startswith(".")


def tables_by_scene(names: list[str], folders: list[str | Path]) -> dict[str, list[Path]]:
    """Each scene name's tables, from every folder of ``folders``: ``<folder>/<name>.csv``
    (``.tsv``, ``.txt``) and every such file in ``<folder>/<name>/``, sorted. A scene with none
    maps to ``[]``. ValueError naming a folder that is not one, and the table files that match
    no scene (a misspelt name would otherwise lose its labels without a word)."""
    wanted = set(names)
    found: dict[str, list[Path]] = {n: [] for n in names}
    stray: list[Path] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise ValueError(f"{folder}: a folder of scenes takes folders of tables (<folder>/<scene>.csv or "
                             f"<folder>/<scene>/*.csv), and this is not a folder")
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and entry.name in wanted:
                found[entry.name] += sorted(f for f in entry.iterdir() if _is_table(f))
            elif _is_table(entry):
                (found[entry.stem] if entry.stem in wanted else stray).append(entry)
    if stray:
        import difflib
        first = stray[0]
        close = difflib.get_close_matches(first.stem, names, n=1)
        raise ValueError(f"{len(stray)} table file{'s' if len(stray) > 1 else ''} match{'' if len(stray) > 1 else 'es'} no "
                         f"scene of the folder ({', '.join(str(s) for s in stray[:5])}{', ...' if len(stray) > 5 else ''}); "
                         f"a table is named <scene>.csv or lies in <scene>/"
                         + (f" ({first.name}: did you mean {close[0]}?)" if close else ""))
    return found


def import_fingerprint(address: str, tables: list[Path], options: ImportOptions, output: str | Path) -> str:
    """The JSON fingerprint of importing ``tables`` for the scene at ``address``: the scene's
    identity (``label_jobs.scene_identity``, ``output`` left out of its files), each table's
    SHA-256, the options and pcweak's version."""
    from . import __version__
    from .label_jobs import file_sha256, scene_identity
    reader_files = {k: file_sha256(v) for k, v in sorted(options.reader.items()) if Path(str(v)).is_file()}
    return json.dumps({"scene": scene_identity(address, output), "tables": [[str(t), file_sha256(t)] for t in tables],
                       "classes": list(options.classes or ()), "coords": options.coords, "max_distance": options.max_distance,
                       "reader": {k: str(v) for k, v in sorted(options.reader.items())}, "reader_sha256": reader_files,
                       "pcweak": __version__}, sort_keys=True)


def is_current(output: Path, fingerprint: str) -> bool:
    """True when ``output`` is a readable weak-label file that an import with ``fingerprint`` made."""
    try:
        return WeakLabels.load(output).meta.get("fingerprint") == fingerprint
    except PcweakError:
        return False  # damaged: imported again


def import_scene(address: str, tables: list[Path], options: ImportOptions, output: Path, fingerprint: str) -> WeakLabels:
    """Read ``tables`` (every one before the scene), read the scene, write its weak labels to
    ``output`` stamped with ``fingerprint``; returns them. The errors of ``weak_from_tables``."""
    from .data.address import load_scene
    from .weak.from_tables import read_table, weak_from_tables
    read = [read_table(t) for t in tables]
    scene = load_scene(address, **options.reader)
    weak = weak_from_tables(scene, read, classes=options.classes, max_distance=options.max_distance, coords=options.coords)
    weak.meta["fingerprint"] = fingerprint
    weak.save(output)
    return weak

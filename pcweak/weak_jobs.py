"""Weak-label files for a folder of scenes, one ``<output>/<scene>.npz`` each (written
atomically), the folder ``pcweak label --weak`` reads: ``pcweak import`` (each scene's
annotation tables, found by its name in folders of tables) and ``pcweak simulate`` (drawn from
each scene's ground truth). Lives beside ``label_jobs`` because it wires the readers to ``weak``.

Each file records a fingerprint of what made it (the scene's identity, the settings, the
content of the files they name, pcweak's version and a hash of the code that reads and
simulates); a rerun skips a scene only when its file's fingerprint equals the job's, so a file
made from other inputs, settings or code is never kept.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import PcweakError
from .scene import WeakLabels

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".label")  # what a folder of tables holds as tables; other files are left alone


def _is_table(f: Path) -> bool:
    from .weak.box_json import LABELCLOUD_CLASSES_FILE  # labelCloud's settings in its label folder: no scene's boxes
    return f.is_file() and f.suffix.lower() in TABLE_SUFFIXES and not f.name.startswith(".") \
        and f.name != LABELCLOUD_CLASSES_FILE


def _scene_of(table: Path) -> str:
    """The scene a table file is named for: its stem, less the point cloud's own suffix that
    Supervisely's and CVAT's exports keep (``ann/<cloud>.pcd.json``)."""
    from .data.address import FILE_KINDS
    inner = Path(table.stem).suffix
    return table.stem[: -len(inner)] if table.suffix.lower() == ".json" and inner.lower() in FILE_KINDS else table.stem


def tables_by_scene(names: list[str], folders: list[str | Path]) -> dict[str, list[Path]]:
    """Each scene name's tables, from every folder of ``folders``: ``<folder>/<name>.csv``
    (``.tsv``, ``.txt``, an annotation tool's ``.json`` boxes, ``<name>.pcd.json`` as Supervisely
    names them, a ``.label`` file; a SemanticKITTI scan ``<seq>_<id>`` also ``<seq>/<folder>/<id>.label``,
    as ScribbleKITTI keeps its ``scribbles/``) and every such file in ``<folder>/<name>/``, sorted. A scene with none
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
                name = _scene_of(entry)
                if name not in wanted and f"{folder.resolve().parent.name}_{name}" in wanted:  # <seq>/scribbles/<id>.label
                    name = f"{folder.resolve().parent.name}_{name}"
                (found[name] if name in wanted else stray).append(entry)
    if stray:
        import difflib
        first = stray[0]
        close = difflib.get_close_matches(first.stem, names, n=1)
        raise ValueError(f"{len(stray)} table file{'s' if len(stray) > 1 else ''} match{'' if len(stray) > 1 else 'es'} no "
                         f"scene of the folder ({', '.join(str(s) for s in stray[:5])}{', ...' if len(stray) > 5 else ''}); "
                         f"a table is named <scene>.csv or lies in <scene>/"
                         + (f" ({first.name}: did you mean {close[0]}?)" if close else ""))
    return found


def weak_fingerprint(address: str, settings: dict[str, Any], files: list[Path], reader: dict[str, Any],
                     output: str | Path) -> str:
    """The JSON fingerprint of one scene's weak-label file: the scene's identity
    (``label_jobs.scene_identity``, ``output`` left out of its files), ``settings`` (plain JSON
    values), the SHA-256 of each of ``files`` (the tables), the reader options as a labelling
    job's fingerprint holds them (``label_jobs.reader_identity``), pcweak's version and a hash of
    the source of the modules that read and simulate (``code_stamp.WEAK_MODULES``)."""
    from .code_stamp import WEAK_MODULES, made_by
    from .label_jobs import file_sha256, reader_identity, scene_identity
    return json.dumps({"scene": scene_identity(address, output), "settings": settings,
                       "files": [[str(f), file_sha256(f)] for f in files], **reader_identity(reader),
                       **made_by(WEAK_MODULES)}, sort_keys=True)


def is_current(output: Path, fingerprint: str) -> bool:
    """True when ``output`` is a readable weak-label file made by a job with ``fingerprint``."""
    try:
        return WeakLabels.load(output).meta.get("fingerprint") == fingerprint
    except PcweakError:
        return False  # damaged: made again


def write_weak_files(scenes: list[tuple[str, str]], out: Path, make: Callable[[str, str], WeakLabels],
                     fingerprint: Callable[[str, str], str], overwrite: bool = False,
                     progress: Callable[[Iterable[Any], int, str], Iterable[Any]] = lambda items, total, stage: items,
                     workers: int = 1) -> tuple[dict[str, int], list[str]]:
    """For each ``(name, address)`` of ``scenes``, ``out/<name>.npz`` from ``make(name, address)``
    stamped with ``fingerprint(name, address)``; an existing file with the same fingerprint is
    kept unless ``overwrite``. A scene whose files ``make`` refuses (``label_jobs.SCENE_ERRORS``)
    is left out and the others written. ``workers`` > 1 makes the scenes in that many processes
    (``parallel.process_map``; ``make`` must then pickle: a module-level function or a
    ``functools.partial`` of one), each writing its own file; the files are the same whatever
    the count. ``progress(items, total, stage)`` wraps the scenes checked against their existing
    files (``stage`` "check") and then the stream of finished scenes ("make"): tqdm bars.
    Returns the counts ``written``, ``skipped_existing`` and ``redone_other_inputs``, and
    ``"<name>: <error>"`` for each scene refused, in the order of ``scenes``. A worker killed
    from outside (the out-of-memory killer) ends it in one ``PcweakError`` naming the scenes
    left; the files of those finished stay in place."""
    from .label_jobs import remove_stale_temporaries
    from .parallel import WorkerDied, process_map
    out.mkdir(parents=True, exist_ok=True)
    counts = {"written": 0, "skipped_existing": 0, "redone_other_inputs": 0}
    todo: list[tuple[Any, str, str, str, str]] = []
    for name, address in progress(scenes, len(scenes), "check"):
        target = out / f"{name}.npz"
        stamp = fingerprint(name, address)
        remove_stale_temporaries(target)
        if target.exists() and not overwrite:
            if is_current(target, stamp):
                counts["skipped_existing"] += 1
                continue
            counts["redone_other_inputs"] += 1  # made from other inputs or settings (or damaged): made again
        todo.append((make, name, address, str(target), stamp))
    problems: dict[int, str] = {}
    try:
        for i, problem in progress(process_map(_write_one, todo, workers), len(todo), "make"):
            if problem is None:
                counts["written"] += 1
            else:
                problems[i] = f"{todo[i][1]}: {problem}"
    except WorkerDied as e:
        raise e.for_scenes([job[1] for job in todo], "", "the files of the scenes finished are kept, and the same command "
                           "with fewer --workers makes the rest") from None
    return counts, [problems[i] for i in sorted(problems)]


def _write_one(job: tuple[Callable[[str, str], WeakLabels], str, str, str, str]) -> str | None:
    """One scene of ``write_weak_files``: its file made and written (None), or why its scene's
    files were refused (``label_jobs.SCENE_ERRORS``)."""
    from .label_jobs import SCENE_ERRORS
    make, name, address, target, stamp = job
    try:
        weak = make(name, address)
    except SCENE_ERRORS as e:
        return str(e) or type(e).__name__
    weak.meta["fingerprint"] = stamp
    weak.save(target)
    return None

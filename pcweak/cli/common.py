"""What several ``pcweak`` commands share: reader options, checks of outputs and of options
that act on folders only, the end-of-folder refusal, progress while resuming, ``--param``
values, and the stage lines of a long scene."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import PcweakError
from ..npzio import check_not_an_input, names_npz_file


def reader_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if getattr(args, "axis_align", None):
        kw["axis_alignment"] = args.axis_align
    return kw


def scene_inputs(address: str) -> list[tuple[str, Path]]:
    """The files the reader of the scene at ``address`` names, as ``npzio.check_not_an_input``
    takes them."""
    from ..data.address import source_files
    return [(f"a file of scene {address}", f) for f in source_files(address, folders=False)]


def check_workers(workers: int) -> None:
    """ValueError unless ``--workers`` is at least 1."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")


def check_folder_options(args: argparse.Namespace, overwrite_does: str) -> None:
    """ValueError naming ``--overwrite`` or ``--workers`` given to simulate / import of one scene:
    both act on a folder of scenes only, and would be dropped without a word."""
    if args.overwrite:
        raise ValueError(f"--overwrite goes with a folder of scenes (it {overwrite_does}); one scene's file is always "
                         "written anew")
    check_one_process(args.workers, "made")


def check_one_process(workers: int, verb: str) -> None:
    """ValueError naming ``--workers`` given to a command on one scene, which it ``verb``s (made,
    read) in this process: the option acts on a folder of scenes only."""
    if workers != 1:
        raise ValueError(f"--workers goes with a folder of scenes (scenes {verb} at once); one scene is {verb} in this process")


def one_scene_output(out: str, address: str, inputs: list[tuple[str, Path]]) -> Path:
    """The file ``-o`` (as typed) names for simulate / import of the one scene at ``address``:
    ``out`` where it names an ``.npz`` file (``npzio.names_npz_file``), else the scene's
    ``out/<scene>.npz``, as ``pcweak label`` and a folder of scenes write it; neither one of
    ``inputs`` (``check_not_an_input``) nor another existing file."""
    check_not_an_input(Path(out), inputs, "-o")
    if names_npz_file(out):
        return Path(out)
    check_not_another_file(out)
    from ..data.address import scene_name
    path = Path(out) / f"{scene_name(address)}.npz"
    check_not_an_input(path, inputs, "-o")
    return path


def check_not_another_file(out: str) -> None:
    """ValueError when ``-o`` names an existing file that is not ``.npz``: neither the label file
    to write nor a folder to write ``<scene>.npz`` in (it would be written over, or fail)."""
    if Path(out).is_file() and not names_npz_file(out):
        why = "given as a folder (trailing separator)" if out.endswith(("/", os.sep)) else "but not a .npz file"
        raise ValueError(f"-o {out}: is a file {why}; give the .npz file to write, or a folder (written <scene>.npz inside)")


def folder_output(out: str, folder: str) -> Path:
    """``-o`` (as typed) of a command run on the folder of scenes ``folder``: a folder (one
    ``<scene>.npz`` each), not ``folder`` itself (``check_not_the_scene_folder``)."""
    path = Path(out)
    if path.exists() and not path.is_dir() or names_npz_file(out):
        raise ValueError(f"-o {out}: a folder of scenes is written one <scene>.npz each; give a folder")
    check_not_the_scene_folder(path, folder)
    return path


def check_not_the_scene_folder(out: Path, folder: str,
                                why: str = "the <scene>.npz files written there would be read as scenes of it next "
                                           "time: give another folder") -> None:
    """ValueError when ``out`` is the folder of scenes ``folder`` itself, saying ``why`` not: by
    default, the ``<scene>.npz`` files written there would be taken for scenes of the folder the
    next time it is read."""
    from ..data.collection import scene_folder_path
    if out.is_dir() and out.resolve() == scene_folder_path(folder).resolve():
        raise ValueError(f"-o {out}: is the folder of scenes itself; {why}")


def checking_outputs(items: Any, total: int, verb: str) -> Any:
    """``items`` (a folder's scenes) with a progress bar while a resumed job checks which of
    their outputs are current, shown once it has taken two seconds (thousands of scans) and
    cleared after, before the bar of the work itself."""
    from tqdm import tqdm
    return tqdm(items, total=total, desc=f"{verb}: checking outputs", unit="scene", delay=2, leave=False)


def scenes_refused(failed: list[str], total: int, done: str, verb: str) -> PcweakError:
    """The one error that ends a folder job after the scenes ``failed`` (``"<name>: <why>"``,
    in the folder's order) were refused and the other ones of ``total`` were ``done``: the
    first five named, and that the same command run again ``verb`` only what is missing."""
    rest = total - len(failed)
    others = f"the other {rest} {'are' if rest != 1 else 'is'} {done}" if rest else f"none is {done}"
    return PcweakError(f"{len(failed)} of the {total} scenes could not be {done} ({'; '.join(failed[:5])}"
                       f"{'; ...' if len(failed) > 5 else ''}); {others}. Fix or remove {'them' if len(failed) > 1 else 'it'} "
                       f"and run the same command again: it {verb} only what is missing")


def param_values(items: list[str]) -> dict[str, Any]:
    out = {}
    for kv in items:
        if "=" not in kv:
            raise ValueError(f"--param expects NAME=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        out[k] = type_of(v)
    return out


def check_one_scene(arg: str, what: str) -> None:
    """ValueError when ``arg`` is a folder of scenes where a command takes one scene (``what``
    it does with one), naming the folder's first scene."""
    from ..data.collection import enumerate_scenes, names_one_scene
    if not names_one_scene(arg):
        scenes = enumerate_scenes(arg)
        raise ValueError(f"{arg}: a folder of {len(scenes)} scene(s); {what}: give one of them, e.g. {scenes[0][1]}")


def file_of_the_scene(path: str, address: str, flag: str) -> Path:
    """The label file ``--pseudo`` / ``--weak`` gives for the one scene at ``address``: the file
    ``path``, or in the folder ``path`` (a folder job's output) the scene's ``<scene>.npz``."""
    p = Path(path)
    if not p.is_dir():
        return p
    from ..data.address import scene_name
    name = scene_name(address)
    if not (p / f"{name}.npz").is_file():
        raise FileNotFoundError(f"{flag} {p}: a folder without {name}.npz, the file of scene {address}")
    return p / f"{name}.npz"


def type_of(v: str) -> Any:
    """Parse a ``--param`` value: int, float, bool, JSON, else the string."""
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


@contextlib.contextmanager
def stage_lines(command: str) -> Any:
    """While inside, pcweak's stage messages (its loggers' INFO records: "partition 3 (...) made
    and walked") reach stderr as ``pcweak COMMAND: [  12.3 s] message``, so one long scene shows
    where it is."""
    start = time.perf_counter()

    class Elapsed(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"pcweak {command}: [{time.perf_counter() - start:6.1f} s] {record.getMessage()}"

    logger = logging.getLogger("pcweak")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Elapsed())
    handler.setLevel(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

"""Class-agnostic 3D proposal files (``pcweak label --groups``): one proposal id per point of
the scene, in the scene's point order, -1 for a point in none. Any whole numbers name
proposals, so a segmenter's instance ids, ScanNet's ``label * 1000 + instance`` per point, or
cluster ids all serve; only which points share an id is read.

- ``.npy``: an (N,) integer array (read without pickles: ``safe_load.numpy_load``).
- ``.txt``: one integer per line.
- ``.npz``: a pcweak pseudo-label file, whose ``instance`` is taken (an instance model's
  predictions, ``pcweak label --method model``, or another labeller's instances).

A folder of scenes gives one ``<scene>.npy`` / ``.txt`` / ``.npz`` each (``groups_file``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import PcweakError, ReaderError
from ..scene import PseudoLabels, Scene
from .group_evidence import check_groups

GROUP_SUFFIXES = (".npy", ".txt", ".npz")


def groups_file(path: str | Path, scene_name: str) -> Path | None:
    """The proposal file of scene ``scene_name`` that ``path`` names: ``path`` itself when it is
    a file, else ``path/<scene>`` with one of ``GROUP_SUFFIXES`` (None where it has none);
    ReaderError naming the folder where it holds two."""
    p = Path(path)
    if p.is_file():
        return p
    found = [p / f"{scene_name}{sfx}" for sfx in GROUP_SUFFIXES if (p / f"{scene_name}{sfx}").is_file()]
    if len(found) > 1:
        raise ReaderError(f"--groups {p}: scene {scene_name!r} has {len(found)} proposal files "
                          f"({', '.join(f.name for f in found)}); keep one")
    return found[0] if found else None


def read_groups(path: str | Path, scene: Scene) -> np.ndarray:
    """(N,) int64 proposal id per point of ``scene`` from ``path`` (module docstring);
    ReaderError naming the file for another suffix, an unreadable file, another point count or
    ids that are not whole numbers >= -1."""
    from ..safe_load import numpy_load
    from ..textio import whole_numbers
    p = Path(path)
    if p.suffix.lower() not in GROUP_SUFFIXES:
        raise ReaderError(f"--groups {p}: expected a {', '.join(GROUP_SUFFIXES)} file of one proposal id per point")
    if not p.is_file():
        raise ReaderError(f"--groups {p}: {'not a file' if p.exists() else 'no such file'}")
    if p.suffix.lower() == ".npy":
        ids = numpy_load(p, "--groups")
    elif p.suffix.lower() == ".txt":
        ids = whole_numbers(p, "a proposal id")
    else:
        try:
            pseudo = PseudoLabels.load(p)
        except PcweakError as e:
            raise ReaderError(f"--groups: {e}") from e  # the reader's message names the file
        ids = pseudo.instance
    try:
        return check_groups(ids, scene.num_points, f"{p} (proposals of scene {scene.name!r})")
    except PcweakError as e:
        raise ReaderError(str(e)) from None

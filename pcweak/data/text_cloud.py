"""Point clouds as text, one point a line: Semantic3D's scans (``x y z intensity r g b``, their
labels in ``<name>.labels`` beside them), Leica's PTS (a point count first, then the same seven
columns), CloudCompare's ASCII export (``.txt`` / ``.xyz``, optionally a first line naming the
columns, ``//X,Y,Z,R,G,B,...``) and plain ``x y z`` lists.

Columns are separated by spaces, tabs, commas or semicolons. A first line naming the columns
(matched whatever their case; ``point_fields`` lists the names of colour channels, intensity,
labels and instances, and ``nx ny nz`` are normals) says what each holds; without one the count
of columns does, where only one reading is common: 3 is ``x y z``; 6 is ``x y z`` and colours, or
normals where every row of the last three has unit length; 4 and 7 are ``x y z intensity`` and
``x y z intensity r g b`` in a PTS file or a Semantic3D scan (its ``.labels`` beside it), and are
refused elsewhere, where ``x y z label`` and ``x y z r g b label`` are as common. A file whose
columns cannot be told is refused with the line that would name them.

Semantic3D's ``.labels`` (one whole number a point: 0 unlabelled, 1-8 its classes) read as
``classes.SEMANTIC3D8``; a label column of a file that names no classes gets placeholders up to
the highest label (``classes.placeholder_class``), which ``pcweak import --classes`` can name.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..classes import SEMANTIC3D8, placeholder_class
from ..errors import ReaderError
from ..scene import Scene
from .point_fields import (COLOR_FIELDS, INSTANCE_FIELDS, INTENSITY_FIELDS, NORMAL_FIELDS, SEMANTIC_FIELDS, first_field,
                           unit_colors, whole_labels)

# files whose seven columns are x y z intensity r g b without a line naming them (Leica PTS)
PTS_SUFFIXES = (".pts",)
HEAD_LINES = 64  # lines looked at for a point count, a line naming the columns and comments
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)


def labels_file(path: str | os.PathLike) -> Path:
    """Where a Semantic3D scan's labels lie: ``<name>.labels`` beside ``<name>.txt``."""
    return Path(path).with_suffix(".labels")


def _split(line: str, delimiter: str | None) -> list[str]:
    return [t.strip() for t in line.split(delimiter)] if delimiter else line.split()


def _delimiter(line: str) -> str | None:
    """The column separator of a data line: a comma, else a semicolon, else spaces and tabs."""
    return "," if "," in line else ";" if ";" in line else None


def _preamble(path: Path) -> tuple[int, list[str] | None, int | None, str | None, int]:
    """What precedes the points: (lines to skip before them, the column names of a naming line
    or None, a PTS point count or None, the column separator, the number of columns)."""
    names: list[str] | None = None
    count: int | None = None
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for i, raw in enumerate(f):
            if i >= HEAD_LINES:
                break
            line = raw.strip()
            body = line[2:] if line.startswith("//") else line[1:] if line.startswith("#") else line
            tokens = [t for t in re.split(r"[,;\s]+", body.strip()) if t]
            if not tokens:
                continue
            if all(_NUMBER.fullmatch(t) for t in tokens):
                if body is not line:  # a commented-out row of numbers
                    continue
                if len(tokens) == 1 and count is None and names is None and tokens[0].isdigit():
                    count = int(tokens[0])  # PTS: the number of points first
                    continue
                delimiter = _delimiter(line)
                return i, names, count, delimiter, len(_split(line, delimiter))
            if names is None and {"x", "y", "z"} <= {t.strip("\"'").lower() for t in tokens}:
                names = [t for t in re.split(r"\s*[,;\t]\s*" if re.search(r"[,;\t]", body) else r"\s+", body.strip()) if t]
                continue
            if body is not line:
                continue  # a comment
            raise ReaderError(f"{path}: line {i + 1} is neither numbers nor a line naming the columns "
                              f"(x y z ...): {line[:80]!r}")
    raise ReaderError(f"{path}: no point in its first {HEAD_LINES} lines (an empty cloud, or not a text point cloud)")


def _bad_line(path: Path, skip: int, delimiter: str | None, columns: int) -> str:
    """Where the points of ``path`` stop parsing: its first line after ``skip`` whose count of
    columns differs or that holds a value that is not a number."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for i, raw in enumerate(f):
            line = raw.strip()
            if i < skip or not line or line.startswith("#"):
                continue
            tokens = _split(line, delimiter)
            if len(tokens) != columns:
                return f"line {i + 1} has {len(tokens)} columns, the first point's {columns}: {line[:80]!r}"
            bad = next((t for t in tokens if not _NUMBER.fullmatch(t)), None)
            if bad is not None:
                return f"line {i + 1} holds {bad[:40]!r}, not a number"
    return "its points could not be parsed"


def _columns_by_count(path: Path, data: np.ndarray, pts_layout: bool) -> list[str]:
    """The names of ``data``'s columns where no line names them (module docstring)."""
    n = data.shape[1]
    if n == 3:
        return ["x", "y", "z"]
    if pts_layout and n in (4, 6, 7):
        return {4: ["x", "y", "z", "intensity"], 6: ["x", "y", "z", "red", "green", "blue"],
                7: ["x", "y", "z", "intensity", "red", "green", "blue"]}[n]
    if n == 6:
        rest = data[:, 3:6]
        if np.all(np.abs(np.linalg.norm(rest, axis=1) - 1.0) < 1e-2):
            return ["x", "y", "z", "nx", "ny", "nz"]
        if rest.min() >= 0 and (rest.max() <= 1.0 or (rest == np.round(rest)).all()):
            return ["x", "y", "z", "red", "green", "blue"]
    example = {4: "x y z intensity", 5: "x y z intensity label", 7: "x y z red green blue label",
               8: "x y z intensity red green blue label"}.get(n, " ".join(["x", "y", "z"] + ["NAME"] * (n - 3)))
    could = {4: "x y z label or x y z intensity", 7: "x y z r g b label or x y z intensity r g b"}.get(n)
    raise ReaderError(f"{path}: {n} columns and no first line naming them{f' (they could be {could})' if could else ''}; "
                      f"add one, e.g. `sed -i '1i {example}' {path.name}` (names: x y z, red green blue, intensity, "
                      f"nx ny nz, label, instance; others are ignored)")


def _semantic3d_labels(path: Path, labels: Path, n: int) -> np.ndarray:
    """(n,) int64 Semantic3D labels from ``labels`` (0 unlabelled -> -1, 1-8 -> 0-7)."""
    try:
        raw = np.loadtxt(labels, dtype=np.float64, ndmin=1, comments="#")
    except (OSError, ValueError) as e:
        raise ReaderError(f"{labels}: not a readable labels file (one whole number a point: {e})") from e
    if raw.ndim != 1 or len(raw) != n:
        raise ReaderError(f"{labels}: {len(raw) if raw.ndim == 1 else raw.shape} labels for the {n} points of {path.name} "
                          f"(one whole number a line)")
    out = whole_labels(labels, "label", raw, ignore_255=False)
    if len(out) and (out.min() < 0 or out.max() > len(SEMANTIC3D8)):
        bad = int(np.flatnonzero((out < 0) | (out > len(SEMANTIC3D8)))[0])
        raise ReaderError(f"{labels}: label {out[bad]} on line {bad + 1} is outside Semantic3D's 0-{len(SEMANTIC3D8)} "
                          f"(0 unlabelled)")
    return out - 1


def read_text_cloud(path: str | os.PathLike, classes: tuple[str, ...] | None = None) -> Scene:
    """Read a text point cloud (module docstring) into a ``Scene``, points in the file's order.
    ``classes`` names a label column's labels (default: a Semantic3D scan's classes, else
    placeholders). ReaderError naming the file and line for a file that is missing, empty, has
    rows of another count of columns or values that are not numbers, whose columns are neither
    named nor told by their count, or whose ``.labels`` does not hold one label a point."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    skip, names, count, delimiter, ncols = _preamble(path)
    try:
        data = np.loadtxt(path, dtype=np.float64, delimiter=delimiter, skiprows=skip, ndmin=2, comments="#",
                          encoding="utf-8-sig")
    except ValueError as e:
        raise ReaderError(f"{path}: {_bad_line(path, skip, delimiter, ncols)}") from e
    except UnicodeDecodeError as e:
        raise ReaderError(f"{path}: not a text point cloud ({e})") from e
    if count is not None and count != len(data):
        raise ReaderError(f"{path}: its first line gives {count} points, it holds {len(data)} (a PTS file of several "
                          f"scans: split it per scan, or remove the count lines and the first)")
    labels = labels_file(path)
    semantic3d = labels.is_file() and labels != path
    if names is None:
        names = _columns_by_count(path, data, count is not None or path.suffix.lower() in PTS_SUFFIXES or semantic3d)
    elif len(names) != data.shape[1]:
        raise ReaderError(f"{path}: its first line names {len(names)} columns ({' '.join(names)}), its points have "
                          f"{data.shape[1]}")
    named = {n.strip("\"'").lower(): i for i, n in reversed(list(enumerate(names)))}
    have = tuple(named)

    def column(name: str) -> np.ndarray:
        return data[:, named[name]]
    coord = np.stack([column("x"), column("y"), column("z")], 1)
    bad = ~np.isfinite(coord).all(1)
    if bad.any():
        raise ReaderError(f"{path}: {int(bad.sum())} points have NaN/inf coordinates (the first is point {int(np.argmax(bad))})")
    channels = next((c for c in COLOR_FIELDS if all(n in named for n in c)), None)
    color = None if channels is None else unit_colors(path, np.stack([column(n) for n in channels], 1), list(channels))
    normal_names = next((c for c in NORMAL_FIELDS if all(n in named for n in c)), None)
    normal = None if normal_names is None else np.stack([column(n) for n in normal_names], 1).astype(np.float32)
    inten, sem_f, ins_f = (first_field(f, have) for f in (INTENSITY_FIELDS, SEMANTIC_FIELDS, INSTANCE_FIELDS))
    semantic = instance = None
    if sem_f is not None and semantic3d:
        raise ReaderError(f"{path}: both a {sem_f!r} column and {labels.name} beside it label the points; "
                          f"move one of them away")
    if sem_f is not None:
        semantic = whole_labels(path, sem_f, column(sem_f), ignore_255=False, classes=True)
        semantic = semantic if (semantic >= 0).any() else None  # every point unlabelled: no labels
        if classes is None and semantic is not None:
            classes = tuple(placeholder_class(i) for i in range(int(semantic.max()) + 1))
    elif semantic3d:
        semantic = _semantic3d_labels(path, labels, len(coord))
        classes = classes or SEMANTIC3D8
    if ins_f is not None:
        instance = whole_labels(path, ins_f, column(ins_f), ignore_255=False)
    segment = whole_labels(path, "segment", column("segment"), ignore_255=False) if "segment" in named else None
    return Scene(name=path.stem, coord=coord, classes=classes or (), color=color, normal=normal,
                 intensity=None if inten is None else column(inten).astype(np.float32), semantic=semantic,
                 instance=instance, segment=segment,
                 meta={"dataset": "txt", "source": str(path), "columns": [n.strip("\"'").lower() for n in names]})

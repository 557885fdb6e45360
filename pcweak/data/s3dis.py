"""S3DIS reader: ``Area_N/<room>/Annotations/<class>_<i>.txt`` (lines ``x y z r g b``).

Points are the concatenation of the annotation files in natural order (``chair_2`` before
``chair_10``), one instance per file; that order is the scene's point order. Known defects of
the real release are survived with a warning: non-numeric characters inside a line
(``Area_5/hallway_6/Annotations/ceiling_1.txt``), duplicated files named ``<name> (1).txt``
(skipped), and the ``stairs`` class outside the 13 (mapped to ``clutter``).
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import ReaderError
from ..scene import Scene
from ..classes import S3DIS13, S3DIS_ALIASES
from .address import scene_name

_NUM = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.stem)]


def read_xyzrgb(path: Path) -> np.ndarray:
    """(P,6) float32 of one S3DIS text file; malformed lines are repaired or dropped with a warning."""
    data = path.read_bytes()
    lines = [ln for ln in data.splitlines() if ln.strip()]
    try:
        arr = np.array(data.split(), dtype=np.float32)
        # every line six numbers: a total divisible by six alone would re-flow a file of
        # three-column or ragged lines into rows whose colours are coordinates
        if arr.size == 6 * len(lines) and all(len(ln.split()) == 6 for ln in lines):
            return arr.reshape(-1, 6)
    except ValueError:
        pass
    rows, repaired, dropped = [], 0, 0
    for ln, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            vals = [float(x) for x in parts]
        except ValueError:
            vals = [float(m) for m in _NUM.findall(line)]
            repaired += 1
        if len(vals) != 6:
            dropped += 1
            continue
        rows.append(vals)
    if repaired or dropped:
        warnings.warn(f"{path}: {repaired} malformed line(s) repaired, {dropped} dropped")
    if not rows:
        raise ReaderError(f"{path}: no valid 'x y z r g b' lines (expected six numbers per line)")
    return np.array(rows, np.float32)


def read_s3dis(room_dir: str | os.PathLike) -> Scene:
    """Read ``<root>/Area_N/<room>`` into a ``Scene`` with the 13 S3DIS classes and instances."""
    d = Path(room_dir)
    ann = d / "Annotations"
    if not ann.is_dir():
        raise ReaderError(f"{d}: no Annotations/ folder (expected Area_N/<room>/Annotations/<class>_<i>.txt)")
    files = sorted(ann.glob("*.txt"), key=_natural_key)
    dup = [f for f in files if re.search(r" \(\d+\)$", f.stem)]
    if dup:
        warnings.warn(f"{ann}: skipping duplicated annotation files {[f.name for f in dup]}")
        files = [f for f in files if f not in dup]
    if not files:
        raise ReaderError(f"{ann}: no annotation files")
    xyzrgb, sem, inst, names = [], [], [], []
    unknown: dict[str, int] = {}  # class -> its files, named in one warning for the room
    for k, f in enumerate(files):
        cls = f.stem.split("_")[0]
        cls = S3DIS_ALIASES.get(cls, cls)
        if cls not in S3DIS13:
            unknown[cls] = unknown.get(cls, 0) + 1
        a = read_xyzrgb(f)
        bad = ~np.isfinite(a).all(1) | (a[:, 3:6] < 0).any(1) | (a[:, 3:6] > 255).any(1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ReaderError(f"{f}: {int(bad.sum())} points with NaN/inf values or colours outside 0-255 (the first, "
                              f"point {row}: {a[row].tolist()})")
        xyzrgb.append(a)
        sem.append(np.full(len(a), S3DIS13.index(cls) if cls in S3DIS13 else -1, np.int64))
        inst.append(np.full(len(a), k, np.int64))
        names.append(f.stem)
    if unknown:
        listed = ", ".join(f"{c!r} ({n} file{'s' if n > 1 else ''})" for c, n in sorted(unknown.items()))
        warnings.warn(f"{ann}: classes that are none of the 13 S3DIS classes, their points left unlabelled: {listed}")
    a = np.concatenate(xyzrgb)
    rgb = a[:, 3:6]
    return Scene(name=scene_name(f"s3dis:{d}"), coord=a[:, :3], classes=S3DIS13, color=rgb / 255.0,
                 semantic=np.concatenate(sem), instance=np.concatenate(inst),
                 extras={"instance_file": np.array(names, dtype=np.str_)},
                 meta={"dataset": "s3dis", "source": str(d)})


def write_s3dis(scene: Scene, root: str | os.PathLike, area: str = "Area_1", room: str | None = None) -> Path:
    """Write ``scene`` (S3DIS classes, instances) as ``<root>/<area>/<room>/`` text files."""
    room = room or scene.name
    d = Path(root) / area / room
    (d / "Annotations").mkdir(parents=True, exist_ok=True)
    rgb = np.round(scene.color * 255) if scene.color is not None else np.full((scene.num_points, 3), 128.0)
    counters: dict[str, int] = {}
    lines_all = []
    for k in np.unique(scene.instance):
        m = scene.instance == k
        cls = scene.classes[int(np.bincount(np.maximum(scene.semantic[m], 0)).argmax())]
        counters[cls] = counters.get(cls, 0) + 1
        block = np.hstack([scene.coord[m], rgb[m]])
        text = "\n".join(f"{x:.3f} {y:.3f} {z:.3f} {int(r)} {int(g)} {int(b)}" for x, y, z, r, g, b in block) + "\n"
        (d / "Annotations" / f"{cls}_{counters[cls]}.txt").write_text(text)
        lines_all.append(text)
    (d / f"{room}.txt").write_text("".join(lines_all))
    return d

"""ASPRS LAS / LAZ point clouds (``las:<file.las|.laz>``), read with laspy (the ``las`` extra).

What is read: ``x y z`` in metres as the header's scale and offset give them (float64; a
georeferenced scan is moved toward the origin by ``Scene``, ``meta['coord_shift']``); ``red green
blue`` where the point format has them (8-bit values stored in the 16-bit fields, or full 16-bit;
all zero reads as no colour); ``intensity`` scaled to [0,1] (the LAS standard stores 16 bits;
files whose values stay within 0-255 hold 8 bits); semantic labels from an extra-bytes dimension
named as ``point_fields.SEMANTIC_FIELDS`` names them (``label``, ``semantic``, ...), else from
``classification`` (its values as they are: benchmark LAS files number their own classes, 0
included; a file whose every point is 0 "never classified" or 1 "unclassified" has no labels);
instances from an extra-bytes dimension named as ``INSTANCE_FIELDS`` names them. Classification
values take their names from the file's Classification Lookup record where it has one, others
are named ``class_<i>``, unless ``classes`` is given. Points keep the file's order.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ReaderError
from ..scene import Scene
from .point_fields import INSTANCE_FIELDS, SEMANTIC_FIELDS, first_field, unit_colors, whole_labels

EXTRA = 'the "las" extra of pcweak (pip install -e ".[las]", which installs laspy with its LAZ backend)'
UNLABELLED_CLASSIFICATION = (0, 1)  # ASPRS "created, never classified" and "unclassified"


def _laspy(path: Path):
    try:
        import laspy
    except ImportError as e:
        raise ReaderError(f"{path}: reading LAS/LAZ files needs {EXTRA}") from e
    return laspy


def _intensity(values: np.ndarray) -> np.ndarray:
    """(N,) float32 in [0,1] from LAS intensities: 16 bits as the standard stores them, or 8 bits
    where no value exceeds 255."""
    a = np.asarray(values, np.float64)
    top = float(a.max()) if a.size else 0.0
    return (a / (255.0 if top <= 255 else 65535.0)).astype(np.float32)


def _lookup_names(las) -> dict[int, str]:
    """Class names from the file's Classification Lookup record (LAS 1.4: ``LASF_Spec`` record 0,
    a number and a 15-character description per class), blank and repeated ones left out."""
    names: dict[int, str] = {}
    for vlr in las.header.vlrs:
        if vlr.user_id.rstrip("\0") == "LASF_Spec" and vlr.record_id == 0:
            names.update({int(k): str(d).strip() for k, d in getattr(vlr, "lookups", {}).items()})
    seen: dict[str, int] = {}
    for d in names.values():
        seen[d] = seen.get(d, 0) + 1
    return {k: d for k, d in names.items() if d and seen[d] == 1}


def read_las(path: str | os.PathLike, classes: tuple[str, ...] | None = None) -> Scene:
    """Read a LAS or LAZ file into a ``Scene`` (see the module's docstring for the fields).
    ReaderError naming the file for a missing, unreadable or truncated file, one with no points,
    or a LAZ file without a LAZ backend."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    laspy = _laspy(path)
    try:
        las = laspy.read(str(path))
    except Exception as e:  # laspy's own errors, lazrs' RuntimeError, numpy's ValueError on a cut file
        raise ReaderError(f"{path}: not a readable LAS/LAZ file ({type(e).__name__}: {e})") from e
    n, counted = len(las.points), int(las.header.point_count)
    if n != counted:
        raise ReaderError(f"{path}: holds {n} of the {counted} points its header counts (a truncated file?)")
    if n == 0:
        raise ReaderError(f"{path}: no points (empty point cloud)")
    coord = np.stack([np.asarray(las.x, np.float64), np.asarray(las.y, np.float64), np.asarray(las.z, np.float64)], 1)
    dims = list(las.point_format.dimension_names)
    extra = {d.lower(): d for d in las.point_format.extra_dimension_names}
    color = None
    if all(k in dims for k in ("red", "green", "blue")):
        rgb = np.stack([np.asarray(las[k]) for k in ("red", "green", "blue")], 1)
        color = unit_colors(path, rgb, ("red", "green", "blue")) if rgb.any() else None
    sem_f, ins_f = first_field(SEMANTIC_FIELDS, tuple(extra)), first_field(INSTANCE_FIELDS, tuple(extra))
    semantic = instance = None
    if sem_f is not None:
        semantic = whole_labels(path, extra[sem_f], np.asarray(las[extra[sem_f]]), ignore_255=False)
    else:
        cls = np.asarray(las.classification).astype(np.int64)
        if not (cls.min() == cls.max() and int(cls[0]) in UNLABELLED_CLASSIFICATION):
            semantic = cls
    if ins_f is not None:
        instance = whole_labels(path, extra[ins_f], np.asarray(las[extra[ins_f]]), ignore_255=False)
    if classes is None and semantic is not None:
        names = _lookup_names(las) if sem_f is None else {}
        classes = tuple(names.get(i, f"class_{i}") for i in range(int(semantic.max()) + 1))
    meta = {"dataset": "las", "source": str(path), "las_point_format": int(las.header.point_format.id)}
    return Scene(name=path.stem, coord=coord, classes=classes or (), color=color,
                 intensity=_intensity(las.intensity), semantic=semantic, instance=instance, meta=meta)

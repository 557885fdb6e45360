"""Per-point fields as point-cloud files name and store them: the property names that the PLY,
LAS and text readers look for, and the conversions they share (whole-number labels, colour channels of
any common range to [0,1], the class names pcweak's writers keep in a file's header)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import ReaderError
from ..safe_load import numpy_load

# names as lower case (a file's are matched whatever their case: CloudCompare writes
# ``scalar_Label``); DALES names its labels ``sem_class`` / ``ins_class``, LAS-derived clouds
# carry ``classification``
SEMANTIC_FIELDS = ("label", "semantic", "class", "scalar_label", "sem_class", "classification", "scalar_classification")
INSTANCE_FIELDS = ("instance", "instance_id", "scalar_instance", "ins_class")
COLOR_FIELDS = (("red", "green", "blue"), ("diffuse_red", "diffuse_green", "diffuse_blue"), ("r", "g", "b"))
PACKED_COLOR_FIELDS = ("rgb", "rgba")
INTENSITY_FIELDS = ("intensity", "scalar_intensity", "reflectance", "remission")
NORMAL_FIELDS = (("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z"))  # most tools; PCL's PointNormal
COLOR_RANGES = (1.0, 255.0, 65535.0)  # floats in [0,1], 8-bit and 16-bit channels


def first_field(names: tuple[str, ...], have: tuple[str, ...] | list[str]) -> str | None:
    """The first of ``names`` that ``have`` holds, or None."""
    return next((n for n in names if n in have), None)


MAX_CLASS_LABEL = 4095  # a label field above this names ids or a missing-value code (65535), not classes


def whole_labels(path: str | os.PathLike, field: str, values: np.ndarray, ignore_255: bool,
                 classes: bool = False) -> np.ndarray:
    """(N,) int64 labels from a per-point field: float values must be whole numbers and none
    may lie below -1, pcweak's "none" (ReaderError otherwise, naming the file, the field and the
    first such point); with ``ignore_255``, 255 in an unsigned 8-bit field is the common
    "unlabelled" value and becomes -1. ``classes``: the field names classes (a semantic label),
    so a value above ``MAX_CLASS_LABEL`` is refused too: each label up to the largest becomes a
    class, and 2,000,000,000 placeholder classes would not fit in memory."""
    a = np.asarray(values)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all() or (a != np.round(a)).any():
            bad = int(np.flatnonzero(~np.isfinite(a) | (a != np.round(a)))[0])
            raise ReaderError(f"{path}: property {field!r} holds a non-integer label ({a[bad]} at vertex {bad})")
    out = a.astype(np.int64)
    if ignore_255 and a.dtype == np.uint8:
        out[a == 255] = -1
    low = out < -1
    high = out > MAX_CLASS_LABEL if classes else np.zeros(len(out), bool)
    if low.any() or high.any():
        bad = int(np.flatnonzero(low | high)[0])
        why = ("below -1, pcweak's 'none' (give unlabelled points -1)" if low[bad] else
               f"above {MAX_CLASS_LABEL}: labels name classes 0, 1, 2, ...; a value this large is an id or a "
               f"missing-value code")
        raise ReaderError(f"{path}: property {field!r} holds {int(a[bad])} at vertex {bad}, {why}")
    return out


def npy_array(path: Path, n: int | None, width: int | None, wider: bool = False) -> np.ndarray:
    """The ``.npy`` array at ``path`` (read without pickles: ``safe_load.numpy_load``), checked to
    be numeric with ``n`` rows (any, for None) of ``width`` columns (at least, with ``wider``),
    or a vector for None; ReaderError naming the file otherwise."""
    a = numpy_load(path, "point data")
    shape = (n, width) if width is not None else (n,)
    ok = a.ndim == len(shape) and (width is None or a.shape[1] == width or (wider and a.shape[1] > width)) \
        and (n is None or len(a) == n)
    if not ok or not np.issubdtype(a.dtype, np.number) or a.dtype.kind == "c":
        want = f"({'N' if n is None else n},{width}{'+' if wider else ''})" if width is not None else \
            f"({'N' if n is None else n},)"
        raise ReaderError(f"{path}: expected a numeric {want} array, got {a.dtype} {a.shape}")
    return a


def npy_labels(path: Path, n: int, n_classes: int | None) -> np.ndarray:
    """(n,) int64 labels from the ``.npy`` vector at ``path``: integers from -1 to ``n_classes``
    - 1 (any >= -1 for None); ReaderError naming the file for floats (a fraction or NaN would be
    cut to a label), booleans or values out of range."""
    a = npy_array(path, n, None)
    if not np.issubdtype(a.dtype, np.integer):
        raise ReaderError(f"{path}: expected integer labels, got {a.dtype}")
    a = a.astype(np.int64)
    high = n_classes - 1 if n_classes is not None else None
    bad = (a < -1) | ((a > high) if high is not None else False)
    if bad.any():
        rng = f"outside -1..{high}" if high is not None else "below -1"
        raise ReaderError(f"{path}: {int(bad.sum())} values {rng} (e.g. {int(a[bad][0])})")
    return a


def unit_colors(path: str | os.PathLike, rgb: np.ndarray, names: list[str] | tuple[str, ...]) -> np.ndarray:
    """(N,3) float32 colours in [0,1] from (N,3) channels ``names`` of 8 or 16 bits, or floats in
    [0,1], [0,255] or [0,65535] (the range their largest value falls in; whole numbers no larger
    than 1 are dark 8-bit colours). ReaderError naming the file for values none of those."""
    rgb = np.asarray(rgb)
    top = float(rgb.max()) if rgb.size else 0.0
    if rgb.dtype.kind == "f" and not np.isfinite(rgb).all():
        raise ReaderError(f"{path}: colour properties {list(names)} hold NaN or infinite values")
    scale = next((s for s in COLOR_RANGES if top <= s), None)
    if rgb.dtype.kind in "iu" and top <= 1.0:
        scale = 255.0
    if scale is None or (rgb.size and float(rgb.min()) < 0):
        raise ReaderError(f"{path}: colour properties {list(names)} range {float(rgb.min()):g}..{top:g}; expected "
                          f"[0,1], [0,255] or [0,65535]")
    return (rgb.astype(np.float64) / scale).astype(np.float32)


def class_names_text(classes: tuple[str, ...] | list[str]) -> str:
    """One line naming ``classes`` for a file's header (a PLY comment, a LAS record): the names
    joined by commas, as files before 2026-12-05 hold them; a JSON list where a name holds a
    comma, a line break or starts the text with ``[``, which commas would not give back."""
    names = [str(c) for c in classes]
    if any("," in n or "\n" in n or "\r" in n for n in names) or (names and names[0].startswith("[")):
        return json.dumps(names, ensure_ascii=False)
    return ",".join(names)


# how a header comment of pcweak's (a PLY comment, a PCD header line) names a file's classes
CLASSES_TAG = "pcweak_classes "


def class_names_comment(classes: tuple[str, ...] | list[str]) -> str:
    """The header comment naming ``classes`` (``CLASSES_TAG`` + ``class_names_text``)."""
    return CLASSES_TAG + class_names_text(classes)


def class_names_of_comment(comment: str) -> tuple[str, ...] | None:
    """The classes a ``class_names_comment`` names; None for any other comment."""
    return class_names_from_text(comment[len(CLASSES_TAG):]) if comment.startswith(CLASSES_TAG) else None


def class_names_from_text(text: str) -> tuple[str, ...]:
    """The class names ``class_names_text`` wrote (either form)."""
    if text.startswith("["):
        try:
            names = json.loads(text)
        except ValueError:
            names = None
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return tuple(names)
    return tuple(text.split(",")) if text else ()

"""3D boxes as point-cloud annotation tools save them in JSON, read into a boxes ``Table``
(``from_tables``), so that ``pcweak import`` treats them as a boxes table: classes by name,
coordinates in the scene file's frame, sizes checked; and Supervisely's painted points, read
into a points table.

- labelCloud, ``centroid_abs`` / ``centroid_rel`` formats: ``{"objects": [{"name", "centroid":
  {x, y, z}, "dimensions": {length, width, height}, "rotations": {x, y, z}}]}``, length along
  x and width along y before the rotation about z; ``centroid_abs`` keeps degrees (0-360),
  ``centroid_rel`` radians (-pi..pi). The format is read from the ``_classes.json`` labelCloud
  keeps in the label folder; without it, from the angles where only one reading fits them
  (beyond pi: degrees; below 0: radians), else refused.
- labelCloud, ``vertices`` format: ``{"objects": [{"name", "vertices": [8 corners]}]}`` in its
  corner order (0-3 the bottom face from (-l, -w), 0->3 along the length, 0->1 along the width,
  4-7 above them).
- SUSTechPOINTS: ``[{"obj_type", "obj_id", "psr": {"position": {x, y, z}, "scale": {x, y, z},
  "rotation": {x, y, z}}}]``, radians.
- Supervisely's point-cloud format (which CVAT and Datumaro also write, ``ann/<cloud>.pcd.json``):
  ``{"objects": [{"key", "classTitle"}], "figures": [{"objectKey", "geometryType": "cuboid_3d",
  "geometry": {"position", "rotation", "dimensions"}}]}``, radians; and its painted points
  (``"geometryType": "point_cloud", "geometry": {"indices": [...]}``, positions in the cloud's
  file, from 0) as labelled points, each figure's points of its object's class and, one object one
  instance, of the object's instance (its place in ``objects``, from 0); figures of other kinds
  are left out with a warning.

Boxes turn about z only: a roll or pitch up to ``MAX_TILT_RAD`` (a tool's fit to a sloped
ground) is dropped with a warning, a larger one refused. A JSON file of another shape is
refused naming what was expected. Parsed with ``json`` (data only; nothing in the file runs).
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReaderError
from .from_tables import BOX_COLUMNS, CLASS_COLUMNS, INDEX_COLUMN, INSTANCE_COLUMN, YAW_COLUMN, Table

MAX_TILT_RAD = 0.2  # about 11 degrees: a roll or pitch up to this is dropped, a larger one refused
LABELCLOUD_CLASSES_FILE = "_classes.json"  # labelCloud's class list and label format, in its label folder
BOX_TABLE_COLUMNS = (*BOX_COLUMNS, YAW_COLUMN, CLASS_COLUMNS[0])  # a boxes table's header, as read_table names it
POINT_TABLE_COLUMNS = (INDEX_COLUMN, CLASS_COLUMNS[0], INSTANCE_COLUMN)  # a points table's, for painted points


def _number(path: Path, where: str, what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReaderError(f"{path}, {where}: {what} is {value!r}, not a finite number")
    return float(value)


def _xyz(path: Path, where: str, obj: dict, key: str, names: tuple[str, str, str] = ("x", "y", "z")) -> list[float]:
    """The three numbers ``obj[key][names]``; ReaderError naming ``where`` (``object 3``) otherwise."""
    d = obj.get(key)
    if not isinstance(d, dict) or not all(n in d for n in names):
        raise ReaderError(f"{path}, {where}: {key!r} must be an object with {', '.join(names)} (got {d!r:.80})")
    return [_number(path, where, f"{key}.{n}", d[n]) for n in names]


def _labelcloud_format(path: Path) -> str | None:
    """The label format labelCloud's ``_classes.json`` beside ``path`` names, or None."""
    f = path.parent / LABELCLOUD_CLASSES_FILE
    if not f.is_file():
        return None
    try:
        fmt = json.loads(f.read_text(encoding="utf-8-sig")).get("format")
    except (ValueError, AttributeError, OSError):
        return None
    return fmt if isinstance(fmt, str) else None


def _radians(path: Path, angles: np.ndarray) -> np.ndarray:
    """labelCloud's centroid angles (R,3) in radians: by its ``_classes.json`` format, else by
    the only unit the values fit (module docstring)."""
    fmt = _labelcloud_format(path)
    if fmt == "centroid_abs":
        return np.deg2rad(angles)
    if fmt == "centroid_rel":
        return angles
    if (np.abs(angles) > math.pi + 1e-6).any():
        return np.deg2rad(angles)
    if (angles < 0).any() or not angles.any():
        return angles
    raise ReaderError(f"{path}: its rotations ({angles[angles != 0].min():g} to {angles.max():g}) read as degrees "
                      f"(labelCloud's centroid_abs) or radians (centroid_rel); keep labelCloud's {LABELCLOUD_CLASSES_FILE} "
                      f"(which names the format) in the folder beside it")


def _upright(path: Path, tilt: np.ndarray, places: list[str]) -> None:
    """Refuse a box tilted by more than ``MAX_TILT_RAD`` (``places``: where each box lies in the
    file, for the error); warn that smaller tilts are dropped."""
    tilt = np.abs((tilt + math.pi) % (2 * math.pi) - math.pi)  # the angle's size, whatever its turn
    worst = tilt.max(1) if len(tilt) else np.zeros(0)
    if (worst > MAX_TILT_RAD).any():
        i = int(np.argmax(worst))
        raise ReaderError(f"{path}, {places[i]}: tilted by {math.degrees(worst[i]):.1f} degrees about x or y; pcweak's "
                          f"boxes turn about z only (up to {math.degrees(MAX_TILT_RAD):.0f} degrees of tilt is dropped)")
    if (worst > 0).any():
        warnings.warn(f"{path}: {int((worst > 0).sum())} of {len(worst)} boxes are tilted about x or y (up to "
                      f"{math.degrees(worst.max()):.1f} degrees); read upright, turned about z only")


def _corners(path: Path, at: str, obj: dict) -> tuple[list[float], list[float]]:
    """Centre and sizes, and (tilt, 0, yaw) in radians, of labelCloud's eight ``vertices``."""
    try:
        c = np.asarray(obj.get("vertices"), np.float64)
    except (TypeError, ValueError):
        c = np.zeros(0)
    if c.shape != (8, 3) or not np.isfinite(c).all():
        raise ReaderError(f"{path}, {at}: 'vertices' must be 8 corners of 3 numbers each")
    length, width, height = c[3] - c[0], c[1] - c[0], c[4] - c[0]
    sizes = [float(np.linalg.norm(v)) for v in (length, width, height)]
    tilt = math.acos(min(1.0, abs(height[2]) / sizes[2])) if sizes[2] > 0 else 0.0
    return [*map(float, c.mean(0)), *sizes], [tilt, 0.0, math.atan2(length[1], length[0])]


def _indices(path: Path, at: str, geometry: dict) -> list[int]:
    """The point indices of a painted-points figure; ReaderError naming ``at`` unless they are a
    list of whole numbers >= 0."""
    idx = geometry.get("indices")
    if not isinstance(idx, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in idx):
        raise ReaderError(f"{path}, {at}: 'indices' must be a list of point indices (whole numbers from 0), got {idx!r:.60}")
    return idx


def _is_key(value: Any) -> bool:
    """Whether ``value`` can be a Supervisely object key: a string or a whole number."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _supervisely_figures(path: Path, data: dict) -> tuple[list[dict], Table | None]:
    """Supervisely's cuboids as SUSTechPOINTS-shaped objects (``classTitle`` their object's,
    ``psr`` their geometry, ``figure`` the figure's number in the file, from 1), in the figures' order, and its
    painted points as a points table (``POINT_TABLE_COLUMNS``, each row's place its figure's
    number), None where it has none; other figures left out with a warning."""
    objects = [o for o in data["objects"] if isinstance(o, dict)]
    for i, o in enumerate(objects):
        if not _is_key(o.get("key")):  # Supervisely's keys are strings (hex ids); a number is taken too
            raise ReaderError(f"{path}, object {i + 1}: 'key' must be a string, got {o.get('key')!r:.60}")
    titles = {o.get("key"): o.get("classTitle") for o in objects}
    instance = {o.get("key"): i for i, o in enumerate(objects)}
    out, other = [], {}
    rows: list[list[str]] = []
    figure_of: list[int] = []
    for i, f in enumerate(data["figures"]):
        if not isinstance(f, dict):
            raise ReaderError(f"{path}, figure {i + 1}: expected an object, got {f!r:.60}")
        kind = f.get("geometryType")
        if kind not in ("cuboid_3d", "point_cloud"):
            other[str(kind)] = other.get(str(kind), 0) + 1
            continue
        if not _is_key(f.get("objectKey")) or f["objectKey"] not in titles:
            raise ReaderError(f"{path}, figure {i + 1}: its objectKey {f.get('objectKey')!r} is none of the file's objects")
        g = f.get("geometry") if isinstance(f.get("geometry"), dict) else {}
        at = f"figure {i + 1}"
        title = titles[f["objectKey"]]
        if kind == "point_cloud":
            painted = _indices(path, at, g)
            rows += [[str(p), str(title), str(instance[f["objectKey"]])] for p in painted]
            figure_of += [i + 1] * len(painted)
            continue
        box = {k: dict(zip("xyz", _xyz(path, at, g, k))) for k in ("position", "dimensions", "rotation")}
        out.append({"figure": i + 1, "classTitle": title, "psr": {"position": box["position"], "scale": box["dimensions"],
                                                          "rotation": box["rotation"]}})
    if other:
        warnings.warn(f"{path}: {sum(other.values())} figures other than cuboids and painted points "
                      f"({', '.join(sorted(other))}) are left out")
    points = Table(path, "points", list(POINT_TABLE_COLUMNS), rows, figure_of, unit="figure") if rows else None
    return out, points


def read_json_tables(path: str | Path) -> list[Table]:
    """The tables of a labelCloud, SUSTechPOINTS or Supervisely JSON file (module docstring): its
    boxes as a boxes table (``BOX_TABLE_COLUMNS``, a row per box in the file's order), and a
    Supervisely file's painted points as a points table, each where the file holds some;
    ReaderError naming the file (and the object or figure, from 1) for one that is not such a
    file or holds neither."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ReaderError(f"{p}: not found") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ReaderError(f"{p}: not JSON ({e})") from None
    expected = ("labelCloud's {\"objects\": [{\"name\", \"centroid\", \"dimensions\", \"rotations\"} or {\"name\", "
                "\"vertices\"}]}, SUSTechPOINTS' [{\"obj_type\", \"psr\": {\"position\", \"scale\", \"rotation\"}}] or "
                "Supervisely's {\"objects\", \"figures\": [{\"objectKey\", \"geometryType\": \"cuboid_3d\", \"geometry\"}]}")
    points = None
    if isinstance(data, dict) and isinstance(data.get("figures"), list) and isinstance(data.get("objects"), list):
        (objects, points), tool = _supervisely_figures(p, data), "supervisely"
    elif isinstance(data, dict) and isinstance(data.get("objects"), list):
        objects, tool = data["objects"], "labelcloud"
    elif isinstance(data, list) and all(isinstance(o, dict) and "psr" in o for o in data):
        objects, tool = data, "sustechpoints"
    else:
        raise ReaderError(f"{p}: a JSON file pcweak reads as boxes is {expected}")
    if not objects:
        if points is not None:
            return [points]
        raise ReaderError(f"{p}: no boxes{' or painted points' if tool == 'supervisely' else ''} (an empty object list)")
    rows: list[list[float]] = []
    names: list[str] = []
    numbers: list[int] = []  # each box's object (figure) in the file, from 1
    angles: list[list[float]] = []
    unit = "figure" if tool == "supervisely" else "object"
    kind = "psr" if tool in ("sustechpoints", "supervisely") \
        else "vertices" if isinstance(objects[0], dict) and "vertices" in objects[0] else "centroid"
    for i, o in enumerate(objects):
        numbers.append(o["figure"] if tool == "supervisely" else i + 1)
        at = f"{unit} {numbers[-1]}"
        if not isinstance(o, dict):
            raise ReaderError(f"{p}, {at}: expected an object, got {o!r:.60}")
        key = {"labelcloud": "name", "sustechpoints": "obj_type", "supervisely": "classTitle"}[tool]
        name = o.get(key)
        if not isinstance(name, (str, int)) or isinstance(name, bool) or str(name).strip() == "":
            raise ReaderError(f"{p}, {at}: no class name ({key!r})")
        names.append(str(name).strip())
        if kind not in o:
            raise ReaderError(f"{p}, {at}: no {kind!r}, which the file's first object has; expected {expected}")
        if kind == "psr":
            psr = o["psr"] if isinstance(o["psr"], dict) else {}
            rows.append(_xyz(p, at, psr, "position") + _xyz(p, at, psr, "scale"))
            angles.append(_xyz(p, at, psr, "rotation"))
        elif kind == "vertices":
            box, turn = _corners(p, at, o)
            rows.append(box)
            angles.append(turn)
        else:
            rows.append(_xyz(p, at, o, "centroid") + _xyz(p, at, o, "dimensions", ("length", "width", "height")))
            angles.append(_xyz(p, at, o, "rotations"))
    a = np.asarray(angles, np.float64)
    if kind == "centroid":
        a = _radians(p, a)
    _upright(p, a[:, :2], [f"{unit} {n}" for n in numbers])
    yaw = (a[:, 2] + math.pi) % (2 * math.pi) - math.pi  # in [-pi, pi)
    boxes = Table(p, "boxes", list(BOX_TABLE_COLUMNS), [[repr(v) for v in r] + [repr(float(y)), n]
                                                         for r, y, n in zip(rows, yaw, names)],
                  numbers, unit=unit)
    return [boxes] + ([points] if points is not None else [])

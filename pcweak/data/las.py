"""ASPRS LAS / LAZ point clouds (``las:<file.las|.laz>``), read with laspy (the ``las`` extra).

What is read: ``x y z`` in metres as the header's scale and offset give them (float64; a
georeferenced scan is moved toward the origin by ``Scene``, ``meta['coord_shift']``; feet, where
the file's coordinate reference system says so, become metres, ``meta['las_units_m']``, and
longitude / latitude degrees are refused: ``crs_units``); ``red green blue`` where the point
format has them (8-bit values stored in the 16-bit fields, or full 16-bit; all zero reads as no
colour); ``intensity`` scaled to [0,1] (the LAS standard stores 16 bits;
files whose values stay within 0-255 hold 8 bits); semantic labels from an extra-bytes dimension
named as ``point_fields.SEMANTIC_FIELDS`` names them (``label``, ``semantic``, ...), else from
``classification`` (its values as they are: benchmark LAS files number their own classes, 0
included; a file whose every point is 0 "never classified" or 1 "unclassified" has no labels);
instances from an extra-bytes dimension named as ``INSTANCE_FIELDS`` names them, superpoints
from one named ``segment``. Classes are named by ``classes`` where given, else by the record
``write_las`` keeps them in, else (labels from ``classification``) by the file's Classification
Lookup record; others are ``class_<i>``. The coordinate reference system records go to
``meta['las_crs']``, its name to ``meta['crs']``. Points keep the file's order. ``write_las`` writes a
scene and its pseudo-labels as LAS / LAZ.
"""
from __future__ import annotations

import base64
import io
import os
import warnings
from pathlib import Path

import numpy as np

from ..classes import placeholder_class
from ..errors import ReaderError
from ..geometry import column_bounds
from ..scene import Scene
from .crs_units import WKT_RECORD_ID, CrsUnits, crs_units
from .point_fields import (INSTANCE_FIELDS, SEMANTIC_FIELDS, class_names_from_text, class_names_text, first_field, unit_colors,
                           whole_labels)

EXTRA = 'the "las" extra of pcweak (pip install -e ".[las]", which installs laspy with its LAZ backend)'
UNLABELLED_CLASSIFICATION = (0, 1)  # ASPRS "created, never classified" and "unclassified"
CRS_USER_ID = "LASF_Projection"  # the user id of the records that hold a file's coordinate reference system
CLASSES_VLR = ("pcweak", 0)  # (user id, record id) of the record holding pcweak's class names (point_fields.class_names_text)


def require_laspy(path: str | os.PathLike):
    """The laspy module; ReaderError naming ``path`` and the extra to install where it is missing."""
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


def _pcweak_classes(las) -> tuple[str, ...] | None:
    """The class names ``write_las`` keeps in its own record (``CLASSES_VLR``), or None."""
    for vlr in las.header.vlrs:
        if (vlr.user_id.rstrip("\0"), vlr.record_id) == CLASSES_VLR and hasattr(vlr, "record_data"):
            text = bytes(vlr.record_data).decode("utf-8", "replace")
            return class_names_from_text(text)
    return None


def _crs_records(las) -> list[dict[str, object]]:
    """The file's coordinate reference system as its ``LASF_Projection`` records hold it (GeoTIFF
    keys, OGC WKT), each as {record_id, description, data (base64)}: what ``write_las`` copies
    into the files it writes, so that a GIS places them where the scan lies."""
    out: list[dict[str, object]] = []
    for vlr in list(las.header.vlrs) + list(getattr(las, "evlrs", None) or []):
        if vlr.user_id.rstrip("\0") == CRS_USER_ID:
            data = vlr.record_data_bytes() if hasattr(vlr, "record_data_bytes") else bytes(vlr.record_data)
            out.append({"record_id": int(vlr.record_id), "description": str(vlr.description).rstrip("\0"),
                        "data": base64.b64encode(data).decode("ascii")})
    return out


def _check_body_length(path: Path, header) -> None:
    """ReaderError naming the file where an uncompressed LAS file holds whole point records after
    those its header counts, before its next part (extended records, internal waveforms) or its
    end: laspy reads the counted records only, so a writer that did not update the count (or two
    files joined) would lose the rest without a word. Fewer bytes than a record pass (padding)."""
    if header.are_points_compressed:
        return  # a LAZ body's length says nothing of its point count
    size = int(header.point_format.size)
    end = int(header.offset_to_point_data) + int(header.point_count) * size
    starts = (getattr(header, "start_of_first_evlr", 0), getattr(header, "start_of_waveform_data_packet_record", 0))
    later = [int(v) for v in starts if v and int(v) >= end]
    limit = min(later) if later else path.stat().st_size
    extra = (limit - end) // size if size else 0
    if extra >= 1:
        raise ReaderError(f"{path}: holds {extra} more point records after the {int(header.point_count)} its header counts "
                          f"(a writer that did not update the count, or two files joined?); laspy would read the counted "
                          f"ones only")


def _check_scales(path: Path, scales: np.ndarray, offsets: np.ndarray) -> None:
    """ReaderError naming ``path`` unless the header's (3,) scale factors are finite and > 0 and
    its (3,) offsets finite: x = X * scale + offset of each stored integer X, so a scale of 0 puts
    every point at one place, a negative one mirrors the scan, and NaN or inf leave no point."""
    for axis, scale, offset in zip("xyz", scales, offsets):
        if not (np.isfinite(scale) and scale > 0):
            raise ReaderError(f"{path}: the header's {axis} scale factor is {float(scale)!r}; a LAS file's coordinates are its "
                              f"integers times a scale > 0 (0.001 for millimetres, say): a corrupt header")
        if not np.isfinite(offset):
            raise ReaderError(f"{path}: the header's {axis} offset is {float(offset)!r}; a LAS file's coordinates are its "
                              f"integers times the scale plus a finite offset: a corrupt header")


UNIT_RANGE_M = (1e-4, 1e5)  # metres per linear unit a CRS may give: tenths of a millimetre to 100 km


def _metres_per_unit(path: Path, units: CrsUnits, coord: np.ndarray) -> np.ndarray | None:
    """(3,) metres per unit of x, y, z where the file's CRS records (``units``) put its
    coordinates in other units than metres (feet: a US state plane tile), None where in metres
    or unsaid; z takes x / y's unit where the records give none of its own. ReaderError for
    longitude / latitude degrees, which no distance in metres applies to. A warning says what
    was scaled."""
    if units.geographic and np.abs(coord[:, 0]).max() <= 360 and np.abs(coord[:, 1]).max() <= 90:
        raise ReaderError(f"{path}: x / y are longitude / latitude in degrees (a geographic coordinate reference system); "
                          f"pcweak measures in metres: reproject the file to a projected one first (UTM, say: "
                          f"pdal translate {path.name} out.laz reprojection --filters.reprojection.out_srs=EPSG:<code>)")
    hname = units.horizontal_name or "metre"
    vname = units.vertical_name or hname
    for which, name, m in (("x / y", hname, units.horizontal_m), ("z", vname, units.vertical_m)):
        if m is not None and not UNIT_RANGE_M[0] <= m <= UNIT_RANGE_M[1]:  # NaN fails both
            raise ReaderError(f"{path}: its coordinate reference system gives {which} the unit {name!r} of {m!r} metres, "
                              f"not a length ({UNIT_RANGE_M[0]:g} to {UNIT_RANGE_M[1]:g} m): a corrupt record")
    h = units.horizontal_m or 1.0
    v = units.vertical_m or (units.horizontal_m or 1.0)
    if h == 1.0 and v == 1.0:
        return None
    warnings.warn(f"{path}: coordinates in {hname} (x, y) and {vname} (z) by its coordinate reference system are read "
                  f"as metres (x {h:.9g}, z {v:.9g}); pcweak measures in metres, and writes LAS files back in the file's "
                  f"units", stacklevel=3)
    return np.array([h, h, v], np.float64)


def read_las(path: str | os.PathLike, classes: tuple[str, ...] | None = None) -> Scene:
    """Read a LAS or LAZ file into a ``Scene`` (see the module's docstring for the fields).
    ReaderError naming the file for a missing, unreadable or truncated file, one holding more
    point records than its header counts (``_check_body_length``), one with no points,
    a header scale factor not > 0 or offset not finite, a CRS unit that is no length
    (``UNIT_RANGE_M``), or a LAZ file without a LAZ backend."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    laspy = require_laspy(path)
    try:
        las = laspy.read(str(path))
    except Exception as e:  # laspy's own errors, lazrs' RuntimeError, numpy's ValueError on a cut file
        raise ReaderError(f"{path}: not a readable LAS/LAZ file ({type(e).__name__}: {e})") from e
    n, counted = len(las.points), int(las.header.point_count)
    if n != counted:
        raise ReaderError(f"{path}: holds {n} of the {counted} points its header counts (a truncated file?)")
    _check_body_length(path, las.header)
    if n == 0:
        raise ReaderError(f"{path}: no points (empty point cloud)")
    _check_scales(path, np.asarray(las.header.scales, np.float64), np.asarray(las.header.offsets, np.float64))
    coord = np.stack([np.asarray(las.x, np.float64), np.asarray(las.y, np.float64), np.asarray(las.z, np.float64)], 1)
    crs = _crs_records(las)
    units = crs_units(crs)
    to_metres = _metres_per_unit(path, units, coord)
    if to_metres is not None:
        coord = coord * to_metres
    dims = list(las.point_format.dimension_names)
    extra = {d.lower(): d for d in las.point_format.extra_dimension_names}
    color = None
    if all(k in dims for k in ("red", "green", "blue")):
        rgb = np.stack([np.asarray(las[k]) for k in ("red", "green", "blue")], 1)
        color = unit_colors(path, rgb, ("red", "green", "blue")) if rgb.any() else None
    sem_f, ins_f = first_field(SEMANTIC_FIELDS, tuple(extra)), first_field(INSTANCE_FIELDS, tuple(extra))
    semantic = instance = None
    if sem_f is not None:
        semantic = whole_labels(path, extra[sem_f], np.asarray(las[extra[sem_f]]), ignore_255=False, classes=True)
    else:
        cls = np.asarray(las.classification).astype(np.int64)
        if not (cls.min() == cls.max() and int(cls[0]) in UNLABELLED_CLASSIFICATION):
            semantic = cls
    if ins_f is not None:
        instance = whole_labels(path, extra[ins_f], np.asarray(las[extra[ins_f]]), ignore_255=False)
    segment = whole_labels(path, extra["segment"], np.asarray(las[extra["segment"]]), ignore_255=False) \
        if "segment" in extra else None
    if classes is None:
        classes = _pcweak_classes(las)
        if classes is not None and semantic is not None and sem_f is None:  # write_las's code for unlabelled
            semantic = np.where(semantic == len(classes), -1, semantic)
    if classes is None and semantic is not None:
        names = _lookup_names(las) if sem_f is None else {}
        classes = tuple(names.get(i, placeholder_class(i)) for i in range(int(semantic.max()) + 1))
    meta = {"dataset": "las", "source": str(path), "las_point_format": int(las.header.point_format.id)}
    if crs:
        meta["las_crs"] = crs
        meta["crs"] = units.name or "unnamed"
    if to_metres is not None:
        meta["las_units_m"] = [float(v) for v in to_metres]
    return Scene(name=path.stem, coord=coord, classes=classes or (), color=color,
                 intensity=_intensity(las.intensity), semantic=semantic, instance=instance, segment=segment, meta=meta)


LAS_SCALES = (0.001, 0.01, 0.1)  # file units per integer step: millimetres unless a scene spans over 2,000 km
UNLABELLED_NAME = "unlabelled"
LAS_NAME_BYTES = 32  # the longest name of an extra-bytes dimension (LAS 1.4's record holds 32 bytes)


def _class_codes(classes: tuple[str, ...], labels: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """(N,) uint8 classification codes and the names of the Classification Lookup record: a
    class's index is its code, an unlabelled point (-1) takes the code after the last class."""
    n = len(classes)
    codes = np.where(labels < 0, n, labels).astype(np.uint8)
    names = {i: name.encode("ascii", "replace").decode()[:15] for i, name in enumerate(classes)}
    names[n] = UNLABELLED_NAME
    return codes, names


def write_las(scene: Scene, path: str | os.PathLike, fields: dict[str, np.ndarray] | None = None,
              classify_by: str = "label") -> Path:
    """Write ``scene`` as LAS 1.4, compressed where ``path`` ends in .laz; written atomically.

    x y z in the file's own coordinates and units (a shifted scene's ``coord_shift`` added back,
    metres turned back into the feet of a file that had them, ``las_units_m``) at
    millimetre steps (the 32-bit integers LAS stores, counted from the scene's corner, reach
    2,147 km); RGB (16 bits) where the scene has
    colour; intensity (16 bits); the label fields as extra-bytes dimensions that ``read_las``
    reads back as they were: ``label``, ``instance``, ``segment`` from the scene, then
    ``fields`` (whole numbers as int32, -1 unlabelled; others float32). The standard
    ``classification`` holds the labels of ``classify_by`` (``label`` or one of ``fields``) for
    GIS viewers, named by a Classification Lookup record (a class's index is its code, unlabelled
    points the code after the last class); a scene of more than 254 classes leaves it 0. A scene
    read from a LAS file keeps its coordinate reference system records (``meta['las_crs']``),
    which are written again."""
    from ..npzio import atomic_write_bytes, check_output_file
    p = Path(path)
    check_output_file(p, p.suffix.lower() if p.suffix.lower() in (".las", ".laz") else ".las", "write_las")
    laspy = require_laspy(p)
    extra: dict[str, np.ndarray] = {}
    for name, val in (("label", scene.semantic), ("instance", scene.instance), ("segment", scene.segment)):
        if val is not None:
            extra[name] = np.asarray(val)
    standard = {n.lower() for n in laspy.PointFormat(7).standard_dimension_names}
    for k, val in (fields or {}).items():
        val = np.asarray(val)
        if len(val) != scene.num_points:
            raise ValueError(f"write_las field {k!r}: length {len(val)} != {scene.num_points} points")
        if k.lower() in standard or k in extra:
            raise ValueError(f"write_las field {k!r}: the file already has a dimension of that name "
                             f"({'a standard LAS one' if k.lower() in standard else 'from the scene'}); name the field otherwise")
        if not k or len(k.encode("utf-8")) > LAS_NAME_BYTES:
            raise ValueError(f"write_las field {k!r}: an extra-bytes dimension's name holds 1 to {LAS_NAME_BYTES} bytes")
        extra[k] = val
    if classify_by not in extra and classify_by != "label":
        raise ValueError(f"write_las classify_by={classify_by!r}: not one of the fields {sorted(extra)}")
    units, shift = scene.file_units_and_shift()  # a file in feet is written in feet
    xyz = (scene.coord.astype(np.float64) + shift) / units
    lo, hi = column_bounds(xyz)
    span = float((hi - lo).max())
    scale = next((s for s in LAS_SCALES if span / s < 2 ** 31 - 1), LAS_SCALES[-1])
    header = laspy.LasHeader(point_format=7 if scene.color is not None else 6, version="1.4")
    header.offsets, header.scales = np.floor(lo), np.full(3, scale)
    for k, val in extra.items():
        header.add_extra_dim(laspy.ExtraBytesParams(name=k, type=np.int32 if val.dtype.kind in "iub" else np.float32))
    classified = extra.get(classify_by)
    if classified is not None and len(scene.classes) <= 254:
        from laspy.vlrs.known import ClassificationLookupVlr
        codes, names = _class_codes(scene.classes, classified)
        lookup = ClassificationLookupVlr()
        for code, name in names.items():
            lookup[code] = name
        header.vlrs.append(lookup)
    for rec in scene.meta.get("las_crs", ()):  # the source file's coordinate reference system
        header.vlrs.append(laspy.VLR(user_id=CRS_USER_ID, record_id=int(rec["record_id"]), description=str(rec["description"]),
                                     record_data=base64.b64decode(str(rec["data"]))))
        if int(rec["record_id"]) == WKT_RECORD_ID:
            header.global_encoding.wkt = True
    if scene.classes:
        header.vlrs.append(laspy.VLR(user_id=CLASSES_VLR[0], record_id=CLASSES_VLR[1], description="pcweak class names",
                                     record_data=class_names_text(scene.classes).encode("utf-8")))
    las = laspy.LasData(header)
    las.x, las.y, las.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if scene.color is not None:
        rgb = np.round(np.clip(scene.color, 0, 1) * 65535).astype(np.uint16)
        las.red, las.green, las.blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    if scene.intensity is not None:
        inten = np.asarray(scene.intensity, np.float64)  # [0,1] as readers give it, else a file's raw values
        las.intensity = np.round(np.clip(inten * 65535 if inten.max(initial=0) <= 1 else inten, 0, 65535)).astype(np.uint16)
    if classified is not None and len(scene.classes) <= 254:
        las.classification = codes
    for k, val in extra.items():
        las[k] = val.astype(np.int32 if val.dtype.kind in "iub" else np.float32)
    buf = io.BytesIO()
    las.write(buf, do_compress=p.suffix.lower() == ".laz")
    return atomic_write_bytes(p, buf.getvalue())

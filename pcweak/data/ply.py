"""Generic PLY point clouds / meshes (``ply:<file>``) with optional per-vertex label fields.

Recognised vertex properties, whatever their case: ``x y z`` (required); colours as ``red green
blue`` (or ``diffuse_red ...``, ``r g b``: 8 or 16 bits, or floats in [0,1] or 0-255) or one
packed ``rgb``/``rgba`` (PCL's); ``nx ny nz``; an intensity (``INTENSITY_FIELDS``); semantic
labels (``SEMANTIC_FIELDS``: ``label``, ``scalar_Label``, ``sem_class``, ``classification``, ...);
instances (``INSTANCE_FIELDS``); ``segment``. Faces, when present, give normals. A header
comment ``pcweak_classes <name>,<name>,...`` (written by pcweak's exporters; a JSON list where a
name holds a comma, ``point_fields.class_names_text``) names the classes;
otherwise labels are named ``class_<i>``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..classes import placeholder_class
from ..errors import ReaderError
from ..geometry import vertex_normals
from ..scene import Scene
from .point_fields import (COLOR_FIELDS, INSTANCE_FIELDS, INTENSITY_FIELDS, NORMAL_FIELDS, PACKED_COLOR_FIELDS,
                           SEMANTIC_FIELDS, class_names_comment, class_names_of_comment, first_field, unit_colors,
                           whole_labels)


def _colors(path: Path, v: np.ndarray, have: tuple[str, ...]) -> np.ndarray | None:
    """(N,3) float32 colours in [0,1] from the vertex properties, or None: separate channels
    (``COLOR_FIELDS``) of 8 or 16 bits, or floats in [0,1], [0,255] or [0,65535] (the range their
    largest value falls in), or one packed ``rgb``/``rgba`` property (PCL's: 0x00RRGGBB in a
    float32's or a uint32's bits). ReaderError naming the file for values none of those."""
    names = next((f for f in COLOR_FIELDS if all(k in have for k in f)), None)
    if names is not None:
        return unit_colors(path, np.stack([v[k] for k in names], 1), names)
    packed = first_field(PACKED_COLOR_FIELDS, have)
    if packed is not None:
        raw = np.ascontiguousarray(v[packed])
        if raw.dtype.itemsize != 4:
            raise ReaderError(f"{path}: packed colour property {packed!r} is {raw.dtype}; expected 4 bytes "
                              f"(0x00RRGGBB as PCL writes it, in a float or an unsigned int)")
        bits = raw.view(np.uint32).astype(np.int64)
        rgb = np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], 1)
        return (rgb / 255.0).astype(np.float32)
    return None


def _binary_rows_size(ply) -> int:
    """The bytes a binary PLY's rows take as read: fixed-size properties by their count, list
    properties (a face's vertex indices) by each row's length prefix plus its values."""
    from plyfile import PlyListProperty
    size = 0
    for el in ply.elements:
        for prop in el.properties:
            if isinstance(prop, PlyListProperty):
                lengths = np.fromiter(map(len, el.data[prop.name]), np.int64, count=len(el.data))
                values = int(lengths.sum())
                size += el.count * np.dtype(prop.len_dtype).itemsize + values * np.dtype(prop.val_dtype).itemsize
            else:
                size += el.count * np.dtype(prop.val_dtype).itemsize
    return size


def _body_beyond_header(path: Path, ply) -> str | None:
    """What a PLY file holds past the rows its header declares, or None: a body that goes on
    after them (two files joined with ``cat``, a header whose counts were not updated) would be
    cut silently. ASCII: non-blank lines beyond one a row; binary: bytes beyond the rows
    (``_binary_rows_size``)."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
        end = head.find(b"end_header")
        if end < 0 or head.find(b"\n", end) < 0:
            return None
        start = head.find(b"\n", end) + 1
        if not ply.text:
            size = _binary_rows_size(ply)
            body = path.stat().st_size - start
            f.seek(start + size)
            if body <= size or (body - size <= 64 and not f.read(64).strip()):  # a line end some tools add
                return None
            return f"{body} bytes of rows, its header declares {size}"
        f.seek(start)
        lines = sum(1 for line in f if line.strip())
    rows = sum(el.count for el in ply.elements)
    return f"{lines} lines of rows, its header declares {rows}" if lines > rows else None


def read_ply(path: str | os.PathLike, classes: tuple[str, ...] | None = None) -> Scene:
    """Read a PLY file into a ``Scene`` (vertex order preserved). Labels are whole numbers;
    255 in an unsigned 8-bit label property means unlabelled (-1). A face that refers to a
    missing vertex is an error, and so is a body longer than the header declares."""
    from plyfile import PlyData
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    try:
        ply = PlyData.read(str(path))
        v = ply["vertex"].data
    except Exception as e:
        raise ReaderError(f"{path}: not a readable PLY file ({type(e).__name__}: {e})") from e
    beyond = _body_beyond_header(path, ply)
    if beyond:
        raise ReaderError(f"{path}: its body holds more than its header declares ({beyond}): the rows after would be "
                          f"dropped unread; correct the header's element counts")
    original = {n.lower(): n for n in v.dtype.names}  # properties are matched whatever their case
    if len(original) == len(v.dtype.names):
        from numpy.lib import recfunctions
        v = recfunctions.rename_fields(v, {n: n.lower() for n in v.dtype.names})
    have = v.dtype.names
    if not all(k in have for k in "xyz"):
        raise ReaderError(f"{path}: vertex element has no x/y/z properties (has {list(have)})")
    coord = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float64)
    if len(coord) == 0:
        raise ReaderError(f"{path}: no vertices (empty point cloud)")
    bad = ~np.isfinite(coord).all(1)
    if bad.any():
        raise ReaderError(f"{path}: {int(bad.sum())} vertices have NaN/inf coordinates (first at index {int(np.argmax(bad))})")
    color = _colors(path, v, have)
    normal = faces = None
    if "face" in ply and len(ply["face"].data):
        fd = ply["face"].data
        try:
            faces = np.vstack(fd[fd.dtype.names[0]]).astype(np.int64)
        except ValueError:
            faces = None  # polygons of mixed size: not a triangle mesh
        if faces is not None and faces.shape[1] != 3:
            faces = None  # not a triangle mesh: read as a point cloud
        elif faces is not None and (faces.min() < 0 or faces.max() >= len(coord)):
            bad = int(np.flatnonzero((faces < 0).any(1) | (faces >= len(coord)).any(1))[0])
            raise ReaderError(f"{path}: face {bad} refers to vertex {faces[bad].tolist()}, outside [0, {len(coord)}) "
                              f"(a corrupt mesh)")
    normal_names = next((c for c in NORMAL_FIELDS if all(k in have for k in c)), None)
    if normal_names is not None:
        normal = np.stack([v[k] for k in normal_names], 1).astype(np.float32)
    elif faces is not None:
        normal = vertex_normals(coord, faces)
    segment = whole_labels(path, "segment", v["segment"], ignore_255=False) if "segment" in have else None
    meta = {"dataset": "ply", "source": str(path)}
    if segment is None and faces is not None:
        # a triangle mesh: ScanNet's segmentator on its edges (better than a kNN graph's FH)
        from ..segment.superpoints import mesh_segments
        segment = mesh_segments(coord, faces)
        meta["segment_source"] = "mesh_segments"
    inten = first_field(INTENSITY_FIELDS, have)
    sem_f, ins_f = first_field(SEMANTIC_FIELDS, have), first_field(INSTANCE_FIELDS, have)
    semantic = whole_labels(path, original.get(sem_f, sem_f), v[sem_f], ignore_255=True, classes=True) if sem_f else None
    instance = whole_labels(path, original.get(ins_f, ins_f), v[ins_f], ignore_255=False) if ins_f else None
    if classes is None:
        for c in ply.comments:
            named = class_names_of_comment(c)
            classes = classes if named is None else named
        if classes is None and semantic is not None:
            classes = tuple(placeholder_class(i) for i in range(int(semantic.max()) + 1 if len(semantic) else 0))
    return Scene(name=path.stem, coord=coord, classes=classes or (), color=color, normal=normal,
                 intensity=np.asarray(v[inten], np.float32) if inten else None, semantic=semantic,
                 instance=instance,
                 segment=segment, meta=meta)


def write_ply(scene: Scene, path: str | os.PathLike, fields: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``scene`` as a binary PLY with colour, normals, ``label``/``instance``/``segment``
    and any extra per-point scalar ``fields`` (e.g. ``confidence``) that CloudCompare and
    MeshLab read. Written atomically. A scene shifted on reading (``meta['coord_shift']``, a
    georeferenced file) is written at its file's own coordinates, in float64."""
    from plyfile import PlyData, PlyElement
    from ..npzio import atomic_write_bytes, check_output_file
    import io
    check_output_file(path, ".ply", "write_ply")
    shift = scene.meta.get("coord_shift")  # a georeferenced scene: its file's own coordinates, in float64
    xyz, kind = (scene.coord, "f4") if shift is None else (scene.coord.astype(np.float64) + np.asarray(shift, np.float64), "f8")
    cols: list[tuple[str, np.ndarray, str]] = [("x", xyz[:, 0], kind), ("y", xyz[:, 1], kind), ("z", xyz[:, 2], kind)]
    if scene.color is not None:
        rgb = np.round(scene.color * 255).astype(np.uint8)
        cols += [("red", rgb[:, 0], "u1"), ("green", rgb[:, 1], "u1"), ("blue", rgb[:, 2], "u1")]
    if scene.normal is not None:
        cols += [("nx", scene.normal[:, 0], "f4"), ("ny", scene.normal[:, 1], "f4"), ("nz", scene.normal[:, 2], "f4")]
    if scene.intensity is not None:
        cols.append(("intensity", scene.intensity, "f4"))
    for name in ("semantic", "instance", "segment"):
        val = getattr(scene, name)
        if val is not None:
            cols.append(("label" if name == "semantic" else name, val, "i4"))
    for k, val in (fields or {}).items():
        val = np.asarray(val)
        if len(val) != scene.num_points:
            raise ValueError(f"write_ply field {k!r}: length {len(val)} != {scene.num_points} points")
        cols.append((k, val, "i4" if val.dtype.kind in "iub" else "f4"))
    arr = np.zeros(scene.num_points, dtype=[(n, t) for n, _, t in cols])
    for n, val, _ in cols:
        arr[n] = val
    comments = [class_names_comment(scene.classes)] if scene.classes else []
    buf = io.BytesIO()
    PlyData([PlyElement.describe(arr, "vertex")], text=False, comments=comments).write(buf)
    return atomic_write_bytes(path, buf.getvalue())

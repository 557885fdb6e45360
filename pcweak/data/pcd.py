"""PCD files (the Point Cloud Library's format: ROS, LiDAR and depth-camera tools, point-cloud
annotation tools), read with Open3D's tensor reader, which keeps every field of the file: ascii,
binary and binary_compressed data. The header is first checked against the body
(``check_pcd_header``), which Open3D's reader does not do.

Fields, matched whatever their case: ``x y z``; colour as PCL packs it (``rgb`` / ``rgba``) or as
channels; ``normal_x normal_y normal_z``; an intensity (``intensity``, ``reflectance``, ...);
labels as ``point_fields.SEMANTIC_FIELDS`` / ``INSTANCE_FIELDS`` name them (PCL's ``PointXYZL``
writes ``label``); ``segment``, a scene's own over-segmentation (``write_pcd`` keeps a mesh's).
A PCD does not name its classes: labels get placeholders up to the highest
(``classes.placeholder_class``), which ``pcweak import --classes`` can name; pcweak's own PCD files
(``write_pcd``, ``pcweak viz --export``) name them in a header comment,
``# pcweak_classes ...`` (``point_fields.class_names_comment``).

An organized cloud (``HEIGHT`` > 1, a depth camera's or a spinning LiDAR's image of points) marks
pixels without a return by NaN coordinates, as PCL does; those points are left out, with a warning
(point indices then count the points kept, in file order).
"""
from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..classes import placeholder_class
from ..errors import ReaderError
from ..npzio import atomic_write_bytes, check_output_file
from ..open3d_lib import open3d
from ..scene import Scene
from .point_fields import (COLOR_FIELDS, INSTANCE_FIELDS, INTENSITY_FIELDS, SEMANTIC_FIELDS, class_names_comment,
                           class_names_of_comment, first_field, unit_colors, whole_labels)


def _header_classes(path: Path) -> tuple[str, ...] | None:
    """The class names a ``# `` + ``class_names_comment`` line of the file's header gives, or None."""
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("# ") and (named := class_names_of_comment(line[2:])) is not None:
                return named
            if line.startswith("DATA") or not line.startswith(("#", "VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH",
                                                                "HEIGHT", "VIEWPOINT", "POINTS")):
                return None
    return None


PCD_SIZES = {"I": (1, 2, 4, 8), "U": (1, 2, 4, 8), "F": (4, 8)}  # TYPE -> the SIZEs PCL writes for it
PCD_DATA = ("ascii", "binary", "binary_compressed")
_NOT_A_NUMBER = re.compile(rb"[^0-9eE+\-.\snNaAiIfF]")  # a byte no number (nan and inf included) holds


def _is_number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def check_pcd_header(path: Path) -> None:
    """ReaderError naming ``path`` where its header and data disagree, which Open3D's reader does
    not check: it reads past the end of a body shorter than POINTS (memory's leftovers as points),
    a word as 0, a field of COUNT 2 from a body of one value a field, and takes DATA it does not
    know as binary. Checked: FIELDS, SIZE, TYPE and COUNT name as many fields, each TYPE / SIZE
    one PCL writes, WIDTH x HEIGHT = POINTS, a DATA of ``PCD_DATA``; an ascii body of POINTS lines
    of as many numbers as the fields' COUNTs add up to; a binary body at least POINTS records
    long."""
    with open(path, "rb") as f:
        raw = f.read(1 << 16)  # the header (a few hundred bytes; PCL's are text lines before DATA)
    head: dict[str, list[str]] = {}
    at = 0
    while at < len(raw):
        end = raw.find(b"\n", at)
        end = len(raw) if end < 0 else end
        line = raw[at:end].decode("ascii", "replace").strip()
        at = end + 1
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(" ")
        head[key.upper()] = rest.split()
        if key.upper() == "DATA":
            break
    if "FIELDS" not in head:
        raise ReaderError(f"{path}: not a readable PCD file (no FIELDS line in its header)")
    if "DATA" not in head:
        raise ReaderError(f"{path}: not a readable PCD file (its header has no DATA line)")
    fields = head["FIELDS"]
    k = len(fields)
    twice = sorted({f for f in fields if fields.count(f) > 1})
    if twice:
        raise ReaderError(f"{path}: its header names the fields {twice} twice")
    sizes, types = head.get("SIZE", []), head.get("TYPE", [])
    counts = head.get("COUNT", ["1"] * k)
    if not (len(sizes) == len(types) == len(counts) == k):
        raise ReaderError(f"{path}: its header names {k} FIELDS but {len(sizes)} SIZE, {len(types)} TYPE and "
                          f"{len(counts)} COUNT values")
    try:
        sizes_n, counts_n = [int(x) for x in sizes], [int(x) for x in counts]
        points = int(head["POINTS"][0]) if "POINTS" in head else None
        width = int(head["WIDTH"][0]) if "WIDTH" in head else None
        height = int(head["HEIGHT"][0]) if "HEIGHT" in head else 1
    except (ValueError, IndexError) as e:
        raise ReaderError(f"{path}: a SIZE, COUNT, POINTS, WIDTH or HEIGHT of its header is no whole number ({e})") from None
    for name, t, size, count in zip(fields, types, sizes_n, counts_n):
        if t.upper() not in PCD_SIZES or size not in PCD_SIZES[t.upper()] or count < 1:
            raise ReaderError(f"{path}: field {name!r} has TYPE {t}, SIZE {size}, COUNT {count}; PCD fields are I or U "
                              f"of 1, 2, 4 or 8 bytes, or F of 4 or 8, with a COUNT of 1 or more")
    points = width * height if points is None and width is not None else points
    if points is None or points < 0 or (width is not None and width * height != points):
        raise ReaderError(f"{path}: its header gives POINTS {points} with WIDTH {width} x HEIGHT {height}; POINTS is "
                          f"their product, the number of points the file holds")
    data = head["DATA"][0].lower() if head["DATA"] else ""
    if data not in PCD_DATA:
        raise ReaderError(f"{path}: DATA {data!r}; PCD data is one of {', '.join(PCD_DATA)}")
    record = sum(s * c for s, c in zip(sizes_n, counts_n))
    if data == "ascii":
        with open(path, "rb") as f:
            f.seek(at)
            body = f.read()
        rows = [r for r in body.split(b"\n") if r.strip()]
        if len(rows) != points:
            raise ReaderError(f"{path}: its header gives {points} POINTS, its body holds {len(rows)} lines")
        want = sum(counts_n)
        short = next((i for i, r in enumerate(rows) if len(r.split()) != want), None)
        if short is not None:
            raise ReaderError(f"{path}: point {short} has {len(rows[short].split())} values where the header's fields "
                              f"hold {want}")
        word = _NOT_A_NUMBER.search(body)
        if word is not None:
            point = next(i for i, r in enumerate(rows) if _NOT_A_NUMBER.search(r))
            token = next(t for t in rows[point].split() if not _is_number(t))
            raise ReaderError(f"{path}: point {point} holds {token.decode('utf-8', 'replace')!r}, not a number")
    elif data == "binary" and os.path.getsize(path) - at < points * record:
        raise ReaderError(f"{path}: its header gives {points} POINTS of {record} bytes, its body holds "
                          f"{os.path.getsize(path) - at} bytes")


def read_pcd(path: str | os.PathLike, classes: tuple[str, ...] | None = None) -> Scene:
    """Read a PCD file into a ``Scene`` (point order kept, points without coordinates left out).
    ``classes`` names the labels (default: placeholders up to the highest label); 255 in an
    unsigned 8-bit label field means unlabelled (-1). ReaderError naming the file for one Open3D
    cannot read, without x/y/z, empty, or whose label fields are not whole numbers."""
    o3d = open3d()
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    check_pcd_header(path)
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        cloud = o3d.t.io.read_point_cloud(str(path))
    fields = {str(k): cloud.point[k].numpy() for k in cloud.point}
    if "positions" not in fields:
        with open(path, "rb") as f:
            head = f.read(4096).decode("ascii", "replace")
        if "FIELDS" not in head:
            raise ReaderError(f"{path}: not a readable PCD file (no FIELDS line in its header)")
        raise ReaderError(f"{path}: no points read (a PCD without x/y/z fields, an empty cloud, or a corrupt one)")
    coord = fields.pop("positions").astype(np.float64)
    named = {k.lower(): k for k in fields}
    keep = np.isfinite(coord).all(1)
    if not keep.any():
        raise ReaderError(f"{path}: no point has finite x/y/z ({len(coord)} points)")
    if not keep.all():
        warnings.warn(f"{path}: {int((~keep).sum())} of {len(coord)} points have NaN/inf coordinates (an "
                      f"organized cloud's pixels without a return) and are left out; point indices count the "
                      f"{int(keep.sum())} kept")
    coord = coord[keep]

    def column(name: str) -> np.ndarray:
        a = fields[named[name]][keep]
        return a[:, 0] if a.ndim == 2 and a.shape[1] == 1 else a
    color = None
    if "colors" in fields:  # Open3D's name for PCL's packed rgb / rgba
        color = unit_colors(path, fields["colors"][keep], ("rgb",))
    else:  # channels of their own (r g b, red green blue, ...)
        channels = next((c for c in COLOR_FIELDS if all(n in named for n in c)), None)
        if channels is not None:
            color = unit_colors(path, np.stack([column(n) for n in channels], 1), [named[n] for n in channels])
    normal = fields["normals"][keep].astype(np.float32) if "normals" in fields else None
    have = tuple(named)
    inten, sem_f, ins_f = (first_field(f, have) for f in (INTENSITY_FIELDS, SEMANTIC_FIELDS, INSTANCE_FIELDS))
    semantic = instance = None
    if sem_f is not None:
        semantic = whole_labels(path, named[sem_f], column(sem_f), ignore_255=True, classes=True)
        semantic = semantic if (semantic >= 0).any() else None  # every point unlabelled: no labels
    if ins_f is not None:
        instance = whole_labels(path, named[ins_f], column(ins_f), ignore_255=False)
    segment = whole_labels(path, named["segment"], column("segment"), ignore_255=False) if "segment" in named else None
    if classes is None and semantic is not None:
        classes = _header_classes(path) or tuple(placeholder_class(i) for i in range(int(semantic.max()) + 1))
    return Scene(name=path.stem, coord=coord, classes=classes or (), color=color, normal=normal,
                 intensity=None if inten is None else column(inten).astype(np.float32), semantic=semantic,
                 instance=instance, segment=segment, meta={"dataset": "pcd", "source": str(path)})


def write_pcd(scene: Scene, path: str | os.PathLike, fields: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``scene`` as a compressed binary PCD that PCL, Open3D and ROS tools read: x y z,
    packed ``rgb``, normals, ``intensity``, ``label`` / ``instance`` / ``segment`` (int32, -1 =
    none) and any extra per-point ``fields`` (e.g. ``pseudo_label``, ``confidence``), the class
    names in a header comment. Written atomically (``npzio.atomic_write_bytes``; Open3D writes
    into a temporary folder first, so a killed export leaves no ``.pcd`` beside the output that a
    folder of scenes would list). A scene shifted on reading (``meta['coord_shift']``) is written
    at its file's own coordinates, in float64."""
    o3d = open3d()
    check_output_file(path, ".pcd", "write_pcd")
    path = Path(path)
    shift = scene.meta.get("coord_shift")
    xyz = scene.coord if shift is None else scene.coord.astype(np.float64) + np.asarray(shift, np.float64)
    pc = o3d.t.geometry.PointCloud()
    pc.point.positions = o3d.core.Tensor(np.ascontiguousarray(xyz))
    if scene.color is not None:
        pc.point.colors = o3d.core.Tensor(np.round(np.clip(scene.color, 0, 1) * 255).astype(np.uint8))
    if scene.normal is not None:
        pc.point.normals = o3d.core.Tensor(np.ascontiguousarray(scene.normal, np.float32))
    per_point = {"intensity": scene.intensity, "label": scene.semantic, "instance": scene.instance, "segment": scene.segment}
    for name, value in {**per_point, **(fields or {})}.items():
        if value is None:
            continue
        v = np.asarray(value)
        if v.shape != (scene.num_points,):
            raise ValueError(f"write_pcd: field {name!r} has shape {v.shape}, expected ({scene.num_points},)")
        v = v.astype(np.int32) if v.dtype.kind in "iub" else v.astype(np.float32)
        setattr(pc.point, name, o3d.core.Tensor(v[:, None]))
    with tempfile.TemporaryDirectory(prefix="pcweak-pcd-") as tmp:
        written = Path(tmp) / path.name
        with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
            ok = o3d.t.io.write_point_cloud(str(written), pc, write_ascii=False, compressed=True)
        if not ok:
            raise OSError(f"cannot write {path} (Open3D's PCD writer failed)")
        body = written.read_bytes()
    head = f"# {class_names_comment(scene.classes)}\n".encode() if scene.classes else b""
    return atomic_write_bytes(path, head + body)

"""PCD files (the Point Cloud Library's format: ROS, LiDAR and depth-camera tools, point-cloud
annotation tools), read with Open3D's tensor reader, which keeps every field of the file: ascii,
binary and binary_compressed data.

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
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..classes import placeholder_class
from ..errors import ReaderError
from ..npzio import atomic_write_bytes, check_output_file
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


def read_pcd(path: str | os.PathLike, classes: tuple[str, ...] | None = None) -> Scene:
    """Read a PCD file into a ``Scene`` (point order kept, points without coordinates left out).
    ``classes`` names the labels (default: placeholders up to the highest label); 255 in an
    unsigned 8-bit label field means unlabelled (-1). ReaderError naming the file for one Open3D
    cannot read, without x/y/z, empty, or whose label fields are not whole numbers."""
    import open3d as o3d
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
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
    import open3d as o3d
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

"""Reader of Pointcept's preprocessed scenes: one folder of ``.npy`` arrays per scene.

``pointcept/datasets/preprocessing`` leaves, for ScanNet ``<root>/{train,val,test}/<scene>/`` and
for S3DIS ``<root>/Area_N/<room>/``::

    coord.npy      float32 (N,3) metres (ScanNet: the mesh's raw frame, not axis-aligned)
    color.npy      uint8 or float (N,3), 0-255
    normal.npy     float32 (N,3), optional
    segment20.npy  ScanNet: int (N,) index into the 20 benchmark classes, -1 ignored
    segment.npy    S3DIS: int (N,) index into the 13 classes, -1 ignored
    instance.npy   int (N,) object id, -1 none (optional)

Arrays are read with ``allow_pickle=False``. ScanNet boxes are made around the instances of
object classes, as the ``scannet:`` reader makes them; ``axis_alignment=`` (a matrix or a file
that ``scannet.axis_alignment_of`` reads) turns ScanNet points into the aligned frame.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import S3DIS13, SCANNET20
from ..errors import ReaderError
from ..geometry import apply_transform
from ..scene import Scene
from .address import check_indoor_dataset, scene_name
from .point_fields import npy_array, npy_labels
from .scannet import axis_alignment_of, boxes_of_instances

POINTCEPT_DATASETS = ("scannet", "s3dis")


def _array(d: Path, name: str, n: int | None, width: int | None) -> np.ndarray | None:
    """``<d>/<name>.npy`` as ``point_fields.npy_array`` checks it; None when the file is absent."""
    p = d / f"{name}.npy"
    return npy_array(p, n, width) if p.is_file() else None


def _labels(d: Path, name: str, n: int, n_classes: int | None) -> np.ndarray | None:
    """``<d>/<name>.npy`` as ``point_fields.npy_labels`` checks it; None when the file is absent."""
    p = d / f"{name}.npy"
    return npy_labels(p, n, n_classes) if p.is_file() else None


def read_pointcept(path: str | os.PathLike, dataset: str,
                   axis_alignment: np.ndarray | str | os.PathLike | None = None) -> Scene:
    """A Pointcept scene folder (module docstring).

    Args:
        path: ``<root>/train/scene0000_00`` (ScanNet) or ``<root>/Area_1/office_1`` (S3DIS).
        dataset: ``"scannet"`` (ScanNet-20 classes, ``segment20.npy``) or ``"s3dis"`` (13 classes,
            ``segment.npy``).
        axis_alignment: ScanNet: a (4,4) matrix or a file, applied to points and normals.
    """
    if dataset not in POINTCEPT_DATASETS:
        raise ReaderError(f"Pointcept layout: dataset must be one of {POINTCEPT_DATASETS}, got {dataset!r}")
    d = Path(path)
    if not (d / "coord.npy").is_file():
        raise ReaderError(f"{d}: no coord.npy (expected a Pointcept scene folder of .npy arrays)")
    for name in (d.name, d.parent.name):  # ScanNet: train/scene0000_00; S3DIS: Area_1/office_1
        check_indoor_dataset(name, dataset, "pointcept", d, str(d))
    own, other = ("segment20", "segment") if dataset == "scannet" else ("segment", "segment20")
    if (d / f"{other}.npy").is_file() and not (d / f"{own}.npy").is_file():
        found = "s3dis" if dataset == "scannet" else "scannet"
        raise ReaderError(f"{d}: holds {other}.npy ({'S3DIS' if found == 's3dis' else 'ScanNet-20'} labels) and no {own}.npy, "
                          f"so it is not a pointcept-{dataset} scene; read it as pointcept-{found}:{d}")
    coord = _array(d, "coord", None, 3).astype(np.float64)
    n = len(coord)
    if not np.isfinite(coord).all():
        raise ReaderError(f"{d / 'coord.npy'}: {int((~np.isfinite(coord)).any(1).sum())} points have NaN/inf coordinates")
    color = _array(d, "color", n, 3)
    if color is not None:
        color = color.astype(np.float64)
        if not np.isfinite(color).all() or color.min() < 0 or color.max() > 255:
            raise ReaderError(f"{d / 'color.npy'}: colours must lie in 0-255")
        color = (color / 255.0).astype(np.float32)
    normal = _array(d, "normal", n, 3)
    if normal is not None:
        normal = normal.astype(np.float64)
        if not np.isfinite(normal).all():
            raise ReaderError(f"{d / 'normal.npy'}: NaN/inf normals")
    classes = SCANNET20 if dataset == "scannet" else S3DIS13
    semantic = _labels(d, "segment20" if dataset == "scannet" else "segment", n, len(classes))
    instance = _labels(d, "instance", n, None)
    meta: dict[str, Any] = {"dataset": f"pointcept-{dataset}", "source": str(d)}
    A = None
    boxes = box_labels = None
    if dataset == "scannet":
        if axis_alignment is not None:
            A = axis_alignment_of(axis_alignment)
            coord = apply_transform(coord, A)
            if normal is not None:
                normal = normal @ A[:3, :3].T
        if semantic is not None and instance is not None:
            boxes, box_labels = boxes_of_instances(coord, instance, semantic)
    if normal is not None:
        length = np.linalg.norm(normal, axis=1, keepdims=True)
        normal = np.where(length > 0, normal / np.maximum(length, 1e-12), 0.0).astype(np.float32)
    return Scene(name=scene_name(f"pointcept-{dataset}:{d}"), coord=coord.astype(np.float32), classes=classes, color=color, normal=normal,
                 semantic=semantic, instance=instance, boxes=boxes, box_labels=box_labels, axis_alignment=A, meta=meta)

"""Scene addresses ``DATASET:PATH`` -> ``Scene`` (the entry point ``pcweak.load_scene``).

``scannet:<root>/scans/scene0000_00``, ``s3dis:<root>/Area_1/office_1``,
``kitti:<root>/training/000000``,
``semantickitti:<root>/sequences/00/000000``, ``ply:<file.ply>``, ``npz:<file.npz>``,
``synthetic:<seed>`` (indoor room), ``synthetic-lidar:<seed>`` (KITTI-like frame) and
``scannet-export:<dir>/<scene>`` (the ``<scene>_vert_all.npy`` / ``_sem_label_all.npy`` /
``_ins_label_all.npy`` export of mmdetection3d / VoteNet, e.g. ``scannet_train_instance_data``),
``mmdet3d-scannet:<root>/<scene>`` and ``mmdet3d-s3dis:<root>/<room>`` (mmdetection3d's processed
``points/ semantic_mask/ instance_mask/`` layout, ``data/mmdet3d.py``), ``pointcept-scannet:<dir>``
and ``pointcept-s3dis:<dir>`` (Pointcept's folders of ``coord.npy`` ..., ``data/pointcept.py``).
A bare path is accepted when its kind is unambiguous (``.ply``, ``.npz``).
"""
from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

from ..errors import AddressError
from ..scene import Scene

DATASETS = ("scannet", "scannet-export", "mmdet3d-scannet", "mmdet3d-s3dis", "pointcept-scannet", "pointcept-s3dis", "s3dis",
            "kitti", "semantickitti", "ply", "npz", "synthetic", "synthetic-lidar")


def parse_address(address: str) -> tuple[str, str]:
    """Split ``DATASET:PATH``; bare ``.ply``/``.npz`` paths get their kind from the suffix."""
    address = str(address)
    if ":" in address:
        kind, rest = address.split(":", 1)
        if kind in DATASETS:
            return kind, rest
    suffix = Path(address).suffix.lower()
    if suffix in (".ply", ".npz"):
        return suffix[1:], address
    raise AddressError(f"scene address {address!r}: expected DATASET:PATH with DATASET one of {', '.join(DATASETS)}")


def load_scene(address: str | os.PathLike, **kwargs: Any) -> Scene:
    """Load a scene from an address; points come in the file's own order (no subsampling).

    Extra keyword arguments go to the reader (e.g. ``axis_alignment=`` for ScanNet v1,
    ``n_frames=`` for synthetic rooms). Synthetic scenes are generated once per process and
    handed out as copies."""
    kind, rest = parse_address(str(address))
    if kind == "scannet":
        from .scannet import read_scannet
        return read_scannet(rest, **kwargs)
    if kind == "scannet-export":
        from .scannet import read_scannet_export
        path = Path(rest)
        return read_scannet_export(path.parent, path.name, **kwargs)
    if kind in ("mmdet3d-scannet", "mmdet3d-s3dis"):
        from .mmdet3d import read_mmdet3d
        return read_mmdet3d(rest, kind.split("-", 1)[1], **kwargs)
    if kind in ("pointcept-scannet", "pointcept-s3dis"):
        from .pointcept import read_pointcept
        return read_pointcept(rest, kind.split("-", 1)[1], **kwargs)
    if kind == "s3dis":
        from .s3dis import read_s3dis
        return read_s3dis(rest, **kwargs)
    if kind == "kitti":
        from .kitti import read_kitti
        return read_kitti(rest, **kwargs)
    if kind == "semantickitti":
        from .semantickitti import read_semantickitti
        return read_semantickitti(rest, **kwargs)
    if kind == "ply":
        from .ply import read_ply
        return read_ply(rest, **kwargs)
    if kind == "npz":
        return Scene.load(rest)
    try:
        seed = int(rest)
    except ValueError:
        raise AddressError(f"scene address {address!r}: the seed must be an integer") from None
    try:
        key = tuple(sorted(kwargs.items()))
        hash(key)
    except TypeError:  # unhashable reader arguments: made afresh
        return _synthetic(kind, seed, kwargs)
    return copy.deepcopy(_synthetic_cached(kind, seed, key))


def _synthetic(kind: str, seed: int, kwargs: dict[str, Any]) -> Scene:
    if kind == "synthetic":
        from .synthetic_indoor import synthetic_room
        return synthetic_room(seed, **kwargs)
    from .synthetic_lidar import synthetic_lidar
    return synthetic_lidar(seed, **kwargs)


@functools.lru_cache(maxsize=8)
def _synthetic_cached(kind: str, seed: int, key: tuple[tuple[str, Any], ...]) -> Scene:
    """A procedural scene made once per process (a room takes about 3 s; the generator is
    deterministic in its arguments); ``load_scene`` hands out copies, so no caller's change
    reaches another's scene."""
    return _synthetic(kind, seed, dict(key))


def source_files(address: str | os.PathLike) -> list[Path]:
    """The files a scene is read from, those that exist, sorted (a folder stands for every file
    under it): what identifies the scene's content, so that a resumed job never serves output
    made from other files (``label_jobs.scene_identity``). Generated scenes have none."""
    kind, rest = parse_address(str(address))
    p = Path(rest)
    if kind in ("synthetic", "synthetic-lidar"):
        return []
    if kind == "scannet":
        from .scannet import source_paths
        paths = source_paths(p)
    elif kind == "scannet-export":
        from .scannet import export_paths
        paths = export_paths(p.parent, p.name)
    elif kind in ("mmdet3d-scannet", "mmdet3d-s3dis"):
        from .mmdet3d import source_paths as mmdet3d_paths
        paths = mmdet3d_paths(p)
    elif kind == "kitti":
        from .kitti import source_paths as kitti_paths
        paths = kitti_paths(p)
    elif kind == "semantickitti":
        from .semantickitti import source_paths as semantickitti_paths
        paths = semantickitti_paths(p)
    else:  # ply / npz files, s3dis and pointcept folders
        paths = [p]
    files: set[Path] = set()
    for q in paths:
        if q.is_file():
            files.add(q)
        elif q.is_dir():
            files.update(f for f in q.rglob("*") if f.is_file())
    return sorted(files)

"""Scene addresses ``DATASET:PATH`` -> ``Scene`` (the entry point ``pcweak.load_scene``).

``scannet:<root>/scans/scene0000_00``, ``s3dis:<root>/Area_1/office_1``,
``kitti:<root>/training/000000``,
``semantickitti:<root>/sequences/00/000000``, ``ply:<file.ply>``, ``las:<file.las|.laz>``, ``e57:<file.e57>``, ``pcd:<file.pcd>``,
``txt:<file.txt|.xyz|.pts>`` (points as text: Semantic3D, PTS, CloudCompare), ``npz:<file.npz>``,
``synthetic:<seed>`` (indoor room), ``synthetic-lidar:<seed>`` (KITTI-like frame) and
``scannet-export:<dir>/<scene>`` (the ``<scene>_vert_all.npy`` / ``_sem_label_all.npy`` /
``_ins_label_all.npy`` export of mmdetection3d / VoteNet, e.g. ``scannet_train_instance_data``),
``mmdet3d-scannet:<root>/<scene>`` and ``mmdet3d-s3dis:<root>/<room>`` (mmdetection3d's processed
``points/ semantic_mask/ instance_mask/`` layout, ``data/mmdet3d.py``), ``pointcept-scannet:<dir>``
and ``pointcept-s3dis:<dir>`` (Pointcept's folders of ``coord.npy`` ..., ``data/pointcept.py``).
A bare path is accepted when its kind is unambiguous: a file by its suffix (``.ply``, ``.las``,
``.laz``, ``.e57``, ``.pcd``, ``.txt``, ``.xyz``, ``.pts``, ``.npz``), a folder that is a ScanNet scan, an S3DIS room or a Pointcept scene
(``folder_kind``).
"""
from __future__ import annotations

import copy
import functools
import importlib
import inspect
import os
import re
from pathlib import Path
from typing import Any, Callable

from ..errors import AddressError, ReaderError, SceneError
from ..scene import Scene

DATASETS = ("scannet", "scannet-export", "mmdet3d-scannet", "mmdet3d-s3dis", "pointcept-scannet", "pointcept-s3dis", "s3dis",
            "kitti", "semantickitti", "ply", "las", "e57", "pcd", "txt", "npz", "synthetic", "synthetic-lidar")

# a file suffix (lower case) -> the kind of a bare path with it
FILE_KINDS = {".ply": "ply", ".las": "las", ".laz": "las", ".e57": "e57", ".pcd": "pcd", ".npz": "npz", ".txt": "txt",
              ".xyz": "txt", ".pts": "txt"}
# suffixes read as scenes when given, but listed in a folder of scenes only under ``txt:FOLDER``
# (a folder of scans may hold notes and class lists as .txt files)
LISTED_ONLY_WHEN_NAMED = (".txt",)


def folder_kind(path: str | os.PathLike) -> str | None:
    """The dataset of a scene folder given without ``DATASET:``: ``scannet`` for a ScanNet scan
    (``<name>_vh_clean_2.ply`` inside), ``s3dis`` for an S3DIS room (``Annotations/``), and for a
    Pointcept scene (``coord.npy``) ``pointcept-s3dis`` in an ``Area_*`` folder, else
    ``pointcept-scannet``; None for anything else (a folder of scenes, say)."""
    p = Path(path)
    if (p / f"{p.name}_vh_clean_2.ply").is_file():
        return "scannet"
    if (p / "Annotations").is_dir():
        return "s3dis"
    if (p / "coord.npy").is_file():
        return "pointcept-s3dis" if dataset_named(p.parent.name) == "s3dis" else "pointcept-scannet"
    return None


def dataset_named(name: str) -> str | None:
    """The indoor dataset whose own naming ``name`` follows: ``"s3dis"`` for an area or a room
    of one (``Area_1``, mmdetection3d's ``Area_1_office_2``), ``"scannet"`` for a scan
    (``scene0000_00``); None for any other name. Tells the S3DIS and ScanNet variants of
    mmdetection3d's and Pointcept's layouts apart, which hold the same files."""
    if name.startswith("Area_"):
        return "s3dis"
    if re.fullmatch(r"scene\d{4}_\d{2}", name):
        return "scannet"
    return None


def check_indoor_dataset(name: str, dataset: str, layout: str, source: str | os.PathLike, fix: str) -> None:
    """ReaderError naming ``source`` when ``name`` (a scene's, or its folder's) follows the other
    indoor dataset's naming than ``dataset`` (``"scannet"`` or ``"s3dis"``) of ``layout``
    (``mmdet3d``, ``pointcept``): read that way, its labels would be decoded under the wrong
    class list without a word. ``fix``: the address to give instead (with the other dataset's
    prefix)."""
    found = dataset_named(name)
    if found is not None and found != dataset:
        names = {"scannet": "as ScanNet names its scans (sceneXXXX_YY)", "s3dis": "as S3DIS names its areas and rooms (Area_N...)"}
        raise ReaderError(f"{source}: {name!r} is named {names[found]}, but the address reads it as {layout}-{dataset} "
                          f"({'ScanNet-20' if dataset == 'scannet' else 'S3DIS'} classes); read it as "
                          f"{layout}-{found}:{fix}")


def parse_address(address: str) -> tuple[str, str]:
    """Split ``DATASET:PATH``; a bare path gets its kind from its suffix (``.ply``, ``.las``,
    ``.laz``, ``.e57``, ``.pcd``, ``.txt``, ``.xyz``, ``.pts``, ``.npz``) or, for a scene folder, from what it holds (``folder_kind``)."""
    address = str(address)
    if ":" in address:
        kind, rest = address.split(":", 1)
        if kind in DATASETS:
            if not rest.strip():  # a bare "scannet:" would read the working folder
                what = "a seed" if kind.startswith("synthetic") else "a path"
                raise AddressError(f"scene address {address!r}: {what} is missing after '{kind}:'")
            return kind, rest
    kind = FILE_KINDS.get(Path(address).suffix.lower()) or (folder_kind(address) if os.path.isdir(address) else None)
    if kind is not None:
        return kind, address
    if ":" not in address and not os.path.exists(address):
        raise AddressError(f"scene address {address!r}: no such file or folder{_address_in_parent(address)}")
    raise AddressError(f"scene address {address!r}: expected DATASET:PATH with DATASET one of {', '.join(DATASETS)} "
                       f"(a bare path is read as a file of its suffix, or a ScanNet scan, S3DIS room or Pointcept scene folder)")


def _address_in_parent(path: str) -> str:
    """For a path that does not exist: ``"; did you mean ADDRESS ..."`` where its folder is a folder
    of scenes holding one by that name, the address to give (a KITTI frame ``training/000001``, an
    mmdetection3d scene ``points/scene0113_00``, an exported scan: scenes that are no file or
    folder of their own name); else ``""``."""
    from .collection import enumerate_scenes
    parent, base = Path(path).parent, Path(path).name
    if not base or not parent.is_dir():
        return ""
    try:
        scenes = enumerate_scenes(str(parent))
    except (AddressError, ReaderError, OSError, ValueError):
        return ""
    for name, found in scenes:
        where = Path(found.split(":", 1)[1])
        if base in (name, where.name, where.stem):
            return f"; did you mean {found} (a scene of the folder {parent}, which pcweak info {parent} lists)?"
    return ""


# kind -> (module under pcweak.data, reader, how many leading arguments the address fills)
READERS: dict[str, tuple[str, str, int]] = {
    "scannet": ("scannet", "read_scannet", 1), "scannet-export": ("scannet", "read_scannet_export", 2),
    "mmdet3d-scannet": ("mmdet3d", "read_mmdet3d", 2), "mmdet3d-s3dis": ("mmdet3d", "read_mmdet3d", 2),
    "pointcept-scannet": ("pointcept", "read_pointcept", 2), "pointcept-s3dis": ("pointcept", "read_pointcept", 2),
    "s3dis": ("s3dis", "read_s3dis", 1), "kitti": ("kitti", "read_kitti", 1),
    "semantickitti": ("semantickitti", "read_semantickitti", 1), "ply": ("ply", "read_ply", 1), "las": ("las", "read_las", 1),
    "e57": ("e57", "read_e57", 1), "pcd": ("pcd", "read_pcd", 1), "txt": ("text_cloud", "read_text_cloud", 1),
    "synthetic": ("synthetic_indoor", "synthetic_room", 1), "synthetic-lidar": ("synthetic_lidar", "synthetic_lidar", 1),
}


def _reader(kind: str) -> tuple[Callable[..., Scene], int]:
    if kind == "npz":
        return Scene.load, 1
    module, name, filled = READERS[kind]
    return getattr(importlib.import_module(f".{module}", __package__), name), filled


def reader_options(kind: str) -> list[str]:
    """The keyword arguments the reader of scene addresses of ``kind`` takes (``load_scene``'s
    extra arguments), e.g. ``axis_alignment`` for ``scannet``, ``n_frames`` for ``synthetic``."""
    fn, filled = _reader(kind)
    params = list(inspect.signature(fn).parameters.values())[filled:]
    return [q.name for q in params if q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)]


def check_reader_options(address: str | os.PathLike, options: dict[str, Any]) -> None:
    """Raise AddressError when the reader of ``address`` does not take one of ``options`` (an
    ``--axis-align`` given for a KITTI frame, say), before anything is read."""
    kind = parse_address(str(address))[0]
    takes = reader_options(kind)
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise AddressError(f"scene address {str(address)!r}: a {kind} scene takes no {', '.join(unknown)} "
                           f"(its reader takes {', '.join(takes) or 'no options'})")


def load_scene(address: str | os.PathLike, **kwargs: Any) -> Scene:
    """Load a scene from an address; points come in the file's own order (no subsampling).

    Extra keyword arguments go to the reader (e.g. ``axis_alignment=`` for ScanNet v1,
    ``n_frames=`` for synthetic rooms; ``reader_options`` lists them); one the address's reader
    does not take is refused before anything is read. Synthetic scenes are generated once per
    process and handed out as copies."""
    check_reader_options(address, kwargs)
    kind, rest = parse_address(str(address))
    fn, _ = _reader(kind)
    if kind not in ("synthetic", "synthetic-lidar"):
        try:
            if kind == "scannet-export":
                return fn(Path(rest).parent, Path(rest).name, **kwargs)
            if kind in ("mmdet3d-scannet", "mmdet3d-s3dis", "pointcept-scannet", "pointcept-s3dis"):
                return fn(rest, kind.split("-", 1)[1], **kwargs)
            return fn(rest, **kwargs)
        except SceneError as e:  # a scene the file's values cannot make (coordinates beyond float32, ...)
            if rest in str(e):
                raise
            raise SceneError(f"{rest}: {e}") from e
    seed = _seed(address, rest)
    try:
        key = tuple(sorted(kwargs.items()))
        hash(key)
    except TypeError:  # unhashable reader arguments: made afresh
        return _synthetic(kind, seed, kwargs)
    return copy.deepcopy(_synthetic_cached(kind, seed, key))


def _seed(address: str | os.PathLike, rest: str) -> int:
    """The seed of a ``synthetic:`` / ``synthetic-lidar:`` address (numpy's generators take
    seeds >= 0, and their own message names neither the address nor the seed)."""
    try:
        seed = int(rest)
    except ValueError:
        seed = -1
    if seed < 0:
        raise AddressError(f"scene address {str(address)!r}: the seed must be an integer >= 0")
    return seed


def scene_name(address: str | os.PathLike) -> str:
    """The name ``load_scene(address)`` gives its scene (``Scene.name``), from the address alone:
    the name of a folder's scene in ``pcweak label``'s weak and output folders, whether the
    folder or the one scene is given. ScanNet, VoteNet exports, mmdetection3d and KITTI: the
    scene or frame (``scene0000_00``, ``000003``); S3DIS rooms ``Area_1_office_2``; SemanticKITTI
    scans ``<sequence>_<scan>`` (``00_000000``); PLY, LAS, E57, PCD, text and npz files their stem; generated scenes
    ``synthetic_<seed>`` / ``synthetic_lidar_<seed>``."""
    kind, rest = parse_address(str(address))
    if kind in ("synthetic", "synthetic-lidar"):
        return f"{kind.replace('-', '_')}_{_seed(address, rest)}"
    p = Path(rest)
    if kind in ("s3dis", "pointcept-s3dis", "semantickitti"):  # room and scan names repeat across areas, sequences
        return f"{p.parent.name}_{p.name}"
    if kind in FILE_KINDS.values() or (kind.startswith("mmdet3d") and p.suffix == ".bin"):
        return p.stem
    return p.name


def _synthetic(kind: str, seed: int, kwargs: dict[str, Any]) -> Scene:
    return _reader(kind)[0](seed, **kwargs)


@functools.lru_cache(maxsize=8)
def _synthetic_cached(kind: str, seed: int, key: tuple[tuple[str, Any], ...]) -> Scene:
    """A procedural scene made once per process (a room takes about 3 s; the generator is
    deterministic in its arguments); ``load_scene`` hands out copies, so no caller's change
    reaches another's scene."""
    return _synthetic(kind, seed, dict(key))


def source_files(address: str | os.PathLike, folders: bool = True) -> list[Path]:
    """The files a scene is read from, those that exist, sorted (a folder stands for every file
    under it): what identifies the scene's content, so that a resumed job never serves output
    made from other files (``label_jobs.scene_identity``). Generated scenes have none.
    ``folders=False``: only the files the reader names (a scene file, a ScanNet scan's mesh and
    label tables, a KITTI frame's files), not whatever else lies in its folders, where an
    earlier output may be kept: what an output must not replace (``npzio.check_not_an_input``)."""
    files: set[Path] = set()
    for q in _named_paths(address):
        if q.is_file():
            files.add(q)
        elif q.is_dir() and folders:
            files.update(f for f in q.rglob("*") if f.is_file())
    return sorted(files)


def check_scene_present(address: str | os.PathLike) -> None:
    """Cheaply, before slow checks or work: ReaderError where the file or folder a scene's reader
    needs first (the scan folder, the points or LiDAR file, the scene file) does not exist, as
    ``load_scene`` would find only after them."""
    paths = _named_paths(address)
    if paths and not paths[0].exists():
        raise ReaderError(f"{paths[0]}: not found (scene address {str(address)!r} is read from it)")


def _named_paths(address: str | os.PathLike) -> list[Path]:
    """The files and folders a scene's reader reads, whether or not they exist; none for a
    generated scene."""
    kind, rest = parse_address(str(address))
    p = Path(rest)
    if kind in ("synthetic", "synthetic-lidar"):
        return []
    if kind == "scannet":
        from .scannet import source_paths
        return source_paths(p)
    if kind == "scannet-export":
        from .scannet import export_paths
        return export_paths(p.parent, p.name)
    if kind in ("mmdet3d-scannet", "mmdet3d-s3dis"):
        from .mmdet3d import source_paths as mmdet3d_paths
        return mmdet3d_paths(p)
    if kind == "kitti":
        from .kitti import source_paths as kitti_paths
        return kitti_paths(p)
    if kind == "semantickitti":
        from .semantickitti import source_paths as semantickitti_paths
        return semantickitti_paths(p)
    if kind == "txt":  # a Semantic3D scan's labels lie beside it
        from .text_cloud import labels_file
        return [p, labels_file(p)]
    return [p]  # ply / las / e57 / pcd / npz files, s3dis and pointcept folders

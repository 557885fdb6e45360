"""Reader of mmdetection3d's processed indoor layout (``tools/create_data.py scannet|s3dis``).

Many groups keep ScanNet and S3DIS only in this form::

    <root>/points/<scene>.bin         float32 (N,6) x y z r g b (0-255); ScanNet: the mesh's raw frame,
                                      S3DIS: the room shifted so its lowest corner is the origin
    <root>/semantic_mask/<scene>.bin  int64 (N,) ScanNet: NYU40 id (0 unannotated);
                                      S3DIS: index into class_names.txt (the 13 classes)
    <root>/instance_mask/<scene>.bin  int64 (N,) instance id, 0 = none
    <root>/posed_images/<scene>/      ScanNet RGB-D frames (NNNNN.jpg / .png / .txt, intrinsic.txt)
    <root>/*.pkl                      infos (ScanNet): axis_align_matrix and 3D boxes per scene, in
                                      mmdetection3d's v1 (list of dicts) or v2 (``data_list``) form
    <root>/infos/<scene>.json         the same per-scene entry as JSON
    <root>/class_names.txt            S3DIS class order (also ``meta_data/class_names.txt``)

Masks and infos are optional: a scene with points alone is a bare scene to label. ScanNet points
are turned into the axis-aligned frame (``axis_alignment=`` or the infos), as the ``scannet:``
reader does, and the infos' boxes (given in that frame) become ``Scene.boxes`` (without infos,
boxes around the masks' object instances, as the ``scannet:`` reader makes them); infos are read
without running code (``safe_load.pickle_load``).
"""
from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import MMDET3D_TO_SCANNET20_NAMES, S3DIS13, S3DIS_ALIASES, SCANNET18_MMDET3D, SCANNET20
from ..errors import ReaderError
from ..geometry import apply_transform
from ..safe_load import pickle_load
from ..scene import Scene
from ..textio import read_text
from .address import check_indoor_dataset, scene_name
from .scannet import (_load_json, _read_frames, axis_alignment_of, axis_matrix, boxes_of_instances, checked_nyu40,
                      scannet20_of_nyu40)

MMDET3D_DATASETS = ("scannet", "s3dis")
# where the S3DIS class order may lie, relative to the root, first found wins
CLASS_NAME_FILES = ("class_names.txt", "meta_data/class_names.txt")


def _locate(path: str | os.PathLike) -> tuple[Path, str, Path]:
    """(root, scene name, points file) of ``<root>/<scene>`` or ``<root>/points/<scene>.bin``."""
    p = Path(path)
    if p.suffix == ".bin":
        root = p.parent.parent if p.parent.name == "points" else p.parent
        return root, scene_name(f"mmdet3d-scannet:{p}"), p
    return p.parent, scene_name(f"mmdet3d-scannet:{p}"), p.parent / "points" / f"{p.name}.bin"


def _read_bin(path: Path, dtype: type, width: int, what: str) -> np.ndarray:
    """(N,width) array of a raw binary file of ``dtype``; ReaderError when its size is not a
    whole number of rows."""
    size = path.stat().st_size
    row = np.dtype(dtype).itemsize * width
    if size % row:
        raise ReaderError(f"{path}: {size} bytes is not a whole number of {what} rows "
                          f"({width} x {np.dtype(dtype).name}, {row} bytes each)")
    return np.fromfile(path, dtype=dtype).reshape(-1, width)


def _mask(root: Path, kind: str, scene: str, n: int) -> np.ndarray | None:
    """(N,) int64 ``<root>/<kind>/<scene>.bin``, or None when absent."""
    p = root / kind / f"{scene}.bin"
    if not p.is_file():
        return None
    m = _read_bin(p, np.int64, 1, "int64").ravel()
    if len(m) != n:
        raise ReaderError(f"{p}: {len(m)} labels for {n} points in {root / 'points' / (scene + '.bin')} "
                          f"(expected int64, one per point)")
    return m


def _checked_instances(root: Path, scene: str, ids: np.ndarray) -> np.ndarray:
    """(N,) instance ids of ``<root>/instance_mask/<scene>.bin``; ReaderError naming the file
    where one is negative: mmdetection3d writes 0 for none and 1.. for objects, and a file of -1
    for none would have its object 0 read as none."""
    below = np.flatnonzero(ids < 0)
    if len(below):
        raise ReaderError(f"{root / 'instance_mask' / (scene + '.bin')}: {len(below)} instance ids below 0 (the first, "
                          f"{int(ids[below[0]])}, at point {int(below[0])}): mmdetection3d writes 0 for no instance and "
                          f"1, 2, ... for objects (a file with -1 for none would lose its object 0)")
    return ids


@functools.lru_cache(maxsize=4)
def _pickle_cached(path: str, mtime_ns: int, size: int) -> Any:
    return pickle_load(path, "mmdetection3d infos")


def _entry_scene(entry: dict[str, Any]) -> str | None:
    """The scene an infos entry describes (v2: ``lidar_points.lidar_path``; v1: ``point_cloud.lidar_idx``
    or ``pts_path``)."""
    lp = entry.get("lidar_points")
    if isinstance(lp, dict) and isinstance(lp.get("lidar_path"), str):
        return Path(lp["lidar_path"]).stem
    pc = entry.get("point_cloud")
    if isinstance(pc, dict) and pc.get("lidar_idx") is not None:
        return str(pc["lidar_idx"])
    if isinstance(entry.get("pts_path"), str):
        return Path(entry["pts_path"]).stem
    return None


def _boxes_of_entry(entry: dict[str, Any], categories: dict[int, str], source: Path) -> tuple[np.ndarray | None, list[str]]:
    """Axis-aligned (K,6) boxes [cx,cy,cz,dx,dy,dz] and their class names from one infos entry
    (v2 ``instances``; v1 ``annos.gt_boxes_upright_depth`` with ``name`` or ``class``)."""
    if isinstance(entry.get("instances"), list):
        rows, names = [], []
        for k, inst in enumerate(entry["instances"]):
            try:
                rows.append(np.asarray(inst["bbox_3d"], np.float64).reshape(-1)[:6])
                names.append(str(inst["class"]) if "class" in inst else categories[int(inst["bbox_label_3d"])])
            except (KeyError, TypeError, ValueError) as e:
                raise ReaderError(f"{source}: instances[{k}] lacks a 6-number bbox_3d and a known bbox_label_3d ({e!r})") from e
        return (np.array(rows, np.float64).reshape(-1, 6) if rows else np.zeros((0, 6))), names
    annos = entry.get("annos")
    if not isinstance(annos, dict):
        return None, []
    if int(annos.get("gt_num", 0)) == 0:
        return np.zeros((0, 6)), []  # a scene the infos list without objects
    try:
        b = np.asarray(annos["gt_boxes_upright_depth"], np.float64).reshape(-1, 6)
        if "name" in annos:
            names = [str(x) for x in np.asarray(annos["name"]).reshape(-1)]
        else:
            names = [categories[int(c)] for c in np.asarray(annos["class"]).reshape(-1)]
    except (KeyError, TypeError, ValueError) as e:
        raise ReaderError(f"{source}: annos lacks (K,6) gt_boxes_upright_depth with a name or known class per box ({e!r})") from e
    if len(names) != len(b):
        raise ReaderError(f"{source}: {len(b)} boxes but {len(names)} class names")
    return b, names


def _categories(meta: Any) -> dict[int, str]:
    cats = meta.get("categories") if isinstance(meta, dict) else None
    if isinstance(cats, dict):
        return {int(v): str(k) for k, v in cats.items()}
    return dict(enumerate(SCANNET18_MMDET3D))


def read_infos(root: Path, scene: str) -> tuple[np.ndarray | None, np.ndarray | None, list[str], Path | None]:
    """(axis_align_matrix (4,4) or None, boxes (K,6) or None, box class names, the file) of
    ``scene`` from ``<root>/infos/<scene>.json`` or the first ``<root>/*.pkl`` that lists it."""
    src: Path | None = root / "infos" / f"{scene}.json"
    entry: Any = None
    if src.is_file():
        entry = _load_json(src)
        if not isinstance(entry, dict):
            raise ReaderError(f"{src}: the top level is a {type(entry).__name__}, expected an infos entry (an object)")
        cats = dict(enumerate(entry.get("classes") or SCANNET18_MMDET3D))
    else:
        src = None
        for p in sorted(root.glob("*.pkl")):
            st = p.stat()
            doc = _pickle_cached(str(p), st.st_mtime_ns, st.st_size)
            entries = doc.get("data_list") if isinstance(doc, dict) else doc
            if not isinstance(entries, list):
                continue
            entry = next((e for e in entries if isinstance(e, dict) and _entry_scene(e) == scene), None)
            if entry is not None:
                src, cats = p, _categories(doc.get("metainfo") if isinstance(doc, dict) else None)
                break
    if src is None:
        return None, None, [], None
    A = entry.get("axis_align_matrix")
    if A is None and isinstance(entry.get("annos"), dict):
        A = entry["annos"].get("axis_align_matrix")
    if A is not None:
        A = axis_matrix(A, f"{src}: axis_align_matrix of {scene}")
    boxes, names = _boxes_of_entry(entry, cats, src)
    return A, boxes, names, src


def _scannet_boxes(boxes: np.ndarray, names: list[str], src: Path) -> tuple[np.ndarray, np.ndarray]:
    """(K,7) float32 boxes with yaw 0 and (K,) ScanNet-20 labels of the infos' boxes."""
    labels = []
    for n in names:
        c = MMDET3D_TO_SCANNET20_NAMES.get(n, n)
        if c not in SCANNET20:
            raise ReaderError(f"{src}: box class {n!r} is not a ScanNet detection class")
        labels.append(SCANNET20.index(c))
    if len(boxes) and (boxes[:, 3:6] < 0).any():
        raise ReaderError(f"{src}: box sizes dx,dy,dz must be non-negative")
    b7 = np.concatenate([boxes, np.zeros((len(boxes), 1))], 1).astype(np.float32)
    return b7, np.array(labels, np.int64)


def _s3dis_classes(root: Path) -> tuple[str, ...]:
    """The class order of the S3DIS semantic masks: ``class_names.txt`` in ``<root>`` or
    ``<root>/meta_data`` (aliases such as ``stairs`` mapped), else the 13 classes' own order."""
    for p in (root / f for f in CLASS_NAME_FILES):
        if p.is_file():
            names = [ln.strip() for ln in read_text(p, "a class list").splitlines() if ln.strip()]
            out = tuple(S3DIS_ALIASES.get(n, n) for n in names)
            unknown = [n for n in out if n not in S3DIS13]
            if unknown:
                raise ReaderError(f"{p}: classes {unknown} are not S3DIS classes {S3DIS13}")
            return out
    return S3DIS13


def source_paths(path: str | os.PathLike) -> list[Path]:
    """The files and folders ``read_mmdet3d`` opens for ``<root>/<scene>`` (or the points
    file): points, masks, infos (the scene's JSON and every ``<root>/*.pkl``), class names and
    ``posed_images/<scene>``."""
    root, name, points = _locate(path)
    return [points, *(root / kind / f"{name}.bin" for kind in ("semantic_mask", "instance_mask")),
            root / "infos" / f"{name}.json", *sorted(root.glob("*.pkl")), *(root / f for f in CLASS_NAME_FILES),
            root / "posed_images" / name]


def read_mmdet3d(path: str | os.PathLike, dataset: str, axis_alignment: np.ndarray | str | os.PathLike | None = None,
                 frames: bool = True, frame_step: int = 1) -> Scene:
    """A scene of mmdetection3d's processed layout (module docstring).

    Args:
        path: ``<root>/<scene>`` or ``<root>/points/<scene>.bin``.
        dataset: ``"scannet"`` (ScanNet-20 classes from NYU40 ids) or ``"s3dis"`` (13 classes).
        axis_alignment: ScanNet: a (4,4) matrix or a file (``scannet.axis_alignment_of``)
            that overrides the infos' matrix.
        frames: ScanNet: read ``<root>/posed_images/<scene>/`` when present (lazily).
        frame_step: keep every ``frame_step``-th frame.
    """
    if dataset not in MMDET3D_DATASETS:
        raise ReaderError(f"mmdetection3d layout: dataset must be one of {MMDET3D_DATASETS}, got {dataset!r}")
    root, name, pts = _locate(path)
    if not pts.is_file():
        raise ReaderError(f"{pts}: points file not found (expected mmdetection3d's <root>/points/<scene>.bin "
                          f"for the address {path})")
    check_indoor_dataset(name, dataset, "mmdet3d", pts, str(path))
    a = _read_bin(pts, np.float32, 6, "x y z r g b float32")
    if not len(a):
        raise ReaderError(f"{pts}: no points")
    if not np.isfinite(a).all():
        raise ReaderError(f"{pts}: {int((~np.isfinite(a)).any(1).sum())} points have NaN/inf values")
    rgb = a[:, 3:6]
    if rgb.min() < 0 or rgb.max() > 255:
        raise ReaderError(f"{pts}: colours outside 0-255 (columns 4-6 must be r g b)")
    n = len(a)
    sem_raw, ins_raw = _mask(root, "semantic_mask", name, n), _mask(root, "instance_mask", name, n)
    instance = None if ins_raw is None else np.where(_checked_instances(root, name, ins_raw) > 0, ins_raw - 1, -1)
    meta: dict[str, Any] = {"dataset": f"mmdet3d-{dataset}", "source": str(pts)}
    xyz = a[:, :3].astype(np.float64)
    if dataset == "s3dis":
        order = _s3dis_classes(root)
        semantic = None
        if sem_raw is not None:
            bad = (sem_raw < 0) | (sem_raw >= len(order))
            if bad.any():
                raise ReaderError(f"{root / 'semantic_mask' / (name + '.bin')}: {int(bad.sum())} labels outside 0..{len(order) - 1} "
                                  f"(class_names: {len(order)} classes)")
            semantic = np.array([S3DIS13.index(c) for c in order], np.int64)[sem_raw]
        return Scene(name=name, coord=xyz.astype(np.float32), classes=S3DIS13, color=rgb / 255.0,
                     semantic=semantic, instance=instance, meta=meta)

    A_info, boxes, box_names, src = read_infos(root, name)
    A = axis_alignment_of(axis_alignment) if axis_alignment is not None else A_info
    if A is None:
        warnings.warn(f"{pts}: no axis alignment (no infos listing {name} in {root}): the points stay in the raw "
                      "scan frame; pass --axis-align FILE (Python: axis_alignment=) to align them")
        if boxes is not None and len(boxes):
            warnings.warn(f"{src}: boxes are in the aligned frame, which is unknown here; boxes left out")
            boxes = None
    else:
        xyz = apply_transform(xyz, A)
    semantic = None if sem_raw is None else scannet20_of_nyu40(checked_nyu40(root / "semantic_mask" / f"{name}.bin", sem_raw))
    box7 = box_labels = None
    if boxes is not None:
        box7, box_labels = _scannet_boxes(boxes, box_names, src)
    elif semantic is not None and instance is not None:
        box7, box_labels = boxes_of_instances(xyz, instance, semantic)
    if src is not None:
        meta["infos"] = str(src)
    posed = root / "posed_images" / name
    frame_list = _read_frames(posed, A, frame_step, posed=posed) if frames and posed.is_dir() else []
    return Scene(name=name, coord=xyz.astype(np.float32), classes=SCANNET20, color=rgb / 255.0,
                 semantic=semantic, instance=instance, boxes=box7, box_labels=box_labels,
                 frames=frame_list, axis_alignment=A, meta=meta)

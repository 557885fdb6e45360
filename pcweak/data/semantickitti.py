"""SemanticKITTI scans: ``<root>/sequences/<seq>/velodyne/<id>.bin`` (float32 x y z remission)
with ``labels/<id>.label`` (uint32: semantic id in the lower 16 bits, instance id in the upper
16), read as a ``Scene`` with the benchmark's 19 classes (``classes.SEMANTICKITTI19``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..classes import SEMANTICKITTI19, SEMANTICKITTI_RAW_TO_19, SEMANTICKITTI_UNEVALUATED_IDS, semantickitti_classes
from ..errors import ReaderError
from ..scene import Scene
from .address import scene_name
from .kitti import read_velodyne


def source_paths(scan_path: str | os.PathLike) -> list[Path]:
    """The files ``read_semantickitti`` opens for ``<sequence>/<id>``."""
    p = Path(scan_path)
    return [p.parent / "velodyne" / f"{p.name}.bin", p.parent / "labels" / f"{p.name}.label"]


def read_label_words(path: Path) -> np.ndarray:
    """(N,) uint32 labels of a SemanticKITTI-format ``.label`` file (semantic id in the lower 16
    bits, instance id in the upper 16). ReaderError naming the file for one that is missing, not
    a whole number of uint32s (a truncated copy), or holding a semantic id SemanticKITTI's label
    set does not define (another dataset's ids, or a file of another kind: floats, text), which
    would otherwise be read as unlabelled points."""
    if not path.is_file():
        raise ReaderError(f"{path}: {'not a file' if path.exists() else 'not found'}")
    size = path.stat().st_size
    if size % 4:
        raise ReaderError(f"{path}: {size} bytes, not a whole number of uint32 labels (a SemanticKITTI .label holds "
                          f"4 bytes a point)")
    lab = np.fromfile(path, dtype=np.uint32)
    known = np.zeros(1 << 16, bool)
    known[list(SEMANTICKITTI_RAW_TO_19) + list(SEMANTICKITTI_UNEVALUATED_IDS)] = True
    unknown = np.flatnonzero(~known[lab & 0xFFFF])
    if len(unknown):
        ids = np.unique(lab[unknown] & 0xFFFF)
        raise ReaderError(f"{path}: {len(unknown)} of {len(lab)} labels hold semantic ids SemanticKITTI does not define "
                          f"({', '.join(map(str, ids[:5]))}{', ...' if len(ids) > 5 else ''}; the first at point "
                          f"{int(unknown[0])}): not a SemanticKITTI .label file (another label set's ids, or another "
                          f"kind of file)")
    return lab


def read_semantickitti(scan_path: str | os.PathLike) -> Scene:
    """Read ``<root>/sequences/<seq>/<id>`` (the sequence folder and the scan id, e.g.
    ``data/semantickitti/sequences/00/000000``). Points keep their file order; remission becomes
    ``intensity``. Without a label file the scene has no ground truth. Instances are numbered
    per (class, instance id) pair, for classes that are things (ids from 10 to 32 and the
    moving ones); -1 elsewhere."""
    p = Path(scan_path)
    seq, sid = p.parent, p.name
    velo = seq / "velodyne" / f"{sid}.bin"
    lab_path = seq / "labels" / f"{sid}.label"
    if (seq / "label_2").is_dir() and not lab_path.is_file():  # its boxes and calibration would be left unread
        raise ReaderError(f"{seq}: a KITTI split (label_2/ boxes, no point labels for {sid}), not a SemanticKITTI "
                          f"sequence; read the frame as kitti:{p}")
    pts = read_velodyne(velo, "remission")
    semantic = instance = None
    if lab_path.exists():
        lab = read_label_words(lab_path)
        if len(lab) != len(pts):
            raise ReaderError(f"{lab_path}: {len(lab)} labels for {len(pts)} points in {velo}")
        sem_raw = (lab & 0xFFFF).astype(np.int64)
        semantic = semantickitti_classes(lab)
        thing = ((sem_raw >= 10) & (sem_raw <= 32)) | (sem_raw >= 252)
        key = np.where(thing & (semantic >= 0), semantic * (1 << 16) + (lab >> 16).astype(np.int64), -1)
        _, inv = np.unique(key, return_inverse=True)
        instance = np.where(key >= 0, inv.ravel() - int((key < 0).any()), -1).astype(np.int64)
    return Scene(name=scene_name(f"semantickitti:{p}"), coord=pts[:, :3], classes=SEMANTICKITTI19, intensity=pts[:, 3],
                 semantic=semantic, instance=instance, meta={"dataset": "semantickitti", "source": str(p)})

"""SemanticKITTI scans: ``<root>/sequences/<seq>/velodyne/<id>.bin`` (float32 x y z remission)
with ``labels/<id>.label`` (uint32: semantic id in the lower 16 bits, instance id in the upper
16), read as a ``Scene`` with the benchmark's 19 classes (``classes.SEMANTICKITTI19``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..classes import SEMANTICKITTI19, semantickitti_classes
from ..errors import ReaderError
from ..scene import Scene
from .address import scene_name
from .kitti import read_velodyne


def source_paths(scan_path: str | os.PathLike) -> list[Path]:
    """The files ``read_semantickitti`` opens for ``<sequence>/<id>``."""
    p = Path(scan_path)
    return [p.parent / "velodyne" / f"{p.name}.bin", p.parent / "labels" / f"{p.name}.label"]


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
    if lab_path.is_file():
        lab = np.fromfile(lab_path, dtype=np.uint32)
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

"""SemanticKITTI benchmark submission files from label files (the pseudo-label format that
``pcweak label`` and ``pcweak predict`` write): ``sequences/<seq>/predictions/<id>.label``, one
uint32 a point in the scan's order, the semantic class as its raw id in the lower 16 bits
(``classes.SEMANTICKITTI19_RAW_IDS``; 0, unlabelled, where a point has no label, which counts as
wrong) and an instance id in the upper 16 (0 for none; the panoptic benchmark reads them, the
semantic one masks them off). What the benchmark's ``validate_submission.py`` and
``evaluate_semantics.py`` read, zipped with ``sequences/`` at the root.

A scan ``<seq>/<id>`` is the scene ``<seq>_<id>`` (``address.scene_name``), the name ``pcweak
label`` and ``pcweak predict`` give its label file.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import SEMANTICKITTI19, SEMANTICKITTI19_RAW_IDS
from ..errors import SceneError
from ..npzio import atomic_write_bytes
from ..scene import PseudoLabels
from .scannet_files import check_benchmark_classes, check_submission_folder

SCAN_NAME = re.compile(r"(?P<seq>[0-9]+)_(?P<scan>[0-9]+)")  # a SemanticKITTI scene's name: <sequence>_<scan>


def scan_of(name: str, source: str) -> tuple[str, str]:
    """(sequence, scan id) of a SemanticKITTI scene name ``<seq>_<id>``; ValueError naming
    ``source`` for any other name."""
    m = SCAN_NAME.fullmatch(name)
    if m is None:
        raise ValueError(f"{source}: scene name {name!r} is not a SemanticKITTI scan's, <sequence>_<scan> (as 08_000000, "
                         f"the name pcweak gives semantickitti:ROOT/sequences/08/000000)")
    return m["seq"], m["scan"]


def raw_labels(labels: PseudoLabels, source: str) -> np.ndarray:
    """(N,) uint32 submission labels of ``labels`` (module docstring); SceneError naming
    ``source`` unless its classes are SemanticKITTI's 19."""
    check_benchmark_classes(labels, SEMANTICKITTI19, "SemanticKITTI", source)
    raw = np.asarray(SEMANTICKITTI19_RAW_IDS, np.uint32)
    semantic = np.where(labels.semantic >= 0, raw[np.maximum(labels.semantic, 0)], 0).astype(np.uint32)
    instance = labels.instance
    if instance is None or not (instance >= 0).any():
        return semantic
    ids = np.unique(instance[instance >= 0])
    if len(ids) >= 1 << 16:
        raise SceneError(f"{source}: {len(ids)} instances, more than the 65535 a label's upper 16 bits hold")
    number = np.zeros(len(instance), np.uint32)
    number[instance >= 0] = np.searchsorted(ids, instance[instance >= 0]).astype(np.uint32) + 1
    return semantic | (number << 16)


def export_semantickitti(files: list[Path], folder: str | Path, progress: Any = None,
                         names: dict[Path, str] | None = None) -> dict[str, int | str]:
    """Write ``sequences/<seq>/predictions/<id>.label`` under ``folder`` for each label file of
    ``files``, each named by its scene (``names``, else the file's stem: ``<seq>_<id>``); every
    name is checked, then every file read and checked, before the first is written (atomically).
    ``progress``: a wrapper for the loop (tqdm)."""
    names = {f: (names or {}).get(f, f.stem) for f in files}
    scans = {f: scan_of(n, str(f)) for f, n in names.items()}
    check_submission_folder(folder)
    labels = {f: raw_labels(PseudoLabels.load(f), str(f)) for f in files}
    for f in (progress or (lambda x: x))(files):
        seq, scan = scans[f]
        atomic_write_bytes(Path(folder) / "sequences" / seq / "predictions" / f"{scan}.label", labels[f].tobytes())
    return {"scenes": len(files), "sequences": len({s for s, _ in scans.values()}), "output": str(folder)}

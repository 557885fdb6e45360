"""Semantic3D benchmark submission files from label files (the pseudo-label format that
``pcweak label`` and ``pcweak predict`` write): ``<scene>.labels``, one line a point in the
scan's order (``txt:`` reads a scan's points in its file's order) holding its class as the
benchmark numbers them, 1-8 (``classes.SEMANTIC3D8`` index + 1); 0, unlabelled, where a point
has no label, which the benchmark counts as wrong. The scene is the scan's file name without
``.txt`` (``bildstein_station1_xyz_intensity_rgb``), the name of the server's expected file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..classes import SEMANTIC3D8
from ..npzio import atomic_write_bytes
from ..scene import PseudoLabels
from .scannet_files import check_benchmark_classes, check_scene_name, check_submission_folder


def semantic3d_lines(labels: PseudoLabels, source: str) -> bytes:
    """The ``.labels`` text of ``labels``; SceneError naming ``source`` unless its classes are
    Semantic3D's 8."""
    check_benchmark_classes(labels, SEMANTIC3D8, "Semantic3D", source)
    ids = np.where(labels.semantic >= 0, labels.semantic + 1, 0)
    return ("\n".join(map(str, ids.tolist())) + "\n").encode()


def export_semantic3d(files: list[Path], folder: str | Path, progress: Any = None,
                      names: dict[Path, str] | None = None) -> dict[str, int | str]:
    """Write ``<scene>.labels`` in ``folder`` for each label file of ``files`` (``names``, else
    the file's stem); names checked, then every file read and checked, before the first is
    written (atomically). ``progress``: a wrapper for the loop (tqdm)."""
    names = {f: (names or {}).get(f, f.stem) for f in files}
    for f, name in names.items():
        check_scene_name(name, str(f))
    check_submission_folder(folder)
    text = {f: semantic3d_lines(PseudoLabels.load(f), str(f)) for f in files}
    for f in (progress or (lambda x: x))(files):
        atomic_write_bytes(Path(folder) / f"{names[f]}.labels", text[f])
    return {"scenes": len(files), "output": str(folder)}

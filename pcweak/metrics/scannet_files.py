"""ScanNet benchmark submission files from label files (the pseudo-label format that
``pcweak label`` and ``pcweak predict`` write): what the benchmark's server and its
``BenchmarkScripts/3d_evaluation`` scripts read.

- Semantic labels: ``<scene>.txt``, one line per point with its NYU40 class id; a point with no
  label is written as 0, which no evaluated class has, so it counts as wrong.
- Instances: ``<scene>.txt``, one line per predicted instance, ``predicted_masks/<scene>_<k>.txt
  <NYU40 id> <confidence>``, and each such mask file, one line per point, 1 inside the instance
  and 0 elsewhere. An instance's class and confidence are those of ``metrics.instance.label_file_instances``:
  the ones its model gave, else its points' majority class and mean confidence.
  Instances of wall and floor, which the benchmark does not evaluate, are left out.

The benchmark scores the vertices of each scan's ``*_vh_clean_2.ply`` in the mesh's order,
which is the order of a ``scannet:`` scene's points; labels made on a scene read otherwise
(an export, mmdetection3d's points) are in that scene's order instead.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..classes import NYU40_TO_SCANNET20, SCANNET20, SCANNET20_NYU40_IDS, SCANNET_STUFF
from ..errors import ReaderError, SceneError
from ..npzio import atomic_write_bytes
from ..scene import PseudoLabels, Scene
from ..textio import read_text, whole_numbers
from .instance import SceneInstances, instance_ap, label_file_instances, match_instances
from .semantic import confusion, report_from_confusion

TASKS = ("semantic", "instance")
UNLABELLED_ID = 0  # NYU40 "unannotated": no evaluated class
MASKS = "predicted_masks"


def check_benchmark_classes(labels: PseudoLabels, classes: tuple[str, ...], benchmark: str, source: str,
                            named: str | None = None) -> None:
    """SceneError naming ``source`` unless ``labels`` are over ``classes``, the class list whose
    ids ``benchmark``'s files hold (``named``: how the error names that list; default "its N
    classes")."""
    if tuple(labels.classes) != classes:
        raise SceneError(f"{source}: {benchmark} benchmark files need labels over {named or f'its {len(classes)} classes'}, "
                         f"got {list(labels.classes)[:5]}{' ...' if len(labels.classes) > 5 else ''}")


def nyu40_ids(labels: PseudoLabels, source: str) -> np.ndarray:
    """(C,) int64 NYU40 id of each class index of ``labels``; SceneError naming ``source``
    unless its class list is ScanNet-20's."""
    check_benchmark_classes(labels, SCANNET20, "ScanNet", source, "ScanNet-20's classes")
    return np.asarray(SCANNET20_NYU40_IDS, np.int64)


def semantic_ids(labels: PseudoLabels, source: str) -> np.ndarray:
    """(N,) int64 NYU40 id per point (``UNLABELLED_ID`` where there is no label)."""
    ids = nyu40_ids(labels, source)
    return np.where(labels.semantic >= 0, ids[np.maximum(labels.semantic, 0)], UNLABELLED_ID)


def instance_entries(labels: PseudoLabels, source: str) -> list[tuple[np.ndarray, int, float]]:
    """(point mask (N,) bool, NYU40 id, confidence) of each instance to submit, in ascending
    instance id order (the order the evaluator matches them in)."""
    ids = nyu40_ids(labels, source)
    stuff = {SCANNET20.index(c) for c in SCANNET_STUFF}
    classes, scores = label_file_instances(labels)  # an instance none of whose points has a class has none
    return [(labels.instance == k, int(ids[c]), scores[k]) for k, c in sorted(classes.items())
            if c not in stuff and 0 <= c < len(ids)]


def check_scene_name(name: str, source: str) -> None:
    """ValueError naming ``source`` unless ``name`` can be a file name inside the submission
    folder: not empty, no "/" or "\\", not "." or ".." (a name such as ``../x`` would write
    outside it)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{source}: scene name {name!r} must be a plain file name (as scene0707_00), "
                         f"without a folder")


def check_submission_folder(folder: str | Path) -> None:
    """NotADirectoryError unless ``folder`` (a submission's root) is a folder or does not exist yet."""
    if Path(folder).exists() and not Path(folder).is_dir():
        raise NotADirectoryError(f"{folder}: is a file; the submission's root must be a folder")


def write_semantic(labels: PseudoLabels, scene: str, folder: str | Path, source: str = "labels") -> Path:
    """``<folder>/<scene>.txt`` (atomically)."""
    lines = "\n".join(map(str, semantic_ids(labels, source).tolist())) + "\n"
    return atomic_write_bytes(Path(folder) / f"{scene}.txt", lines.encode())


def write_instances(labels: PseudoLabels, scene: str, folder: str | Path, source: str = "labels") -> list[Path]:
    """``<folder>/<scene>.txt`` and its mask files under ``<folder>/predicted_masks/``; the
    list is written last, so that an interrupted export leaves no list naming missing masks."""
    folder = Path(folder)
    rows, written = [], []
    for j, (mask, nyu40, score) in enumerate(instance_entries(labels, source)):
        rel = f"{MASKS}/{scene}_{j:03d}.txt"
        written.append(atomic_write_bytes(folder / rel, ("\n".join("1" if m else "0" for m in mask.tolist()) + "\n").encode()))
        rows.append(f"{rel} {nyu40} {score:.6f}")
    written.append(atomic_write_bytes(folder / f"{scene}.txt", "".join(r + "\n" for r in rows).encode()))
    return written


def export_scannet(files: list[Path], folder: str | Path, task: str, progress=None,
                   names: dict[Path, str] | None = None) -> dict[str, int | str]:
    """Write ``task``'s benchmark files (``semantic`` or ``instance``) for each label file of
    ``files`` into ``folder``, each under its scene's name (``names``, else the file's stem);
    every file is read and checked before the first is written. ``progress``: a wrapper for
    the loop (tqdm). A scene name must be a plain file name (no folder separator, not empty,
    "." or ".."), so that every file lands inside ``folder``; ``folder`` must be a folder or not
    yet exist. Both are checked before any label file is read. For ``instance``, label files
    none of which holds an instance (semantic labels) are refused: the submission would be empty."""
    names = {f: (names or {}).get(f, f.stem) for f in files}
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    for f, name in names.items():
        check_scene_name(name, str(f))
    check_submission_folder(folder)
    labels = {}
    for f in files:
        labels[f] = PseudoLabels.load(f)
        nyu40_ids(labels[f], str(f))
    if task == "instance" and not any((labels[f].instance >= 0).any() for f in files):
        # one scene may have no instance; none in any is semantic labels given for an instance task
        which = str(files[0]) if len(files) == 1 else f"none of the {len(files)} label files"
        raise ValueError(f"{which}: no point has an instance (instance -1 everywhere, as semantic labels are), so the "
                         f"instance submission would be empty; export them with --format scannet-semantic, or label "
                         f"instances (gp-boxes from boxes, propagate from clicks, an instance model's predictions)")
    instances = 0
    for f in (progress or (lambda x: x))(files):
        if task == "semantic":
            write_semantic(labels[f], names[f], folder, str(f))
        else:
            instances += len(write_instances(labels[f], names[f], folder, str(f))) - 1
    return {"scenes": len(files), "task": task, "output": str(folder), **({"instances": instances} if task == "instance" else {})}


def read_semantic(path: str | Path, scene: str, num_points: int) -> np.ndarray:
    """(N,) int64 ScanNet-20 class index per point from a benchmark semantic file (one NYU40 id
    per line, the mesh's vertex order); an id of no evaluated class gives -1, which is wrong for
    its point's class and a false positive for none, as ScanNet's ``evaluate_semantic_label.py``
    counts it. ReaderError naming the file for a line that is not a whole number or a line count
    other than ``num_points``."""
    path = Path(path)
    ids = whole_numbers(path, "a NYU40 class id")
    if len(ids) != num_points:
        raise ReaderError(f"{path}: {len(ids)} labels but scene {scene!r} has {num_points} points (one line per vertex "
                          f"of the scan's mesh, in its order)")
    out = np.full(len(ids), -1, np.int64)
    for nyu, idx in NYU40_TO_SCANNET20.items():
        out[ids == nyu] = idx
    return out


def semantic_files_report(pairs: Iterable[tuple[Scene, Path]]) -> dict[str, Any]:
    """mIoU, per-class IoU, accuracy and coverage of benchmark semantic files over scenes with
    ScanNet-20 ground truth, the confusion summed over the scenes before the division (as the
    benchmark's script sums it). ``pairs``: (scene, its file), read one at a time."""
    total, scenes = None, 0
    for scene, path in pairs:
        _check_scannet20(scene)
        cm = confusion(scene.semantic, read_semantic(path, scene.name, scene.num_points), len(SCANNET20))
        total = cm if total is None else total + cm
        scenes += 1
    if total is None:
        raise ValueError("no scene to score")
    return {"task": "scannet-semantic", "scenes": scenes, **report_from_confusion(total, SCANNET20)}


def _instance_lines(path: Path) -> Iterator[tuple[int, int, float, Path]]:
    """(line number from 0, NYU40 id, confidence, mask file) of each mask of an evaluated class
    in an instance file. ReaderError naming the file for a malformed line (the evaluator's: three
    fields separated by single spaces, no empty line), a confidence that is not finite, an
    absolute or missing mask file, one outside the file's folder (as the evaluator refuses it),
    or one named twice (the evaluator keeps one entry per mask file, the last, so
    the earlier line would silently not count)."""
    first_line: dict[str, int] = {}
    folder = os.path.abspath(path.parent)
    for j, line in enumerate(read_text(path, "a ScanNet instance file").splitlines()):
        if j == 0 and line.startswith("\ufeff"):
            raise ReaderError(f"{path}: begins with a UTF-8 byte-order mark, which the evaluator reads as part of the first "
                              f"mask file's name; save the file without one")
        if not line.strip():
            raise ReaderError(f"{path}: line {j + 1} is empty; the evaluator reads every line as a mask and refuses the "
                              f"file (a file of no masks is empty, with no line at all)")
        parts = line.split(" ")
        if len(parts) != 3 and len(line.split()) == 3:
            raise ReaderError(f"{path}: line {j + 1}: fields must be separated by one space each, as the evaluator splits "
                              f"them (a tab, two spaces or a space at either end make it refuse the file): {line[:80]!r}")
        try:
            if len(parts) != 3:
                raise ValueError
            rel, nyu, conf = parts[0], int(float(parts[1])), float(parts[2])
        except ValueError:
            raise ReaderError(f"{path}: line {j + 1} is not '<mask file> <NYU40 id> <confidence>': {line[:80]!r}") from None
        if not np.isfinite(conf):
            raise ReaderError(f"{path}: line {j + 1}: confidence {parts[2]!r} is not a finite number (masks are ranked by it)")
        if Path(rel).is_absolute():
            raise ReaderError(f"{path}: line {j + 1}: mask file {rel} must be relative to the file's folder")
        key = os.path.abspath(os.path.join(folder, rel))  # the evaluator's key for the mask
        if os.path.commonpath([key, folder]) != folder:
            raise ReaderError(f"{path}: line {j + 1}: mask file {rel} lies outside the submission's folder, which the "
                              f"evaluator refuses")
        if key in first_line:
            raise ReaderError(f"{path}: line {j + 1}: mask file {rel} is named again (first on line {first_line[key] + 1}); "
                              f"the evaluator keeps one entry per mask file: give each instance its own file")
        first_line[key] = j
        if nyu not in NYU40_TO_SCANNET20:
            continue
        mask_file = path.parent / rel
        if not mask_file.is_file():
            raise ReaderError(f"{path}: line {j + 1}: mask file {mask_file} {'not a file' if mask_file.exists() else 'not found'}")
        yield j, nyu, conf, mask_file


def check_submission_files(paths: Iterable[Path], instances: bool = False) -> None:
    """Before any scene is read: every semantic file holds whole numbers only, or every instance
    file's lines are well formed and name mask files that exist (ReaderError naming the file and
    line). Lengths are checked against each scene's points when it is scored."""
    for path in paths:
        if instances:
            for _ in _instance_lines(Path(path)):
                pass
        else:
            whole_numbers(Path(path), "a NYU40 class id")


def read_instances(path: str | Path, scene: str, num_points: int) -> tuple[np.ndarray, np.ndarray, dict[int, int], dict[int, float]]:
    """A benchmark instance file: (point index, mask number) pairs of every mask, and the
    ScanNet-20 class and confidence of each mask number (its line, from 0, so that the masks keep
    the file's order, which the evaluator matches in). Lines are ``<mask file> <NYU40 id>
    <confidence>``, the mask file relative to ``path``'s folder with one 0 / non-0 per point;
    masks of no evaluated class are skipped, as the evaluator skips them. ReaderError naming the
    file for a malformed line, an absolute or missing mask file, or a mask of another length."""
    path = Path(path)
    points, numbers, classes, scores = [], [], {}, {}
    for j, nyu, conf, mask_file in _instance_lines(path):
        mask = whole_numbers(mask_file, "a mask value")
        if len(mask) != num_points:
            raise ReaderError(f"{mask_file}: {len(mask)} values but scene {scene!r} has {num_points} points (one line "
                              f"per vertex of the scan's mesh, in its order)")
        inside = np.flatnonzero(mask != 0)
        points.append(inside)
        numbers.append(np.full(len(inside), j, np.int64))
        classes[j], scores[j] = NYU40_TO_SCANNET20[nyu], conf
    cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64))  # noqa: E731
    return cat(points), cat(numbers), classes, scores


def instance_files_report(pairs: Iterable[tuple[Scene, Path]]) -> dict[str, Any]:
    """AP, AP50, AP25 and per-class AP of benchmark instance files over scenes with ScanNet-20
    ground truth (``metrics.instance``'s rules, masks that overlap included), wall and floor not
    evaluated. ``pairs``: (scene, its file), read one at a time."""
    found = []
    for scene, path in pairs:
        _check_scannet20(scene, instances=True)
        points, numbers, classes, scores = read_instances(path, scene.name, scene.num_points)
        found.append(match_instances(SceneInstances(scene.semantic, scene.instance, None, classes, scores, pred_pairs=(points, numbers)),
                                     SCANNET20, ignore=SCANNET_STUFF))  # the overlaps kept, not the scene's points
    if not found:
        raise ValueError("no scene to score")
    rep = instance_ap(found, SCANNET20, ignore=SCANNET_STUFF)
    return {"task": "scannet-instance", "scenes": len(found), **rep}


def _check_scannet20(scene: Scene, instances: bool = False) -> None:
    """SceneError unless ``scene`` has ScanNet-20 ground truth (with instances, if asked)."""
    lacks = "no labels" if scene.semantic is None else "no instances" if instances and scene.instance is None else None
    if tuple(scene.classes) != SCANNET20 or lacks:
        raise SceneError(f"scene {scene.name!r}: ScanNet benchmark files are scored against ScanNet-20 ground truth; "
                         f"the scene has {lacks or f'classes {list(scene.classes)[:4]} ...'}")

"""``evaluate(scene, pseudo)``: how good are pseudo-labels against a scene's ground truth."""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

import numpy as np

from ..classes import join_class_lists, stuff_classes
from ..errors import SceneError
from ..params import Count0, ranges_checked
from ..scene import PseudoLabels, Scene, check_types
from .boxes import box_quality
from .calibration import expected_calibration_error
from .instance import (MIN_REGION_SIZE, MatchedInstances, SceneInstances, evaluated_classes, instance_ap,
                       label_file_instances, match_instances)
from .semantic import confusion, report_from_confusion, semantic_report


@ranges_checked("evaluate")
def evaluate(scene: Scene, pseudo: PseudoLabels, min_region_size: Count0 = MIN_REGION_SIZE) -> dict[str, Any]:
    """Semantic mIoU / per-class IoU (unlabelled pseudo points count as wrong), accuracy on the
    labelled subset, coverage, ECE of ``confidence``, and — when the scene has instances —
    ScanNet instance AP/AP50/AP25 by the benchmark's rules (``metrics.instance``; instances and
    predictions under ``min_region_size`` points, ScanNet's 100, do not count; each predicted
    instance's class and score from ``label_file_instances``) plus the mean IoU
    of each counted GT instance with its best mask."""
    check_types("evaluate(scene, pseudo)", (scene, Scene), (pseudo, PseudoLabels))
    if scene.semantic is None:
        raise SceneError(f"scene {scene.name!r}: has no ground-truth semantic labels to evaluate against")
    pseudo.check_against(scene)
    classes = pseudo.classes_with(scene)
    rep: dict[str, Any] = {"scene": scene.name, "method": pseudo.method, "points": scene.num_points}
    rep.update(semantic_report(scene.semantic, pseudo.semantic, classes))
    m = (scene.semantic >= 0) & (pseudo.semantic >= 0)
    rep["ece"] = expected_calibration_error(pseudo.confidence[m], pseudo.semantic[m] == scene.semantic[m])
    rep["coverage_all_points"] = float((pseudo.semantic >= 0).mean())
    if scene.instance is not None and (pseudo.instance >= 0).any():
        found = SceneInstances(scene.semantic, scene.instance, pseudo.instance, *label_file_instances(pseudo))
        inst = instance_ap([found], classes, ignore=stuff_classes(classes), min_region_size=min_region_size)
        rep["instance"] = {k: (round(v, 4) if isinstance(v, float) and np.isfinite(v) else v) for k, v in inst.items()}
    if pseudo.box is not None and scene.boxes is not None:
        keep = scene.box_labels >= 0
        rep["boxes"] = box_quality(pseudo.box, scene.boxes[keep], scene.box_labels[keep],
                                   pseudo.box_semantic if pseudo.box_semantic is not None else None, classes)
    return rep


def _grown(total: np.ndarray, n: int) -> np.ndarray:
    """A (C, C+1) ``confusion`` total as the (n, n+1) one of a longer class list (whose first C
    classes are the same): the new classes' rows and columns zero, unlabelled still last."""
    c = len(total)
    out = np.zeros((n, n + 1), total.dtype)
    out[:c, :c], out[:c, n] = total[:, :c], total[:, c]
    return out


def _revalidated(m: MatchedInstances, classes: tuple[str, ...], name: str) -> MatchedInstances:
    """A scene's matched instances under the set's class list grown to ``classes``: its evaluated
    classes extended by the new ones, which none of its labels reaches. SceneError naming
    ``name`` (the scene that grew the list) where a name filled in turns an evaluated class into
    one that is not (a placeholder become ``wall``): that scene would have to be matched again."""
    valid = evaluated_classes(classes, stuff_classes(classes))
    if not set(m.valid) <= set(valid):
        raise SceneError(f"scene {name!r}: names a class as {', '.join(classes[c] for c in sorted(set(m.valid) - set(valid)))}, "
                         f"which instance AP leaves out, where the scenes before it give a placeholder, so their "
                         f"instances were matched as objects; give every file the class names")
    return dataclasses.replace(m, valid=valid)


def evaluate_set(pairs: Iterable[tuple[Scene, PseudoLabels]], min_region_size: int = MIN_REGION_SIZE,
                 names: Sequence[str] | None = None) -> dict[str, Any]:
    """``evaluate``'s figures over a set of scenes of one class list, pooled as the benchmarks
    pool them: mIoU and per-class IoU from the confusion summed over the scenes, instance AP over
    every scene's instances at once; with each scene's own mIoU (``per_scene``), so that the
    spread is seen beside the pooled figure. ``pairs``: (scene, its pseudo-labels), read one at a
    time; ``names``: what ``per_scene`` and errors call each scene, in the order of ``pairs``
    (default: ``Scene.name``; a folder's scene is known by its file's name, which a copied scene
    file does not share). The scenes' class lists are joined (``classes.joined_class_list``: files
    that name classes up to their highest label, with placeholders, are scored over the longest
    list); SceneError for a scene whose list disagrees with the ones before it."""
    total, classes, rows, found = None, None, [], []
    for i, (scene, pseudo) in enumerate(pairs):
        check_types("evaluate_set(pairs)", (scene, Scene), (pseudo, PseudoLabels))
        name = scene.name if names is None else names[i]
        if scene.semantic is None:
            raise SceneError(f"scene {name!r}: has no ground-truth semantic labels to evaluate against")
        pseudo.check_against(scene)
        own = pseudo.classes_with(scene)
        joined = join_class_lists(classes or (), own, lambda k: SceneError(
            f"scene {name!r}: names other classes than the scenes before it (label {k} is {own[k]!r} there, "
            f"{classes[k]!r} before); a set is scored over one class list"))
        if classes is not None and joined != tuple(classes):
            total = _grown(total, len(joined))
            found = [_revalidated(m, joined, name) for m in found]
        classes = joined
        cm = confusion(scene.semantic, pseudo.semantic, len(classes))
        total = cm if total is None else total + cm
        rows.append({"scene": name, "miou": report_from_confusion(cm, classes)["miou"]})
        if scene.instance is not None and (pseudo.instance >= 0).any():
            # matched now: the set keeps each scene's overlaps, not its points
            found.append(match_instances(SceneInstances(scene.semantic, scene.instance, pseudo.instance, *label_file_instances(pseudo)),
                                         classes, ignore=stuff_classes(classes), min_region_size=min_region_size))
    if total is None:
        raise ValueError("evaluate_set: no scene to score")
    rep: dict[str, Any] = {"scenes": len(rows), **report_from_confusion(total, classes)}
    per = np.array([r["miou"] for r in rows], np.float64)
    rep["per_scene_miou"] = {"min": float(np.nanmin(per)), "median": float(np.nanmedian(per)), "max": float(np.nanmax(per))}
    if found:
        inst = instance_ap(found, classes, ignore=stuff_classes(classes), min_region_size=min_region_size)
        rep["instance"] = {k: (round(v, 4) if isinstance(v, float) and np.isfinite(v) else v) for k, v in inst.items()}
    rep["per_scene"] = rows
    return rep

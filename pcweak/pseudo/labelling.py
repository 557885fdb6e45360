"""One entry point for every labeller: ``label_scene(scene, weak, method, **params)``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import SceneError
from ..scene import PseudoLabels, Scene, WeakLabels
from .propagate import nearest_seed, propagate


def _points(weak: WeakLabels, method: str):
    if weak.point_index is None or weak.point_semantic is None:
        raise SceneError(f"--method {method}: the weak labels have no labelled points (point_index/point_semantic)")
    return weak.point_index, weak.point_semantic


def _propagate(scene: Scene, weak: WeakLabels, **params: Any) -> PseudoLabels:
    idx, lab = _points(weak, "propagate")
    return propagate(scene.coord, idx, lab, color=scene.color, normal=scene.normal, segment=scene.segment,
                     seed_instance=weak.point_instance, classes=scene.classes, num_classes=len(scene.classes) or None,
                     **params)


def _nearest(scene: Scene, weak: WeakLabels, **params: Any) -> PseudoLabels:
    idx, lab = _points(weak, "nearest")
    return nearest_seed(scene.coord, idx, lab, seed_instance=weak.point_instance, classes=scene.classes, **params)


def _boxes(weak: WeakLabels, method: str):
    if weak.box is None or weak.box_semantic is None:
        raise SceneError(f"--method {method}: the weak labels have no 3D boxes (box/box_semantic)")
    return weak.box, weak.box_semantic


def _gp_boxes(scene: Scene, weak: WeakLabels, **params: Any) -> PseudoLabels:
    from .gp_boxes import gp_box_labels
    return gp_box_labels(scene, *_boxes(weak, "gp-boxes"), **params)


def _smallest_box(scene: Scene, weak: WeakLabels, **params: Any) -> PseudoLabels:
    from .gp_boxes import smallest_box_labels
    return smallest_box_labels(scene, *_boxes(weak, "smallest-box"), **params)


def _lift_masks(scene: Scene, weak: WeakLabels, masks: str | None = None, **params: Any) -> PseudoLabels:
    from .lift_masks import lift_masks
    from .mask_sources import load_mask_folder, masks_from_weak
    if masks:
        maps, scores = load_mask_folder(masks, scene)
    else:
        maps, scores = masks_from_weak(weak), None
    return lift_masks(scene, maps, point_index=weak.point_index, point_label=weak.point_semantic, mask_scores=scores,
                      scene_tags=weak.scene_tags, **params)


def _frustum(scene: Scene, weak: WeakLabels, **params: Any) -> PseudoLabels:
    from .frustum_boxes import frustum_boxes
    if weak.box2d is None:
        raise SceneError("--method boxes2d-frustum: the weak labels have no 2D boxes (box2d)")
    return frustum_boxes(scene, weak.box2d, weak.box2d_semantic, weak.box2d_frame, **params)


METHODS: dict[str, Callable[..., PseudoLabels]] = {"boxes2d-frustum": _frustum, "lift-masks": _lift_masks, "propagate": _propagate, "nearest": _nearest, "gp-boxes": _gp_boxes,
                                                   "smallest-box": _smallest_box}


def _target(method: str) -> tuple[Callable[..., Any], set[str], set[str]]:
    """The function whose keyword arguments ``method`` forwards, the names its wrapper fills
    from the scene and the weak labels, and extra names the wrapper itself takes."""
    if method in ("gp-boxes", "smallest-box"):
        from .gp_boxes import gp_box_labels
        return gp_box_labels, {"scene", "boxes", "box_labels"} | ({"use_gp"} if method == "smallest-box" else set()), set()
    if method == "lift-masks":
        from .lift_masks import lift_masks
        return lift_masks, {"scene", "point_index", "point_label", "mask_scores", "scene_tags"}, {"masks"}
    if method == "boxes2d-frustum":
        from .frustum_boxes import frustum_boxes
        return frustum_boxes, {"scene", "box2d", "box2d_semantic", "box2d_frame"}, set()
    seeds = {"coord", "seed_index", "seed_label", "seed_instance", "classes"}
    if method == "nearest":
        return nearest_seed, seeds, set()
    return propagate, seeds | {"color", "normal", "segment", "num_classes"}, set()


def check_params(method: str, params: dict[str, Any]) -> None:
    """Raise ValueError for a labeller parameter that ``method`` does not take, or whose value
    has the wrong type for its default (``params.check_kwargs``), before any scene is read."""
    from ..params import check_kwargs
    if method not in METHODS:
        raise ValueError(f"--method {method!r}: expected one of {', '.join(sorted(METHODS))}")
    fn, filled, extra = _target(method)
    check_kwargs(fn, params, method, filled, extra)


def label_scene(scene: Scene, weak: WeakLabels, method: str = "propagate", **params: Any) -> PseudoLabels:
    """Dense pseudo-labels for ``scene`` from ``weak`` with the labeller ``method`` (``params``
    are checked by ``check_params``)."""
    check_params(method, params)
    weak.check_against(scene)
    out = METHODS[method](scene, weak, **params)
    out.check_against(scene)
    return out


@dataclass(frozen=True)
class LabelJob:
    """One scene of ``pcweak label``: read ``address`` and the ``weak`` file, label with
    ``method`` and write ``output`` (atomically)."""
    name: str
    address: str
    weak: str
    output: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    reader: dict[str, Any] = field(default_factory=dict)


def run_label_job(job: LabelJob) -> str:
    """Do ``job`` (in this process or a worker of ``parallel.process_map``); returns its name."""
    from ..data.address import load_scene
    scene = load_scene(job.address, **job.reader)
    label_scene(scene, WeakLabels.load(job.weak), job.method, **job.params).save(job.output)
    return job.name

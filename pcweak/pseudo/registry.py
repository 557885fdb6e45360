"""The labellers behind one entry: ``label(scene, weak, method, **params) -> PseudoLabels``.

Each ``Labeller`` names the weak labels it consumes (WeakLabels fields that must be present),
what it fills in the PseudoLabels, and its config dataclass, whose defaults are the only ones.
``params`` are checked against that dataclass (names, types, ranges) before any work runs, and
the result's ``params`` is ``dataclasses.asdict`` of the config: ``label`` with those params
makes the same file again, byte for byte.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import SceneError
from ..scene import PseudoLabels, Scene, WeakLabels, check_types


Check = tuple[Callable[[Any], bool], str]


def signature_config(fn: Callable[..., Any], name: str, skip: set[str], checks: dict[str, Check] | None = None) -> type:
    """A frozen config dataclass with one field per keyword parameter of ``fn`` not in ``skip``
    (the inputs the labeller's wrapper fills from the scene and the weak labels), with ``fn``'s
    own defaults and annotations, so that the defaults are written once, in ``fn``.
    ``checks`` maps a field to (predicate, what it wants), and a ``Range`` that ``fn`` declares
    (``params.Seed``, say) is one too: a value failing it raises ValueError when the config is
    made, before any work."""
    import typing
    from ..params import declared_ranges
    hints = typing.get_type_hints(fn)
    fields = []
    for p in inspect.signature(fn).parameters.values():
        if p.name in skip or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.default is p.empty:
            continue
        fields.append((p.name, hints.get(p.name, Any), dataclasses.field(default=p.default)))
    names = {f[0] for f in fields}
    rules = {k: (r.admits, r.text()) for k, r in declared_ranges(fn).items() if k in names}
    rules.update(checks or {})

    def post_init(self: Any) -> None:
        for key, (ok, want) in rules.items():
            value = getattr(self, key)
            if not ok(value):
                raise ValueError(f"{key} must be {want}, got {value!r}")
    return dataclasses.make_dataclass(name, fields, frozen=True, namespace={"__post_init__": post_init})


def _positive(v: Any) -> bool:
    return v is not None and v > 0


def _non_negative(v: Any) -> bool:
    return v is not None and v >= 0


def _fraction(v: Any) -> bool:
    return v is not None and 0 < v <= 1


# ``pcweak bench memory`` (docs/results.md): the line through a bare room of 132k and of 1.07M
# points is 1,841 bytes per point + 265 MiB for propagation (the forest's training sample and
# the kernels' buffers do not grow with the scene); the real scene0000_00 (81k points) holds 0.43 GiB
PROPAGATE_BYTES_PER_POINT = 1950.0
PROPAGATE_FIXED_BYTES = 400e6
# on a cloud sampled along scan lines (``descriptors.along_scan_lines``) propagation's graph has
# 40 neighbours, not 10: ``pcweak bench memory``'s LiDAR frames and KITTI 000000 hold 2,500-4,400
# bytes per point (their line 127 MiB + 1,892), 500k and 2M points of tiled SemanticKITTI 2,700
# and 2,450 (docs/results.md)
PROPAGATE_SCAN_LINE_BYTES_PER_POINT = 2500.0


@dataclass(frozen=True)
class Labeller:
    """One labeller: ``run(scene, weak, config)`` returns PseudoLabels; ``consumes`` are the
    WeakLabels fields it needs, ``fills`` the PseudoLabels fields it writes, ``config`` its
    settings' dataclass; ``replaced_by`` maps a consumed field to the config setting that
    supplies it instead (lift-masks' ``masks`` folder stands for ``mask2d``); weak labels holding
    all of ``or_fields`` need nothing else: ``label`` answers them with ``given(scene, weak,
    name, params)`` instead of ``run`` (a fully boxed frame's own boxes, for the box labellers
    of LiDAR objects). ``learns_geometry``: its ``geometry`` setting is learned from the fully
    boxed frames of a folder when not given (``label_jobs.learn_geometry``). ``bytes_per_point``:
    the memory a run holds at its peak per point of the scene, beyond what the process held
    before it, and ``fixed_bytes`` what it holds whatever the scene's size: ``pcweak label
    --workers`` budgets each scene by ``memory_bytes`` (the figures lie a little above ``pcweak
    bench memory``'s line through two scene sizes; docs/results.md); ``scan_line_bytes_per_point``:
    the same on a cloud sampled along scan lines, for the labellers that propagate.
    ``voxel_ok``: it may label a scene subsampled to one point per voxel, its labels carried back
    (``voxel_subsample``); not the LiDAR object labellers, whose boxes hold the points they were
    fitted to. ``keeps_seeds``: a labelled point keeps its own label in what it returns, as it
    does again after the labels are carried back."""
    name: str
    run: Callable[[Scene, WeakLabels, Any], PseudoLabels]
    config: type
    consumes: tuple[str, ...]
    fills: tuple[str, ...]
    summary: str
    replaced_by: tuple[tuple[str, str], ...] = ()
    or_fields: tuple[str, ...] = ()
    given: Callable[[Scene, WeakLabels, str, dict[str, Any]], PseudoLabels] | None = None
    learns_geometry: bool = False
    bytes_per_point: float = PROPAGATE_BYTES_PER_POINT
    fixed_bytes: float = PROPAGATE_FIXED_BYTES
    scan_line_bytes_per_point: float | None = None
    voxel_ok: bool = True
    keeps_seeds: bool = False

    def per_point_bytes(self, scan_lines: bool = False) -> float:
        """The budget per point: ``scan_line_bytes_per_point`` on a cloud sampled along scan lines
        where the labeller has one (its graph has more neighbours there), else ``bytes_per_point``."""
        if scan_lines and self.scan_line_bytes_per_point is not None:
            return self.scan_line_bytes_per_point
        return self.bytes_per_point

    def memory_bytes(self, points: int, scan_lines: bool = False) -> float:
        """The memory a run on a scene of ``points`` points holds at its peak, beyond what the
        process held before it (bytes): ``fixed_bytes + per_point_bytes(scan_lines) * points``."""
        return self.fixed_bytes + self.per_point_bytes(scan_lines) * points

    def __post_init__(self) -> None:
        if bool(self.or_fields) != (self.given is not None):
            raise ValueError(f"labeller {self.name!r}: or_fields and given come together")

    def holds_or_fields(self, weak: WeakLabels) -> bool:
        """Whether ``weak`` holds every one of ``or_fields`` (and so needs nothing else)."""
        return bool(self.or_fields) and all(getattr(weak, f, None) is not None for f in self.or_fields)

    def make_config(self, params: dict[str, Any] | Any | None = None) -> Any:
        from ..params import build_config
        return build_config(self.config, params, self.name)

    def missing_weak(self, weak: WeakLabels, config: Any) -> str | None:
        """The first field this labeller consumes that ``weak`` lacks and no setting of
        ``config`` supplies (``replaced_by``), with what would do instead; None when nothing is
        missing."""
        instead = dict(self.replaced_by)
        if self.holds_or_fields(weak):
            return None
        for need in self.consumes:
            if getattr(weak, need, None) is None and getattr(config, instead.get(need, ""), None) is None:
                alt = f" (or --param {instead[need]}=...)" if need in instead else ""
                return need + alt + (f" (or {', '.join(self.or_fields)})" if self.or_fields else "")
        return None

    def check_weak(self, weak: WeakLabels, config: Any) -> None:
        """SceneError naming the missing field when ``weak`` lacks what this labeller consumes."""
        missing = self.missing_weak(weak, config)
        if missing is not None:
            raise SceneError(f"--method {self.name}: the weak labels have no {missing}; "
                             f"{self.name} needs {', '.join(self.consumes)}")


LABELLERS: dict[str, Labeller] = {}


def register(labeller: Labeller) -> Labeller:
    LABELLERS[labeller.name] = labeller
    return labeller


def get_labeller(method: str) -> Labeller:
    """The registered labeller ``method``; ValueError listing the others when there is none."""
    _register_all()
    if method not in LABELLERS:
        raise ValueError(f"--method {method!r}: expected one of {', '.join(sorted(LABELLERS))}")
    return LABELLERS[method]


def check_params(method: str, params: dict[str, Any]) -> Any:
    """The config of ``method`` built from ``params``; ValueError for an unknown method, name,
    wrong type or out-of-range value, before any scene is read."""
    return get_labeller(method).make_config(params)


def propagate_scene(scene: Scene, weak: WeakLabels, config: Any = None, features: Any = None,
                    groups: Any = None) -> PseudoLabels:
    """``propagate`` from ``weak``'s labelled points over ``scene`` (its colours, normals and own
    segments when it has them); ``features`` (N,F) are learned per-point features for the
    graph's ``w_feat`` term (a model's class probabilities in ``model_walk_labels``); ``groups``
    (N,) class-agnostic 3D proposals (``group_evidence``)."""
    from .propagate import propagate
    return propagate(scene.coord, weak.point_index, weak.point_semantic, color=scene.color, normal=scene.normal,
                     segment=scene.segment, seed_instance=weak.point_instance, classes=scene.classes,
                     num_classes=len(scene.classes) or None, features=features, config=config, groups=groups)


def label(scene: Scene, weak: WeakLabels, method: str = "propagate", *, voxel: float | None = None,
          **params: Any) -> PseudoLabels:
    """Dense pseudo-labels for ``scene`` from ``weak`` with the labeller ``method``.

    ``voxel`` (metres): label the scene at one point per voxel of that edge and give each point
    the labels of a kept point beside it (``voxel_subsample``), for a scan too large to label
    point by point; ``stats`` then holds the voxel and the point counts.

    ``params`` set the labeller's config: nested mappings or dotted names for propagation's
    stages (``graph={"sigma_color": 0.1}`` or ``**{"graph.sigma_color": 0.1}``). The result's
    ``params`` is the full config (``dataclasses.asdict``); what the run found (counts) is in
    ``stats``. The scene is labelled under ``weak.classes_with(scene)``: weak labels may name the
    classes a scene labels without naming, or the classes of a scene without labels."""
    check_types("label(scene, weak)", (scene, Scene), (weak, WeakLabels))
    lab = get_labeller(method)
    cfg = lab.make_config(params)
    if voxel is not None and getattr(cfg, "groups", None):
        raise ValueError(f"groups: the proposals of {cfg.groups} are given per point of the scene, and voxel {voxel} would "
                         f"label one point per voxel; label the scene without subsampling")
    if voxel is not None:
        return label_subsampled(subsample_for(lab, scene, weak, voxel), method, **params)
    weak.check_against(scene)
    scene = scene.with_classes(weak.classes_with(scene))  # the weak labels' names for a PLY's class_3, say
    lab.check_weak(weak, cfg)
    if weak.holds_nothing():
        warnings.warn(f"scene {scene.name!r}: its weak labels hold no label ({', '.join(weak.kinds()) or 'no kind'}, all "
                      f"empty), so every point is left unlabelled")
    from ..segment.superpoints import units_problem
    problem = units_problem(scene.coord)
    if problem is not None:
        warnings.warn(f"scene {scene.name!r}: {problem}")
    settings = dataclasses.asdict(cfg)
    out = lab.given(scene, weak, method, settings) if lab.holds_or_fields(weak) else lab.run(scene, weak, cfg)
    out.check_against(scene)
    out.method = method
    out.params = json.dumps(settings, sort_keys=True)
    return out


def check_voxel_for(lab: Labeller, voxel: Any, where: str = "voxel") -> float | None:
    """``voxel`` as metres (None for none); ValueError naming ``where`` where it is not a size in
    metres or ``lab`` cannot label a subsampled scene (``Labeller.voxel_ok``)."""
    from .voxel_subsample import check_voxel
    size = check_voxel(voxel, where)
    if size is not None and not lab.voxel_ok:
        raise ValueError(f"{where}: --method {lab.name} fits its boxes to the points themselves; label the scene "
                         f"without subsampling (a LiDAR frame's 10^5 points need no more than a few hundred MB)")
    return size


def subsample_for(lab: Labeller, scene: Scene, weak: WeakLabels, voxel: float) -> Any:
    """``voxel_subsample.subsample`` of ``scene`` and ``weak`` for labeller ``lab``, the voxel
    checked first (``check_voxel_for``)."""
    from .voxel_subsample import subsample
    return subsample(scene, weak, check_voxel_for(lab, voxel))


def label_subsampled(sub: Any, method: str, **params: Any) -> PseudoLabels:
    """``label`` of a ``voxel_subsample.Subsampled`` scene, carried back to all its points (its
    labelled points keeping their own labels where the labeller ``keeps_seeds``)."""
    return sub.carry_back(label(sub.scene, sub.weak, method, **params), keep_seeds=get_labeller(method).keeps_seeds)


_REGISTERED = False


def _register_all() -> None:
    """Register the built-in labellers (imported here, on first use: gpytorch is slow to load)."""
    global _REGISTERED
    if _REGISTERED:
        return
    _REGISTERED = True
    from .frustum_boxes import frustum_boxes
    from .gp_boxes import gp_box_labels
    from .lift_masks import lift_masks
    from .mask_sources import load_mask_folder, masks_from_weak
    from .object_boxes import click_boxes, cluster_boxes, given_boxes
    from .box_fit import check_geometry
    from .group_sources import read_groups
    from .propagate import PropagateConfig, nearest_seed

    def run_propagate(scene: Scene, weak: WeakLabels, cfg: Any) -> PseudoLabels:
        walk = PropagateConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(PropagateConfig)})
        return propagate_scene(scene, weak, walk, groups=read_groups(cfg.groups, scene) if cfg.groups else None)

    def run_nearest(scene: Scene, weak: WeakLabels, cfg: Any) -> PseudoLabels:
        return nearest_seed(scene.coord, weak.point_index, weak.point_semantic, seed_instance=weak.point_instance,
                            classes=scene.classes, **dataclasses.asdict(cfg))

    def run_gp(scene: Scene, weak: WeakLabels, cfg: Any) -> PseudoLabels:
        return gp_box_labels(scene, weak.box, weak.box_semantic, **dataclasses.asdict(cfg))

    def run_smallest(scene: Scene, weak: WeakLabels, cfg: Any) -> PseudoLabels:
        return gp_box_labels(scene, weak.box, weak.box_semantic, use_gp=False, **dataclasses.asdict(cfg))

    def run_lift(scene: Scene, weak: WeakLabels, cfg: Any) -> PseudoLabels:
        kw = dataclasses.asdict(cfg)
        folder = kw.pop("masks")
        maps, scores = load_mask_folder(folder, scene) if folder else (masks_from_weak(weak), None)
        return lift_masks(scene, maps, point_index=weak.point_index, point_label=weak.point_semantic, mask_scores=scores,
                          scene_tags=weak.scene_tags, **kw)

    def run_frustum(scene: Scene, weak: WeakLabels, cfg: Any) -> PseudoLabels:
        return frustum_boxes(scene, weak.box2d, weak.box2d_semantic, weak.box2d_frame, **dataclasses.asdict(cfg))

    def run_clicks(scene: Scene, weak: WeakLabels, cfg: Any) -> PseudoLabels:
        return click_boxes(scene, weak, **dataclasses.asdict(cfg))

    def run_clusters(scene: Scene, weak: WeakLabels, cfg: Any) -> PseudoLabels:
        return cluster_boxes(scene, weak, **dataclasses.asdict(cfg))

    def _geometry_ok(v: Any) -> bool:
        try:
            check_geometry(v)
        except SceneError:
            return False
        return True

    object_checks: dict[str, Check] = {
        "geometry": (_geometry_ok, "None or {'sizes': {class: [length, width, height] in metres}, 'counts': {class: n}}"),
        "ground_tol": (_non_negative, "metres >= 0"), "ground_radius": (_positive, "metres > 0"),
        "link_radius": (_positive, "metres > 0"), "reach": (_positive, "> 0"), "min_points": (_positive, "an integer >= 1"),
        "trim": (lambda v: v is not None and 0 <= v < 0.25, "a fraction in [0, 0.25)")}

    def object_config(fn: Callable[..., Any], name: str) -> type:
        keys = set(inspect.signature(fn).parameters)
        return signature_config(fn, name, {"scene", "weak"}, {k: v for k, v in object_checks.items() if k in keys})

    seeds = ("point_index", "point_semantic")
    boxes = ("box", "box_semantic")
    gp_skip = {"scene", "boxes", "box_labels", "structure"}
    gp_checks: dict[str, Check] = {"iterations": (_positive, "an integer >= 1"), "n_per_class": (_positive, "an integer >= 1"),
                                   "n_inducing": (_positive, "an integer >= 1"), "lr": (_positive, "> 0"),
                                   "inside_fraction": (_fraction, "a fraction in (0, 1]"), "margin": (_non_negative, ">= 0"),
                                   "volume_prior": (_non_negative, ">= 0"),
                                   "min_confidence": (lambda v: v is not None and 0.5 <= v <= 1, "a probability in [0.5, 1]")}
    lift_cfg = signature_config(lift_masks, "LiftMasksConfig", {"scene", "masks", "point_index", "point_label",
                                                                  "mask_scores", "scene_tags"},
                                {"abs_tol": (_non_negative, "metres >= 0"), "rel_tol": (_non_negative, ">= 0"),
                                 "min_points": (_positive, "an integer >= 1"),
                                 "merge_overlap": (_fraction, "a fraction in (0, 1]"),
                                 "mask_link": (lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
                                 "mask_cut": (_non_negative, ">= 0"), "prior_weight": (_non_negative, ">= 0"),
                                 "prior_agreement": (_non_negative, ">= 0")})
    lift_cfg = dataclasses.make_dataclass(
        "LiftMasksConfig", [("masks", str | None, dataclasses.field(default=None))], bases=(lift_cfg,), frozen=True)
    # a file of class-agnostic 3D proposals (group_sources) beside the walk's settings
    propagate_cfg = dataclasses.make_dataclass(
        "PropagateLabelConfig", [("groups", str | None, dataclasses.field(default=None))], bases=(PropagateConfig,), frozen=True)
    for lab in (
        Labeller("propagate", run_propagate, propagate_cfg, seeds, ("semantic", "instance", "confidence"),
                 "random walks from labelled points (and clicks) over a superpoint graph",
                 scan_line_bytes_per_point=PROPAGATE_SCAN_LINE_BYTES_PER_POINT, keeps_seeds=True),
        Labeller("nearest", run_nearest, signature_config(nearest_seed, "NearestConfig",
                                                          {"coord", "seed_index", "seed_label", "seed_instance", "classes"},
                                                          {"k_vote": (_positive, "an integer >= 1")}),
                 seeds, ("semantic", "instance", "confidence"), "every point takes its nearest seed's label (baseline)",
                 bytes_per_point=150.0, fixed_bytes=16e6, keeps_seeds=True),
        Labeller("gp-boxes", run_gp, signature_config(gp_box_labels, "GPBoxConfig", gp_skip, gp_checks), boxes,
                 ("semantic", "instance", "confidence", "box"), "3D boxes: overlaps decided by GP classifiers",
                 bytes_per_point=600.0, fixed_bytes=85e6),
        Labeller("smallest-box", run_smallest, signature_config(gp_box_labels, "SmallestBoxConfig", gp_skip | {"use_gp"},
                                                                gp_checks),
                 boxes, ("semantic", "instance", "confidence", "box"), "3D boxes: overlaps go to the smallest box (baseline)",
                 bytes_per_point=640.0, fixed_bytes=35e6),
        Labeller("lift-masks", run_lift, lift_cfg, ("mask2d",), ("semantic", "confidence"),
                 "2D masks lifted through depth: they join and cut the propagation's graph, their class scores seed it", (("mask2d", "masks"),),
                 bytes_per_point=2100.0, fixed_bytes=450e6,
                 scan_line_bytes_per_point=PROPAGATE_SCAN_LINE_BYTES_PER_POINT + 2100.0 - PROPAGATE_BYTES_PER_POINT,
                 keeps_seeds=True),
        Labeller("boxes2d-frustum", run_frustum,
                 signature_config(frustum_boxes, "FrustumConfig", {"scene", "box2d", "box2d_semantic", "box2d_frame"},
                                  {"shrink": (lambda v: 0 <= v < 0.5, "a fraction in [0, 0.5)"),
                                   "ground_tol": (_non_negative, "metres >= 0"), "ground_radius": (_positive, "metres > 0"),
                                   "cluster_radius": (_positive, "metres > 0"), "min_points": (_positive, "an integer >= 1"),
                                   "geometry": object_checks["geometry"], "trim": object_checks["trim"],
                                   "max_spill": (lambda v: v is not None and 0 <= v <= 1, "a share in [0, 1]"),
                                   "pad": (_non_negative, ">= 0"),
                                   "image_fit_below": (lambda v: v is not None and 0 <= v <= 1, "an IoU in [0, 1] (0: off)"),
                                   "image_fit_elongation": (lambda v: v is not None and v >= 1,
                                                            "a length-to-width ratio >= 1")}),
                 ("box2d", "box2d_semantic"), ("box", "semantic", "instance", "confidence"),
                 "2D image boxes: a 3D box fitted to the points in each box's frustum, with the learned sizes",
                 or_fields=("box",), given=given_boxes, learns_geometry=True, bytes_per_point=400.0, fixed_bytes=35e6,
                 voxel_ok=False),
        Labeller("click-boxes", run_clicks, object_config(click_boxes, "ClickBoxesConfig"), seeds,
                 ("box", "semantic", "instance", "confidence"),
                 "one click per LiDAR object: its points grown from the click, an amodal box with the learned sizes",
                 or_fields=("box",), given=given_boxes, learns_geometry=True, bytes_per_point=600.0, fixed_bytes=60e6,
                 voxel_ok=False),
        Labeller("cluster-boxes", run_clusters, object_config(cluster_boxes, "ClusterBoxesConfig"),
                 seeds + ("point_instance",), ("box", "semantic", "instance", "confidence"),
                 "cluster labels of LiDAR objects: an amodal box per cluster with the learned sizes",
                 or_fields=("box",), given=given_boxes, learns_geometry=True, bytes_per_point=170.0, fixed_bytes=16e6,
                 voxel_ok=False),
    ):
        register(lab)

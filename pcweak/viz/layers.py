"""Colour layers of a scene: what the viewer and the PNG renderer draw."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import colors as C


# the layer a --color-by name shows when its own is missing: GT for pseudo-labels, a scene's own
# segments for a propagation's cells
LAYER_FALLBACK = {"semantic": "gt", "superpoint": "segment"}


@dataclass
class Layers:
    """Per-point colour layers (N,3) uint8 by name, seed points (K,) and boxes to draw.

    ``boxes`` maps a layer name ("gt boxes", "pseudo boxes") to ((M,7) boxes, (M,3) uint8 colours).
    ``legend`` lists (name, colour) of the classes shown; ``extra_legend`` the other colours a
    picture shows (no label, error / correct, seed markers, box outlines). ``lidar``: a LiDAR
    frame (drawn from above); ``around``: one without a camera image (drawn centred on the
    sensor)."""

    coord: np.ndarray
    point_layers: dict[str, np.ndarray] = field(default_factory=dict)
    seeds: np.ndarray | None = None
    seed_colors: np.ndarray | None = None
    boxes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    legend: list[tuple[str, tuple[int, int, int]]] = field(default_factory=list)
    extra_legend: list[tuple[str, tuple[int, int, int]]] = field(default_factory=list)
    lidar: bool = False
    around: bool = False

    @property
    def seed_points(self) -> tuple[np.ndarray, np.ndarray] | None:
        """((K,3) coordinates, (K,3) uint8 colours) of the seed points, None where there are none."""
        if self.seeds is None or not len(self.seeds):
            return None
        return self.coord[self.seeds], self.seed_colors


def error_colors(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Red where the pseudo-label differs from a GT label (unlabelled pseudo points included),
    light grey where it agrees, dark grey where GT is unlabelled."""
    out = np.tile(C.IGNORED, (len(gt), 1))
    lab = gt >= 0
    out[lab & (pred == gt)] = C.CORRECT
    out[lab & (pred != gt)] = C.ERROR
    return out


def drawn_from_above(scene) -> bool:
    """Whether ``scene`` is a LiDAR frame (KITTI, SemanticKITTI, a generated one), which pictures
    draw in one row of top views rather than in orbit views."""
    meta = scene.meta or {}
    return bool(meta.get("lidar")) or meta.get("dataset") in ("kitti", "semantickitti")


def build_layers(scene, pseudo=None, weak=None) -> Layers:
    """All layers available for ``scene`` with optional ``PseudoLabels`` and ``WeakLabels``, named
    under the class lists of the three joined (weak labels may name a PLY's ``class_3``)."""
    if weak is not None:
        weak.check_against(scene)
        scene = scene.with_classes(weak.classes_with(scene))
    if pseudo is not None:
        pseudo.check_against(scene)
    classes = tuple(scene.classes) if pseudo is None else pseudo.classes_with(scene)
    pal = C.palette_for(classes)
    lidar = drawn_from_above(scene)
    L = Layers(coord=scene.coord, lidar=lidar, around=lidar and not (scene.frames and scene.frames[0].image is not None))
    if scene.color is not None:
        L.point_layers["rgb"] = (np.clip(scene.color, 0, 1) * 255).astype(np.uint8)
    elif scene.intensity is not None:
        L.point_layers["rgb"] = C.heat(scene.intensity / max(float(scene.intensity.max()), 1e-6))
    if scene.semantic is not None:
        L.point_layers["gt"] = C.label_colors(scene.semantic, pal)
    if scene.instance is not None:
        L.point_layers["gt instance"] = C.instance_colors(scene.instance)
    if scene.segment is not None:  # the scene's own over-segmentation (a mesh's segments)
        L.point_layers["segment"] = C.instance_colors(scene.segment)
    shown = set() if scene.semantic is None else set(np.unique(scene.semantic[scene.semantic >= 0]).tolist())
    if pseudo is not None:
        L.point_layers["semantic"] = C.label_colors(pseudo.semantic, pal)
        L.point_layers["instance"] = C.instance_colors(pseudo.instance)
        L.point_layers["confidence"] = C.heat(pseudo.confidence)
        cells = pseudo.extras.get("superpoint")
        if cells is not None:  # the cells propagation's labels are uniform over
            L.point_layers["superpoint"] = C.instance_colors(np.asarray(cells, np.int64))
        if scene.semantic is not None:
            L.point_layers["error"] = error_colors(scene.semantic, pseudo.semantic)
        shown |= set(np.unique(pseudo.semantic[pseudo.semantic >= 0]).tolist())
        if pseudo.box is not None and len(pseudo.box):
            L.boxes["pseudo boxes"] = (pseudo.box, C.label_colors(pseudo.box_semantic, pal))
    if scene.boxes is not None and len(scene.boxes):
        L.boxes["gt boxes"] = (scene.boxes, C.label_colors(scene.box_labels, pal))
    if weak is not None:
        if weak.point_index is not None:
            L.seeds = weak.point_index
            L.seed_colors = C.label_colors(weak.point_semantic if weak.point_semantic is not None else np.full(len(weak.point_index), -1), pal)
        if weak.box is not None and len(weak.box):
            L.boxes["weak boxes"] = (weak.box, C.label_colors(weak.box_semantic, pal))
    L.legend = [(classes[i], tuple(int(v) for v in pal[i])) for i in sorted(shown) if i < len(pal)]
    rgb = lambda c: tuple(int(v) for v in c)  # noqa: E731
    unlabelled = (scene.semantic is not None and (scene.semantic < 0).any()) or (pseudo is not None and (pseudo.semantic < 0).any())
    if unlabelled:
        L.extra_legend.append(("no label", rgb(C.UNLABELLED)))
    if "error" in L.point_layers:
        L.extra_legend += [("error: pseudo != GT", rgb(C.ERROR)), ("correct", rgb(C.CORRECT)), ("GT unlabelled", rgb(C.IGNORED))]
    if L.seed_points is not None:
        L.extra_legend.append(("seed point (class colour, black ring)", (0, 0, 0)))
    for bname in L.boxes:
        L.extra_legend.append((f"{bname}: outline in class colour", (255, 255, 255)))
    return L

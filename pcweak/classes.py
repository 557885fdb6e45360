"""Class lists and label maps of the supported benchmarks (label i means ``CLASSES[i]``)."""
from __future__ import annotations

from typing import Callable, Sequence

# ScanNet v2 20-class benchmark, in the order of their NYU40 ids.
SCANNET20_NYU40_IDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET20: tuple[str, ...] = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink",
    "bathtub", "otherfurniture",
)
NYU40_TO_SCANNET20: dict[int, int] = {nyu: i for i, nyu in enumerate(SCANNET20_NYU40_IDS)}
# Classes that are not objects in ScanNet's instance and detection benchmarks.
SCANNET_STUFF: tuple[str, ...] = ("wall", "floor")
# ScanNet's 18 detection classes as mmdetection3d names them in its infos (label i = index i),
# and the two names that differ from ScanNet-20's.
SCANNET18_MMDET3D: tuple[str, ...] = (
    "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture", "counter",
    "desk", "curtain", "refrigerator", "showercurtrain", "toilet", "sink", "bathtub", "garbagebin",
)
MMDET3D_TO_SCANNET20_NAMES: dict[str, str] = {"showercurtrain": "shower curtain", "garbagebin": "otherfurniture"}

S3DIS13: tuple[str, ...] = (
    "ceiling", "floor", "wall", "beam", "column", "window", "door", "table", "chair", "sofa",
    "bookcase", "board", "clutter",
)
# Annotation file prefixes outside the 13 classes and what they become.
S3DIS_ALIASES: dict[str, str] = {"stairs": "clutter"}
# Classes that are not objects in S3DIS instance segmentation.
S3DIS_STUFF: tuple[str, ...] = ("ceiling", "floor", "wall")

KITTI_CLASSES: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist", "background")
KITTI_OBJECT_CLASSES: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")
# Every object type of KITTI's label_2 files (its object devkit's readme); the evaluated classes
# are among them.
KITTI_OBJECT_TYPES: tuple[str, ...] = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram",
                                       "Misc", "DontCare")

# SemanticKITTI's 19 evaluated classes and its raw label ids -> their index (moving objects
# count as their static class; unlabelled, outlier, other-structure and other-object are not
# evaluated, -1), as its benchmark's learning map defines them.
SEMANTICKITTI19: tuple[str, ...] = (
    "car", "bicycle", "motorcycle", "truck", "other-vehicle", "person", "bicyclist", "motorcyclist", "road",
    "parking", "sidewalk", "other-ground", "building", "fence", "vegetation", "trunk", "terrain", "pole",
    "traffic-sign",
)
SEMANTICKITTI_RAW_TO_19: dict[int, int] = {
    10: 0, 11: 1, 13: 4, 15: 2, 16: 4, 18: 3, 20: 4, 30: 5, 31: 6, 32: 7, 40: 8, 44: 9, 48: 10, 49: 11, 50: 12,
    51: 13, 60: 8, 70: 14, 71: 15, 72: 16, 80: 17, 81: 18, 252: 0, 253: 6, 254: 5, 255: 7, 256: 4, 257: 4,
    258: 3, 259: 4,
}
# The raw ids SemanticKITTI defines but does not evaluate: unlabelled, outlier, other-structure,
# other-object. With SEMANTICKITTI_RAW_TO_19's keys, every id its label set knows.
SEMANTICKITTI_UNEVALUATED_IDS: tuple[int, ...] = (0, 1, 52, 99)


# Semantic3D's 8 classes (its ``.labels`` files: 0 unlabelled, i + 1 = class i), as its
# benchmark names them.
SEMANTIC3D8: tuple[str, ...] = (
    "man-made terrain", "natural terrain", "high vegetation", "low vegetation", "buildings", "hard scape",
    "scanning artefacts", "cars",
)


# The raw id each of SEMANTICKITTI19 is written as in a benchmark submission (its learning map's
# inverse: other-vehicle as 20, not the bus or tram ids that also map to it).
SEMANTICKITTI19_RAW_IDS: tuple[int, ...] = (10, 11, 15, 18, 20, 30, 31, 32, 40, 44, 48, 49, 50, 51, 70, 71, 72, 80, 81)


def semantickitti_classes(label: "np.ndarray") -> "np.ndarray":
    """(N,) int64 index into ``SEMANTICKITTI19`` of each uint32 SemanticKITTI label (semantic id
    in the lower 16 bits), -1 for the ids the benchmark does not evaluate (0 unlabelled,
    outliers, other-structure, other-object) and ids it does not know."""
    import numpy as np
    raw = (np.asarray(label, np.uint32) & 0xFFFF).astype(np.int64)
    lut = np.full(max(int(raw.max()) + 1 if raw.size else 0, 260), -1, np.int64)
    for k, v in SEMANTICKITTI_RAW_TO_19.items():
        lut[k] = v
    return lut[raw]


def placeholder_class(i: int) -> str:
    """The name a reader gives class ``i`` of a file that labels points but does not name their
    classes (a PLY's ``label``, a LAS file's codes without a lookup record)."""
    return f"class_{i}"


def class_list_disagreement(a: Sequence[str], b: Sequence[str]) -> int | None:
    """The first label that the class lists ``a`` and ``b`` name differently, neither name a
    placeholder (``placeholder_class``); None where they join (``joined_class_list``)."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y and placeholder_class(i) not in (x, y)), None)


def joined_class_list(a: Sequence[str], b: Sequence[str]) -> tuple[str, ...] | None:
    """One class list for labels over ``a`` and over ``b``, or None when they disagree. A file
    names classes only up to its highest label, and only those it knows: the lists may differ in
    length (the longer one is taken) and a placeholder (``placeholder_class``) yields to a name
    at its index; any other difference at an index is a disagreement."""
    if class_list_disagreement(a, b) is not None:
        return None
    out = []
    for i in range(max(len(a), len(b))):
        names = [c[i] for c in (a, b) if i < len(c)]
        out.append(next((x for x in names if x != placeholder_class(i)), names[0]))
    return tuple(out)


def join_class_lists(a: Sequence[str], b: Sequence[str], mismatch: Callable[[int], Exception]) -> tuple[str, ...]:
    """``joined_class_list(a, b)``, or where the lists disagree the exception ``mismatch(i)``
    raised, ``i`` the first label they name differently (``class_list_disagreement``): the
    caller words it, naming the file or argument each list came from."""
    joined = joined_class_list(a, b)
    if joined is None:
        raise mismatch(class_list_disagreement(a, b))
    return joined


def nyu40_to_scannet20(nyu40: int) -> int:
    """NYU40 id -> ScanNet-20 label (-1 when the id is not one of the 20)."""
    return NYU40_TO_SCANNET20.get(int(nyu40), -1)


# Names that are surfaces or background, not objects, in any other class list.
GENERIC_STUFF: tuple[str, ...] = ("wall", "floor", "ceiling", "background")


def stuff_classes(classes: tuple[str, ...]) -> tuple[str, ...]:
    """Classes of ``classes`` that are not object instances in their benchmark: ScanNet's wall
    and floor, S3DIS's ceiling, floor and wall, KITTI's background; for any other list, those
    of ``GENERIC_STUFF`` it holds."""
    if tuple(classes) == SCANNET20:
        return SCANNET_STUFF
    if tuple(classes) == S3DIS13:
        return S3DIS_STUFF
    return tuple(c for c in GENERIC_STUFF if c in classes)

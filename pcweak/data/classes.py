"""Class lists and label maps of the supported benchmarks (label i means ``CLASSES[i]``)."""
from __future__ import annotations

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

S3DIS13: tuple[str, ...] = (
    "ceiling", "floor", "wall", "beam", "column", "window", "door", "table", "chair", "sofa",
    "bookcase", "board", "clutter",
)
# Annotation file prefixes outside the 13 classes and what they become.
S3DIS_ALIASES: dict[str, str] = {"stairs": "clutter"}

KITTI_CLASSES: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist", "background")
KITTI_OBJECT_CLASSES: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")


def nyu40_to_scannet20(nyu40: int) -> int:
    """NYU40 id -> ScanNet-20 label (-1 when the id is not one of the 20)."""
    return NYU40_TO_SCANNET20.get(int(nyu40), -1)

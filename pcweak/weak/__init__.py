"""Weak-label simulators: cheap labels drawn from ground truth, seeded and reproducible.

``points``, ``clicks``, ``clusters``, ``boxes``, ``masks2d``, ``boxes2d``, ``scene_tags``; ``simulate`` picks
one by name (what ``pcweak simulate --weak KIND`` calls).
"""
from __future__ import annotations

import warnings
import zlib
from typing import Any

import numpy as np

from ..scene import Scene, WeakLabels, check_types
from .boxes import boxes, boxes2d
from .masks2d import masks2d
from ..params import Count, Seed, ranges_checked
from .points import _need, clicks, clusters, points


@ranges_checked("tags")
def scene_tags(scene: Scene, min_points: Count = 1, seed: Seed = 0) -> WeakLabels:
    """(C,) bool: which classes occur in the scene (at least ``min_points`` labelled points)."""
    _need(scene, "semantic")
    counts = np.bincount(scene.semantic[scene.semantic >= 0], minlength=len(scene.classes))
    return WeakLabels(scene=scene.name, num_points=scene.num_points, classes=scene.classes,
                      scene_tags=counts >= min_points, meta={"kind": "tags", "min_points": int(min_points)})


KINDS = {"points": points, "clicks": clicks, "clusters": clusters, "boxes": boxes, "masks2d": masks2d, "boxes2d": boxes2d, "tags": scene_tags}


def scene_seed(name: str, seed: int) -> int:
    """The seed of scene ``name``'s draw in a set drawn with ``seed``: one per scene, the same in
    every process and run (``pcweak simulate`` of a folder and training's simulated weak labels,
    indoor and LiDAR, draw alike)."""
    return (zlib.crc32(name.encode()) + 7919 * seed) % (2 ** 31)


def boxed_frames(names: list[str], fraction: float, seed: int = 0) -> set[str]:
    """The fully boxed share of a set of LiDAR frames: ``round(fraction * n)`` of the ``names``
    (at least one when ``fraction`` > 0), drawn reproducibly from ``seed`` whatever their order;
    the frames whose boxes teach ``click-boxes`` / ``cluster-boxes`` the object sizes (training's
    ``box_fraction``, ``pcweak simulate FOLDER --boxed-fraction``)."""
    if fraction <= 0 or not names:
        return set()
    k = max(1, int(round(fraction * len(names))))
    order = sorted(names, key=lambda n: (zlib.crc32(f"{seed}:{n}".encode()), n))
    return set(order[:k])


def simulate(scene: Scene, kind: str, seed: int = 0, **kwargs: Any) -> WeakLabels:
    """Simulate weak labels of ``kind`` (one of ``KINDS``) for ``scene``."""
    check_types("simulate(scene, kind)", (scene, Scene))
    if kind not in KINDS:
        raise ValueError(f"--weak {kind!r}: expected one of {', '.join(KINDS)}")
    weak = KINDS[kind](scene, seed=seed, **kwargs)
    if weak.holds_nothing():  # a scene without instances to click, box or mask, say
        warnings.warn(f"scene {scene.name!r}: the simulated {kind} hold no label (its ground truth gives none to draw)")
    return weak


__all__ = ["points", "clicks", "clusters", "boxes", "boxes2d", "masks2d", "scene_tags", "simulate", "scene_seed", "boxed_frames", "KINDS"]

"""Read scenes kept in memory by a training dataset, within a byte bound."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np

from ..scene import Scene


def scene_bytes(scene: Scene) -> int:
    """Bytes of a scene's in-memory arrays (points, labels, boxes; frames' images are read
    lazily and not counted)."""
    arrays = [getattr(scene, f) for f in ("coord", "color", "normal", "intensity", "semantic", "instance", "segment",
                                          "boxes", "box_labels")]
    return sum(a.nbytes for a in arrays if a is not None) + sum(np.asarray(v).nbytes for v in scene.extras.values())


class SceneCache:
    """Scenes by name, the least recently used dropped once they hold more than ``max_bytes``
    (``scene_bytes``); the scene just added always stays. One per dataset and loader process:
    a full ScanNet or S3DIS split does not fit in memory once per worker."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._scenes: OrderedDict[str, tuple[Scene, int]] = OrderedDict()
        self.bytes = 0

    def get(self, name: str, load: Callable[[], Scene]) -> Scene:
        if name in self._scenes:
            self._scenes.move_to_end(name)
            return self._scenes[name][0]
        scene = load()
        size = scene_bytes(scene)
        self._scenes[name] = (scene, size)
        self.bytes += size
        while self.bytes > self.max_bytes and len(self._scenes) > 1:
            _, (_, dropped) = self._scenes.popitem(last=False)
            self.bytes -= dropped
        return scene

    def __contains__(self, name: str) -> bool:
        return name in self._scenes

    def __len__(self) -> int:
        return len(self._scenes)

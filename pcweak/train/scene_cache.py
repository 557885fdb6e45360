"""Read scenes kept by a training dataset: in memory within a byte bound (``SceneCache``), and
on disk as parsed copies of their source files (``read_through``)."""
from __future__ import annotations

import hashlib
import json
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np

from ..code_stamp import reader_stamp
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

    def __len__(self) -> int:
        return len(self._scenes)


def read_through(folder: str | Path | None, name: str, address: str) -> Scene:
    """The scene at ``address``, read once from its source files and afterwards from a copy in
    ``folder`` (``<name>.npz``): parsing S3DIS text or a ScanNet mesh takes seconds a scene,
    loading the copy a fraction of that, so an epoch that re-reads scenes dropped from memory
    (``SceneCache``) does not parse them again. The copy holds the identity of the source
    files (``label_jobs.scene_identity``: paths, sizes, times) and of the readers' code
    (``reader_stamp``), and is made again when either changes (so upgrading pcweak never trains
    on a scene as an older reader read it); it keeps each frame's camera but not its images
    (training reads none). ``npz:`` addresses, and any address when ``folder`` is None, are read
    as they are."""
    from ..data.address import load_scene
    from ..errors import PcweakError
    from ..label_jobs import scene_identity
    if folder is None or address.startswith("npz:"):
        return load_scene(address)
    identity = {"scene": scene_identity(address), "reader": reader_stamp()}
    stamp = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(folder) / f"{name}.npz"
    if path.is_file():
        try:
            copy = Scene.load(path)
            if copy.meta.get("read_through") == stamp:
                return copy
        except (OSError, PcweakError):
            pass  # unreadable: made again below
    scene = load_scene(address)
    scene.frames = [f.camera() for f in scene.frames]
    scene.meta = {**scene.meta, "read_through": stamp}
    try:
        scene.save(path)
    except OSError as e:  # a read-only or full disk: train on, parsing each time
        warnings.warn(f"{path}: cannot keep a parsed copy of {address} ({e}); it will be parsed on every read")
    return scene

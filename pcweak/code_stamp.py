"""Which code made a file: hashes of pcweak's own source, recorded in what it writes, so that a
file made by other code is made again even where pcweak's version number did not change (an
edited checkout, a fix installed from a branch).

Each group below names the modules whose code decides what one kind of output holds; a package
stands for every module in its folder. A group errs on the side of more: a module it names
needlessly only redoes work, one it misses serves a stale file (``tests/test_code_stamp.py``
checks that each group holds every pcweak module its modules import, in functions too).
"""
from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

# what a read or generated scene holds: the readers and generators and what they compute with
# (ScanNet's segmentator for a mesh without segments and the partitions beside it, vertex
# normals, boxes, class maps, the pickle-free loaders)
READER_MODULES = ("pcweak.data", "pcweak.segment", "pcweak.ops", "pcweak.geometry", "pcweak.classes", "pcweak.scene",
                  "pcweak.camera", "pcweak.kitti_objects", "pcweak.npzio", "pcweak.textio", "pcweak.params",
                  "pcweak.safe_load", "pcweak.project_files")
# what a weak-label file holds (`pcweak simulate`, `pcweak import`): the scene, the simulators
# or table readers and the worker pool that runs them
WEAK_MODULES = READER_MODULES + ("pcweak.weak", "pcweak.weak_jobs", "pcweak.parallel")
# what a pseudo-label file of `pcweak label` holds: the scene, its weak labels (simulated on the
# fly for a training split) and the labellers with the partitions and ops they run on
LABELLER_MODULES = WEAK_MODULES + ("pcweak.pseudo", "pcweak.label_jobs")
# what a mask folder of `pcweak masks` holds: the scene's frames and the SAM / CLIP adapters
MASK_MODULES = READER_MODULES + ("pcweak.pseudo.mask_models", "pcweak.pseudo.mask_sources", "pcweak.pseudo.mask_views",
                                 "pcweak.cli.masks")
# what a model's pseudo-labels hold (`pcweak label --method model` / `model-walk`): the above,
# the network, how a trained model predicts and the box and mask operations its tasks share
# with the metrics
MODEL_MODULES = LABELLER_MODULES + ("pcweak.models", "pcweak.train", "pcweak.tasks", "pcweak.metrics")


def source_files(name: str) -> list[tuple[str, Path]]:
    """(module name, source file) of each file ``code_stamp`` reads for the dotted ``name``: a
    module's own file, or a package's modules in its folder (by name, ``__init__`` as the
    package), found without importing them."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImportError(f"code_stamp: no source for module {name!r}")
    if spec.submodule_search_locations:
        return [(f"{name}.{f.stem}" if f.stem != "__init__" else name, f)
                for f in sorted(Path(spec.origin).parent.glob("*.py"))]
    return [(name, Path(spec.origin))]


@lru_cache(maxsize=None)
def code_stamp(modules: tuple[str, ...]) -> str:
    """16 hex digits of the SHA-256 of the source files of ``modules`` (dotted names, in the
    order given; ``source_files``), read without importing them: what a file made by that code
    records, so that a change of the code makes the file again."""
    h = hashlib.sha256()
    for name in modules:
        for mod, path in source_files(name):
            h.update(mod.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def reader_stamp() -> str:
    """``code_stamp`` of ``READER_MODULES``."""
    return code_stamp(READER_MODULES)


def made_by(modules: tuple[str, ...]) -> dict[str, Any]:
    """The fingerprint entries that name the code making an output: pcweak's version
    (``"pcweak"``) and ``code_stamp(modules)`` (``"code"``)."""
    from . import __version__
    return {"pcweak": __version__, "code": code_stamp(modules)}

"""``pcweak label`` jobs: read a scene and its weak labels, label, write the output atomically.
Lives above the readers and the labellers because it wires the two (a labeller never reads
files)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .scene import WeakLabels


@dataclass(frozen=True)
class LabelJob:
    """One scene of ``pcweak label``: read ``address`` and the ``weak`` file, label with
    ``method`` and ``params`` and write ``output`` (atomically)."""
    name: str
    address: str
    weak: str
    output: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    reader: dict[str, Any] = field(default_factory=dict)


def run_label_job(job: LabelJob) -> str:
    """Do ``job`` (in this process or a worker of ``parallel.process_map``); returns its name."""
    from .data.address import load_scene
    from .pseudo.registry import label
    scene = load_scene(job.address, **job.reader)
    label(scene, WeakLabels.load(job.weak), job.method, **job.params).save(job.output)
    return job.name

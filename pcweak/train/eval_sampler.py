"""Which scenes each process of a distributed run evaluates (validation, test, predict): every
scene exactly once. Lightning's default for validation and test, a ``DistributedSampler``, pads
the processes' shares to one length with repeated scenes, which then count twice in the score."""
from __future__ import annotations

from typing import Sized

from torch.utils.data import Sampler

from ..tasks.across_processes import process_count


def evaluation_sampler(dataset: Sized, what: str) -> Sampler | None:
    """A sampler giving this process its share of ``dataset`` in order, none repeated (shares
    differ by at most one scene), in a distributed run; None in a single process. ``what``
    names the scenes in the error raised when there are fewer of them than processes (a process
    without a scene would leave the others waiting for it at the epoch's end)."""
    world = process_count()
    if world == 1:
        return None
    if 0 < len(dataset) < world:
        raise ValueError(f"{what}: {len(dataset)} scene(s) for {world} processes (trainer.devices x num_nodes); each "
                         f"process evaluates at least one, so give at least {world} or run on fewer devices")
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
    return UnrepeatedDistributedSampler(dataset, shuffle=False)

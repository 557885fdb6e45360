"""Which scenes each process of a distributed run evaluates (validation, test, predict): every
scene exactly once. Lightning's default for validation and test, a ``DistributedSampler``, pads
the processes' shares to one length with repeated scenes, which then count twice in the score."""
from __future__ import annotations

from typing import Any, Sized

from torch.utils.data import Sampler

from ..tasks.across_processes import process_count


# what each stage evaluates, as its refusal names it
EVALUATED = {"fit": "validation scenes", "validate": "validation scenes", "test": "test scenes",
             "predict": "scenes to predict"}


def _check_share(count: int, world: int, stage: str) -> None:
    if 0 < count < world:
        what = EVALUATED[stage]
        raise ValueError(f"{what}: {count} scene(s) for {world} processes (trainer.devices x num_nodes); each "
                         f"process evaluates at least one, so give at least {world} or run on fewer devices")


def check_evaluation_shares(trainer: Any, datamodule: Any, stage: str) -> None:
    """Before a distributed run starts its processes: as many scenes to evaluate (validation
    for fit / validate / test, the scenes to predict) as processes, so the refusal is one line
    (``evaluation_sampler`` would raise it in every process). ``datamodule.evaluation_scenes``
    lists them."""
    from lightning.pytorch.strategies import DDPStrategy
    world = trainer.num_devices * trainer.num_nodes
    if world < 2 or not isinstance(trainer.strategy, DDPStrategy) or not hasattr(datamodule, "evaluation_scenes"):
        return
    _check_share(len(datamodule.evaluation_scenes(stage)), world, stage)


def evaluation_sampler(dataset: Sized, stage: str) -> Sampler | None:
    """A sampler giving this process its share of ``dataset`` in order, none repeated (shares
    differ by at most one scene), in a distributed run; None in a single process. Fewer scenes
    than processes is an error naming what ``stage`` evaluates (a process without a scene would
    leave the others waiting for it at the epoch's end)."""
    world = process_count()
    if world == 1:
        return None
    _check_share(len(dataset), world, stage)
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
    return UnrepeatedDistributedSampler(dataset, shuffle=False)

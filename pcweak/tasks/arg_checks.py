"""Range checks of the tasks' settings (``model.init_args``), made where they enter: each task's
constructor (the Python API) and the training CLI's parse, before the data, the trainer or the
optimizer is built. Without them a negative learning rate ended in the optimizer's "Invalid
learning rate" after the trainer had started, an empty ``data.feature_names`` in a division by
zero inside the network, and a negative loss weight trained by gradient ascent without a word."""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

Rule = tuple[Callable[[Any], bool], str]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


POSITIVE: Rule = (lambda v: _number(v) and v > 0, "a number > 0")
NON_NEGATIVE: Rule = (lambda v: _number(v) and v >= 0, "a number >= 0")
SCORE: Rule = (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]")
IOU: Rule = (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]")
COUNT: Rule = (lambda v: _integer(v) and v >= 1, "an integer >= 1")
COUNT0: Rule = (lambda v: _integer(v) and v >= 0, "an integer >= 0")
CHANNELS: Rule = (lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(_integer(c) and c >= 1 for c in v),
                  "a list of integers >= 1")
POSITIVE_EACH: Rule = (lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(_number(x) and x > 0 for x in v),
                       "a list of numbers > 0")

# the settings SemanticSegmentation and InstanceSegmentation share
SEGMENTATION_RULES: dict[str, Rule] = {
    "num_classes": COUNT, "in_channels": COUNT, "lr": POSITIVE, "weight_decay": NON_NEGATIVE,
    "loss_seed": NON_NEGATIVE, "loss_pseudo": NON_NEGATIVE, "loss_consistency": NON_NEGATIVE,
    "loss_regionmask": NON_NEGATIVE, "rampup_epochs": NON_NEGATIVE, "consistency_points": COUNT,
}
SEGMENTATION_LOSSES = ("loss_seed", "loss_pseudo", "loss_consistency", "loss_regionmask")
HINTS = {"in_channels": " (the width of data.feature_names: name at least one input feature)"}


def check_args(values: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """ValueError ``model.<name>: expected ..., got ...`` for the first of ``values`` (setting
    name -> value) that breaks its rule; names without a rule, and rules without a value, pass."""
    for key, (ok, want) in rules.items():
        if key in values and not ok(values[key]):
            raise ValueError(f"model.{key}: expected {want}, got {values[key]!r}{HINTS.get(key, '')}")


def check_some_loss(values: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """ValueError when every loss weight of ``names`` that ``values`` holds is 0: nothing would train."""
    given = {k: values[k] for k in names if k in values}
    if given and not any(v > 0 for v in given.values()):
        raise ValueError(f"model.{'/'.join(given)}: every loss weight is 0, so nothing would train; "
                         f"set at least one above 0")

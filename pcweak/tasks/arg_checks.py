"""Range checks of the tasks' settings (``model.init_args``), made where they enter: each task's
constructor (the Python API) and the training CLI's parse, before the data, the trainer or the
optimizer is built. Without them a negative learning rate ended in the optimizer's "Invalid
learning rate" after the trainer had started, an empty ``data.feature_names`` in a division by
zero inside the network, and a negative loss weight trained by gradient ascent without a word."""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from ..params import COUNT0_RANGE, COUNT_RANGE, Range


class Each(NamedTuple):
    """A setting that is a non-empty list or tuple, every element within ``range``."""
    range: Range


Rule = Range | Each

POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
SCORE = Range(0, 1)
IOU = Range(0, 1, low_open=True)
COUNT = COUNT_RANGE
COUNT0 = COUNT0_RANGE
CHANNELS = Each(COUNT)
POSITIVE_EACH = Each(POSITIVE)

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
    for key, rule in rules.items():
        if key not in values:
            continue
        v = values[key]
        if isinstance(rule, Each):
            ok = isinstance(v, (list, tuple)) and len(v) > 0 and rule.range.admits(v)
            want = f"a non-empty list, each {rule.range.text()}"
        else:
            ok, want = rule.holds(v), rule.text()
        if not ok:
            raise ValueError(f"model.{key}: expected {want}, got {v!r}{HINTS.get(key, '')}")


def check_some_loss(values: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """ValueError when every loss weight of ``names`` that ``values`` holds is 0: nothing would train."""
    given = {k: values[k] for k in names if k in values}
    if given and not any(v > 0 for v in given.values()):
        raise ValueError(f"model.{'/'.join(given)}: every loss weight is 0, so nothing would train; "
                         f"set at least one above 0")

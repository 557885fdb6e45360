"""The ranges of the weak-label simulators' numeric settings, in one table: each simulator
checks its own on entry, and ``pcweak simulate`` checks them before it reads the scene."""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

INF = math.inf


class Range(NamedTuple):
    """A setting's allowed values: finite numbers from ``low`` (excluded when ``low_open``) to
    ``high``, integers only when ``integer``."""
    low: float
    high: float = INF
    integer: bool = False
    low_open: bool = False

    def text(self) -> str:
        what = "an integer" if self.integer else "a number"
        if self.high == INF:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        return f"{what} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"

    def holds(self, value: Any) -> bool:
        kinds = (int, np.integer) if self.integer else (int, float, np.integer, np.floating)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(float(value)):
            return False
        v = float(value)
        return (v > self.low if self.low_open else v >= self.low) and v <= self.high


COUNT = Range(1, integer=True)

# simulator -> setting -> its range; units as the simulators' docstrings give them
SETTING_RANGES: dict[str, dict[str, Range]] = {
    "points": {"count": COUNT, "ratio": Range(0, 1, low_open=True)},
    "clicks": {"per_instance": COUNT, "interior_quantile": Range(0, 1)},
    "clusters": {"min_points": COUNT},
    "boxes": {"noise": Range(0), "min_points": COUNT},
    "boxes2d": {"noise_px": Range(0), "min_size_px": Range(0)},
    "masks2d": {"erosion": Range(0, integer=True), "merge_prob": Range(0, 1), "split_prob": Range(0, 1),
                "drop_prob": Range(0, 1), "min_pixels": Range(0, integer=True), "max_dist": Range(0, low_open=True)},
    "tags": {"min_points": COUNT},
}


def check_settings(kind: str, **settings: Any) -> None:
    """Raise ValueError naming the simulator ``kind`` and the setting unless each of
    ``settings`` that ``SETTING_RANGES[kind]`` bounds lies in its range (None passes: not
    given). A mistyped noise or chance never yields labels silently."""
    for name, value in settings.items():
        bound = SETTING_RANGES.get(kind, {}).get(name)
        if bound is not None and value is not None and not bound.holds(value):
            raise ValueError(f"{kind}: {name} must be {bound.text()}, got {value!r}")

"""The ranges of the weak-label simulators' numeric settings, in one table: each simulator
checks its own on entry, and ``pcweak simulate`` checks them before it reads the scene."""
from __future__ import annotations

from typing import Any

from ..params import COUNT_RANGE as COUNT, Range

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

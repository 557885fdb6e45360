"""Labellers: weak labels -> dense ``PseudoLabels``."""
from .propagate import nearest_seed, propagate
from .superpoints import felzenszwalb, scene_superpoints

__all__ = ["propagate", "nearest_seed", "felzenszwalb", "scene_superpoints"]

"""Labellers: weak labels -> dense ``PseudoLabels``."""
from .propagate import nearest_seed, propagate
from ..segment.superpoints import felzenszwalb, scene_superpoints

__all__ = ["propagate", "nearest_seed", "felzenszwalb", "scene_superpoints"]

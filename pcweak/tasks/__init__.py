"""LightningModules: semantic segmentation from weak labels."""
from .semantic import SemanticSegmentation

__all__ = ["SemanticSegmentation"]

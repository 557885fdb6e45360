"""LightningModules: semantic and instance segmentation from weak labels."""
from .instance import InstanceSegmentation
from .semantic import SemanticSegmentation

__all__ = ["SemanticSegmentation", "InstanceSegmentation"]

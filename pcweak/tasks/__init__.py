"""LightningModules: semantic and instance segmentation, and 3D detection, from weak labels."""
from .detection import Detection
from .instance import InstanceSegmentation
from .semantic import SemanticSegmentation

__all__ = ["SemanticSegmentation", "InstanceSegmentation", "Detection"]

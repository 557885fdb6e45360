"""Benchmark metrics: semantic mIoU, ScanNet instance AP, calibration (ECE)."""
from .calibration import expected_calibration_error
from .instance import MatchedInstances, SceneInstances, from_labels, instance_ap, match_instances
from .semantic import confusion, iou_from_confusion, semantic_report

__all__ = ["confusion", "iou_from_confusion", "semantic_report", "instance_ap", "from_labels", "SceneInstances",
           "MatchedInstances", "match_instances", "expected_calibration_error"]

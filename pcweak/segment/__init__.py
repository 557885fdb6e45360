"""Partitions and point descriptors used by readers and labellers alike: ``superpoints`` (the l0
partition, Felzenszwalb-Huttenlocher superpoints on a kNN graph, ScanNet's mesh segmentator),
normals, shape features, FPFH, and the structure (walls, floor) inside boxes."""
from .superpoints import estimate_normals, felzenszwalb, knn_graph, mesh_segments, scene_superpoints, superpoint_hierarchy, superpoints

__all__ = ["estimate_normals", "felzenszwalb", "knn_graph", "mesh_segments", "scene_superpoints", "superpoint_hierarchy", "superpoints"]

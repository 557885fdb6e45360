"""Open3D geometry for layers: coloured clouds, seed spheres, box line sets."""
from __future__ import annotations

import numpy as np

from ..open3d_lib import open3d as o3d

# The material the clouds are drawn with: flat, each point its own colour. Open3D's
# "defaultUnlit" draws the same pixels on Debian 12's software Vulkan (Mesa 22, lavapipe) but
# every point black on Debian 13's (Mesa 25), where "unlitPolygonOffset" is right on both.
POINT_SHADER = "unlitPolygonOffset"


def cloud(coord: np.ndarray, colors: np.ndarray):
    o = o3d()
    pcd = o.geometry.PointCloud(o.utility.Vector3dVector(coord.astype(np.float64)))
    pcd.colors = o.utility.Vector3dVector(colors.astype(np.float64) / 255.0)
    return pcd


def spheres(centres: np.ndarray, colors: np.ndarray, radius: float):
    """One mesh of small spheres (seed points), vertex-coloured."""
    o = o3d()
    base = o.geometry.TriangleMesh.create_sphere(radius=radius, resolution=6)
    v0, f0 = np.asarray(base.vertices), np.asarray(base.triangles)
    n = len(centres)
    V = (v0[None] + centres[:, None, :]).reshape(-1, 3)
    F = (f0[None] + (np.arange(n) * len(v0))[:, None, None]).reshape(-1, 3)
    mesh = o.geometry.TriangleMesh(o.utility.Vector3dVector(V), o.utility.Vector3iVector(F))
    mesh.vertex_colors = o.utility.Vector3dVector(np.repeat(colors.astype(np.float64) / 255.0, len(v0), axis=0))
    return mesh


def box_lines(boxes: np.ndarray, colors: np.ndarray):
    """Line set of the 12 edges of every box, coloured per box."""
    from pcweak.geometry import box_corners
    o = o3d()
    c = box_corners(boxes).reshape(-1, 3)
    e = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]])
    lines = (e[None] + (np.arange(len(boxes)) * 8)[:, None, None]).reshape(-1, 2)
    ls = o.geometry.LineSet(o.utility.Vector3dVector(c), o.utility.Vector2iVector(lines))
    ls.colors = o.utility.Vector3dVector(np.repeat(colors.astype(np.float64) / 255.0, 12, axis=0))
    return ls

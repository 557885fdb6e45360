"""Interactive inspection: an Open3D O3DVisualizer window with one toggleable geometry per layer
(RGB, GT, pseudo-labels, instances, confidence heat-map, error, seed spheres, GT / pseudo / weak
boxes) and the class legend as 3D labels. Needs a display."""
from __future__ import annotations

import os

import numpy as np

from .geometry import box_lines, cloud, o3d, spheres
from .layers import build_layers


def show(scene, pseudo=None, weak=None, color_by: str | None = None, point_size: int = 3) -> None:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RuntimeError("no display: use --png out.png for a headless render")
    o = o3d()
    L = build_layers(scene, pseudo, weak)
    gui = o.visualization.gui
    app = gui.Application.instance
    app.initialize()
    w = o.visualization.O3DVisualizer(f"pcweak — {scene.name}", 1400, 900)
    w.point_size = point_size
    first = color_by if color_by in L.point_layers else ("semantic" if "semantic" in L.point_layers else next(iter(L.point_layers)))
    for name, colors in L.point_layers.items():
        w.add_geometry(name, cloud(L.coord, colors), is_visible=(name == first))
    ext = float(np.linalg.norm(L.coord.max(0) - L.coord.min(0)))
    if L.seeds is not None and len(L.seeds):
        w.add_geometry("seeds", spheres(L.coord[L.seeds], L.seed_colors, 0.006 * ext))
    for bname, (b, bc) in L.boxes.items():
        w.add_geometry(bname, box_lines(b, bc))
    top = L.coord.max(0)
    for k, (cname, _) in enumerate(L.legend):
        w.add_3d_label((top + np.array([0.0, 0.0, 0.15 * (k + 1)])).tolist(), cname)
    w.show_settings = True
    w.reset_camera_to_default()
    app.add_window(w)
    app.run()

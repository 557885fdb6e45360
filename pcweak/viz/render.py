"""Headless PNG rendering with Open3D's OffscreenRenderer (EGL/Vulkan; llvmpipe works).

The image is a grid: one row per view (orbiting the scene), one column per panel (by default
GT | pseudo-labels | error when both exist), panel titles on top and a class legend on the
right. Written atomically."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from . import colors as C
from .geometry import box_lines, cloud, o3d, spheres
from .layers import Layers, build_layers

PANEL_TITLES = {"gt": "ground truth", "semantic": "pseudo-labels", "error": "error (red = pseudo != GT)",
                "instance": "pseudo instances", "confidence": "confidence", "rgb": "colour", "gt instance": "GT instances"}


class RenderError(RuntimeError):
    """The offscreen renderer cannot start on this machine."""


def default_panels(L: Layers, color_by: str | None) -> list[str]:
    if color_by:
        key = {"semantic": "semantic", "instance": "instance", "confidence": "confidence", "error": "error", "rgb": "rgb"}[color_by]
        if key not in L.point_layers:
            key = "gt" if color_by == "semantic" and "gt" in L.point_layers else key
        if key not in L.point_layers:
            raise ValueError(f"--color-by {color_by}: not available (needs {'--pseudo and GT labels' if key == 'error' else '--pseudo' if key != 'rgb' else 'colours'})")
        return [key]
    if "semantic" in L.point_layers and "gt" in L.point_layers:
        return ["gt", "semantic", "error"]
    for k in ("semantic", "gt", "rgb"):
        if k in L.point_layers:
            return [k]
    return [next(iter(L.point_layers))] if L.point_layers else []


def _camera(coord: np.ndarray, view: int, views: int):
    lo, hi = coord.min(0), coord.max(0)
    centre = (lo + hi) / 2
    ext = float(np.linalg.norm(hi - lo))
    az = 2 * np.pi * view / max(views, 1) + np.pi / 4
    el = np.radians(50 if views > 1 else 60)
    eye = centre + ext * 1.0 * np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
    return centre, eye


def render_views(L: Layers, panels: list[str], views: int, size: tuple[int, int], point_size: float) -> np.ndarray:
    """(views*H, panels*W, 3) uint8 grid."""
    o = o3d()
    w, h = size
    try:
        r = o.visualization.rendering.OffscreenRenderer(w, h)
    except Exception as e:
        raise RenderError(f"Open3D's offscreen renderer cannot start here ({e}); install libvulkan1 and mesa-vulkan-drivers (scripts/setup.sh does)") from e
    r.scene.set_background([1, 1, 1, 1])
    r.scene.view.set_post_processing(False)  # exact class colours, no tone mapping
    mat = o.visualization.rendering.MaterialRecord()
    mat.shader = "defaultUnlit"
    mat.point_size = point_size
    lmat = o.visualization.rendering.MaterialRecord()
    lmat.shader = "unlitLine"
    lmat.line_width = 2.0
    ext = float(np.linalg.norm(L.coord.max(0) - L.coord.min(0)))
    grid = np.zeros((views * h, len(panels) * w, 3), np.uint8)
    for j, name in enumerate(panels):
        r.scene.clear_geometry()
        r.scene.add_geometry("points", cloud(L.coord, L.point_layers[name]), mat)
        if name in ("gt", "semantic", "instance") and L.seeds is not None and len(L.seeds):
            r.scene.add_geometry("seeds", spheres(L.coord[L.seeds], L.seed_colors, radius=0.006 * ext), mat)
        for bname, (b, bc) in L.boxes.items():
            if (name == "gt" and bname == "gt boxes") or (name != "gt" and bname != "gt boxes"):
                r.scene.add_geometry(bname, box_lines(b, bc), lmat)
        for i in range(views):
            centre, eye = _camera(L.coord, i, views)
            r.setup_camera(55.0, centre.tolist(), eye.tolist(), [0.0, 0.0, 1.0])
            grid[i * h:(i + 1) * h, j * w:(j + 1) * w] = np.asarray(r.render_to_image())[:, :, :3]
    return grid


def compose(grid: np.ndarray, panels: list[str], legend: list[tuple[str, tuple[int, int, int]]], panel_w: int) -> "Image":
    from PIL import Image, ImageDraw
    title_h, row_h = 22, 18
    leg_w = 190 if legend else 0
    H = max(grid.shape[0] + title_h, title_h + row_h * (len(legend) + 2))
    img = Image.new("RGB", (grid.shape[1] + leg_w, H), (255, 255, 255))
    img.paste(Image.fromarray(grid), (0, title_h))
    d = ImageDraw.Draw(img)
    for j, name in enumerate(panels):
        d.text((j * panel_w + 6, 4), PANEL_TITLES.get(name, name), fill=(0, 0, 0))
    if legend:
        x0 = grid.shape[1] + 10
        d.text((x0, 4), "classes", fill=(0, 0, 0))
        for k, (cname, col) in enumerate(legend):
            y = title_h + k * row_h
            d.rectangle([x0, y + 2, x0 + 14, y + 14], fill=tuple(col))
            d.text((x0 + 20, y + 2), cname, fill=(0, 0, 0))
    return img


def render_png(scene, out: str | Path, pseudo=None, weak=None, color_by: str | None = None, views: int = 4,
               size: tuple[int, int] = (480, 360), point_size: float = 3.0) -> Path:
    """Render ``scene`` (with optional pseudo and weak labels) headless into ``out`` (PNG)."""
    from pcweak.npzio import atomic_write_bytes
    L = build_layers(scene, pseudo, weak)
    panels = default_panels(L, color_by)
    if not panels:
        raise ValueError(f"scene {scene.name!r}: nothing to colour by (no colours, labels or pseudo-labels)")
    grid = render_views(L, panels, max(1, int(views)), size, point_size)
    img = compose(grid, panels, L.legend, size[0])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return atomic_write_bytes(out, buf.getvalue())

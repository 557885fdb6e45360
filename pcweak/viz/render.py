"""Headless PNG rendering with Open3D's OffscreenRenderer (EGL/Vulkan; llvmpipe works).

The image is a grid: one row per view (orbiting the scene, the camera far enough back that the
whole cloud fits), one column per panel (by default GT | pseudo-labels | error when both exist),
panel titles on top and a legend on the right naming every colour shown (classes, no label,
error / correct, seed markers, box outlines). Seed points are large black-ringed markers on every
panel (depth-tested against the rendered scene). A LiDAR frame is drawn from above instead (x
forward up the picture, 45 m ahead and 30 m to each side, orthographic, so a car at 30 m is a
clear rectangle with its box outline), with the camera image and the projected boxes below when
the frame has one. Written atomically."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from . import colors as C
from ..geometry import column_bounds
from ..open3d_lib import held_lines, native_output_held, open3d as o3d
from .geometry import POINT_SHADER, box_lines, cloud
from .layers import LAYER_FALLBACK, Layers, build_layers

PANEL_TITLES = {"gt": "ground truth", "semantic": "pseudo-labels", "error": "error (red = pseudo != GT)",
                "instance": "pseudo instances", "confidence": "confidence", "rgb": "colour", "gt instance": "GT instances",
                "segment": "scene segments", "superpoint": "pseudo-label cells (superpoints)"}


class RenderError(RuntimeError):
    """The offscreen renderer cannot start on this machine."""


# what each --color-by needs; "semantic" shows GT without --pseudo, "superpoint" the scene's own
# segments without a pseudo-label file that holds its cells
COLOR_BY_NEEDS = {"semantic": "--pseudo or GT labels", "instance": "--pseudo", "confidence": "--pseudo",
                  "error": "--pseudo and GT labels", "rgb": "colours or intensity",
                  "superpoint": "--pseudo made by propagation (its cells, extras['superpoint']) or a scene with its own segments"}


def default_panels(L: Layers, color_by: str | None) -> list[str]:
    if color_by:
        key = color_by
        fallback = LAYER_FALLBACK.get(color_by)
        if key not in L.point_layers and fallback in L.point_layers:
            key = fallback
        if key not in L.point_layers:
            raise ValueError(f"--color-by {color_by}: not available (needs {COLOR_BY_NEEDS[color_by]})")
        return [key]
    if "semantic" in L.point_layers and "gt" in L.point_layers:
        return ["gt", "semantic", "error"]
    for k in ("semantic", "gt", "rgb"):
        if k in L.point_layers:
            return [k]
    return [next(iter(L.point_layers))] if L.point_layers else []


FOV_DEG = 55.0
MAX_VIEWS = 36  # orbit views 10 degrees apart: more show nothing new, and each row is a panel's height
# metres the LiDAR bird's-eye view shows at least (bev_reach): behind and ahead of the sensor and to
# either side; ahead and behind a scan without a camera
BEV_BEHIND, BEV_AHEAD, BEV_HALF_WIDTH, BEV_AROUND = 2.0, 43.0, 30.0, 22.5


def bounds_diagonal(coord: np.ndarray) -> float:
    """The diagonal of the (N,3) cloud's bounding box, in its units: the scale of seed markers."""
    lo, hi = column_bounds(coord)
    return float(np.linalg.norm(hi - lo))


def _fit_distance(radius: float) -> float:
    """How far from a sphere of ``radius`` the eye must stand for it to fit the vertical field of
    view (the narrower one in a landscape panel), with a 4 % margin."""
    return 1.04 * radius / np.sin(np.radians(FOV_DEG) / 2)


def orbit_camera(coord: np.ndarray, view: int, views: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre and eye of orbit view ``view``: the eye far enough back that the bounding sphere
    of the cloud fits the vertical field of view."""
    lo, hi = column_bounds(coord)
    centre = (lo + hi) / 2
    dist = _fit_distance(0.5 * float(np.linalg.norm(hi - lo)))
    az = 2 * np.pi * view / max(views, 1) + np.pi / 4
    el = np.radians(50 if views > 1 else 60)
    return centre, centre + dist * np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])


def bev_reach(boxes: list[np.ndarray], seeds: np.ndarray | None = None, around: bool = False) -> tuple[float, float, float]:
    """The metres behind, ahead and to either side of the sensor that a LiDAR top view shows.
    A frame seen by a camera (KITTI: its objects are labelled in the camera's view) is drawn
    ahead: ``BEV_BEHIND``, ``BEV_AHEAD``, ``BEV_HALF_WIDTH``, or farther where a box's footprint
    ((M,7) LiDAR-frame boxes, any layer) or a seed point ((K,3)) lies beyond them (KITTI scores
    objects 70 m ahead), with 3 m to spare. A scan without a camera (``around``: SemanticKITTI,
    labelled all around) is drawn centred on the sensor, ``BEV_AROUND`` each way ahead and
    behind, farther only for boxes: its seeds lie anywhere in the scan, out to its last ring."""
    from pcweak.geometry import bev_corners
    behind, ahead = (BEV_AROUND, BEV_AROUND) if around else (BEV_BEHIND, BEV_AHEAD)
    xy = [bev_corners(box) for b in boxes for box in np.asarray(b, np.float64).reshape(-1, 7)]
    if seeds is not None and len(seeds) and not around:
        xy.append(np.asarray(seeds, np.float64)[:, :2])
    if not xy:
        return behind, ahead, BEV_HALF_WIDTH
    pts = np.concatenate(xy)
    return (max(behind, 3.0 - float(pts[:, 0].min())), max(ahead, float(pts[:, 0].max()) + 3.0),
            max(BEV_HALF_WIDTH, float(np.abs(pts[:, 1]).max()) + 3.0))


def layers_reach(L: Layers) -> tuple[float, float, float]:
    """``bev_reach`` of a LiDAR frame's layers (every box layer and the seed points): the one
    scale of its top-view panels, and the region the window shows first (``lidar_camera``)."""
    seeds = L.seed_points
    return bev_reach([b for b, _ in L.boxes.values()], None if seeds is None else seeds[0], L.around)


def lidar_camera(L: Layers, tilt_deg: float = 35.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, eye and up vector of the window's first view of a LiDAR frame: the ground region a
    top view draws (``layers_reach``) seen from above and behind, tilted ``tilt_deg`` from
    vertical, x forward up the picture, the eye far enough that the region's bounding sphere fits
    the vertical field of view. The whole sweep's bounding sphere
    (``orbit_camera``) reaches past 80 m, where cars would be a few pixels long."""
    behind, ahead, side = layers_reach(L)
    near = (L.coord[:, 0] >= -behind) & (L.coord[:, 0] <= ahead) & (np.abs(L.coord[:, 1]) <= side)
    ground = float(np.median(L.coord[near, 2])) if near.any() else 0.0
    centre = np.array([(ahead - behind) / 2, 0.0, ground])
    dist = _fit_distance(0.5 * float(np.hypot(ahead + behind, 2 * side)))
    t = np.radians(tilt_deg)
    return centre, centre + dist * np.array([-np.sin(t), 0.0, np.cos(t)]), np.array([1.0, 0.0, 0.0])


def bev_panel(coord: np.ndarray, colors: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray, int]], size: tuple[int, int],
              seeds: tuple[np.ndarray, np.ndarray] | None = None, reach: tuple[float, float, float] | None = None) -> np.ndarray:
    """(H,W,3) uint8 orthographic top view of a LiDAR frame, drawn directly: x forward up the
    picture, ``reach`` = (metres behind, ahead, to either side) of the sensor at least (default
    ``bev_reach`` of the boxes and seeds drawn), y to the left, points 2 px (the highest on
    top), box footprints as outlines with a heading tick, seed markers on top. ``boxes``:
    (boxes (M,7), colours (M,3), line width) per box layer."""
    from PIL import Image, ImageDraw
    from pcweak.geometry import bev_corners
    w, h = size
    behind, ahead, side = reach if reach is not None else bev_reach([b for b, _, _ in boxes], None if seeds is None else seeds[0])
    x0 = -behind
    scale = min(w / (2 * side), h / (ahead + behind))  # pixels per metre
    to_px = lambda xy: np.stack([w / 2 - xy[..., 1] * scale, h - (xy[..., 0] - x0) * scale], -1)  # noqa: E731
    img = np.full((h, w, 3), 255, np.uint8)
    uv = np.round(to_px(coord[:, :2])).astype(np.int64)
    order = np.argsort(coord[:, 2], kind="stable")
    for du in (0, 1):
        for dv in (0, 1):
            u, v = uv[order, 0] + du, uv[order, 1] + dv
            ok = (u >= 0) & (u < w) & (v >= 0) & (v < h)
            img[v[ok], u[ok]] = colors[order][ok]
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    for b, bc, width in boxes:
        for k in range(len(b)):
            bk = np.asarray(b[k], np.float64)
            c = to_px(bev_corners(bk))
            col = tuple(int(x) for x in bc[k])
            d.line([tuple(p) for p in np.vstack([c, c[:1]])], fill=col, width=width)
            front = to_px(bk[:2] + np.array([np.cos(bk[6]), np.sin(bk[6])]) * bk[3] / 2)
            d.line([tuple(to_px(bk[:2])), tuple(front)], fill=col, width=width)
    if seeds is not None:
        _markers(d, to_px(seeds[0][:, :2]), seeds[1])
    return np.asarray(im)


def _markers(d, uv: np.ndarray, colors: np.ndarray, radius: int = 5) -> None:
    """Seed markers: a black disc with the class colour inside."""
    for (u, v), col in zip(uv, colors):
        d.ellipse([u - radius, v - radius, u + radius, v + radius], fill=(0, 0, 0))
        d.ellipse([u - radius + 2, v - radius + 2, u + radius - 2, v + radius - 2], fill=tuple(int(x) for x in col))


def _visible_seeds(r, points: np.ndarray, size: tuple[int, int], tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions (K,2) of ``points`` in the renderer's current camera and whether each is
    in view and not hidden behind the rendered scene (depth test against the depth image)."""
    w, h = size
    V = np.asarray(r.scene.camera.get_view_matrix())
    P = np.asarray(r.scene.camera.get_projection_matrix())
    view = np.c_[points, np.ones(len(points))] @ V.T
    clip = view @ P.T
    with np.errstate(divide="ignore", invalid="ignore"):
        ndc = clip[:, :3] / clip[:, 3:4]
    uv = np.stack([(ndc[:, 0] + 1) / 2 * w, (1 - ndc[:, 1]) / 2 * h], 1)
    depth = np.asarray(r.render_to_depth_image(z_in_view_space=True))
    ok = np.isfinite(uv).all(1) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h) & (view[:, 2] < 0)
    iu = np.clip(np.nan_to_num(uv[:, 0]).astype(np.int64), 0, w - 1)
    iv = np.clip(np.nan_to_num(uv[:, 1]).astype(np.int64), 0, h - 1)
    scene_depth = depth[iv, iu]
    ok &= ~np.isfinite(scene_depth) | (-view[:, 2] <= scene_depth + tol)
    return uv, ok


def render_views(L: Layers, panels: list[str], views: int, size: tuple[int, int], point_size: float) -> np.ndarray:
    """(views*H, panels*W, 3) uint8 grid; a LiDAR frame gets one row of top views."""
    w, h = size
    seeds = L.seed_points
    if L.lidar:
        tiles = []
        reach = layers_reach(L)  # one scale for all
        for name in panels:
            boxes = [(b, bc, 3 if bname == "gt boxes" else 2) for bname, (b, bc) in L.boxes.items()
                     if (name == "gt") == (bname == "gt boxes")]
            tiles.append(bev_panel(L.coord, L.point_layers[name], boxes, size, seeds, reach))
        return np.concatenate(tiles, 1)
    from PIL import Image, ImageDraw
    o = o3d()
    with native_output_held() as engine_report:  # the engine's start-up lines, shown only if it fails
        try:
            r = o.visualization.rendering.OffscreenRenderer(w, h)
        except Exception as e:
            failure = e
        else:
            failure = None
    if failure is not None:
        raise RenderError(f"Open3D's offscreen renderer cannot start here ({failure}); install libvulkan1 and "
                          f"mesa-vulkan-drivers (scripts/setup.sh does)" + held_lines(engine_report, "; the renderer said: ")
                          ) from failure
    r.scene.set_background([1, 1, 1, 1])
    r.scene.view.set_post_processing(False)  # exact class colours, no tone mapping
    R = o.visualization.rendering
    mat = R.MaterialRecord()
    mat.shader = POINT_SHADER
    mat.point_size = point_size
    lmat = R.MaterialRecord()
    lmat.shader = "unlitLine"
    lmat.line_width = 2.0
    ext = bounds_diagonal(L.coord)
    grid = np.zeros((views * h, len(panels) * w, 3), np.uint8)
    seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # view -> seed pixels, visible (the same on every panel)
    for j, name in enumerate(panels):
        r.scene.clear_geometry()
        r.scene.add_geometry("points", cloud(L.coord, L.point_layers[name]), mat)
        for bname, (b, bc) in L.boxes.items():
            if (name == "gt" and bname == "gt boxes") or (name != "gt" and bname != "gt boxes"):
                r.scene.add_geometry(bname, box_lines(b, bc), lmat)
        for i in range(views):
            centre, eye = orbit_camera(L.coord, i, views)
            r.setup_camera(FOV_DEG, centre.tolist(), eye.tolist(), [0.0, 0.0, 1.0])
            tile = np.asarray(r.render_to_image())[:, :, :3]
            if seeds is not None:
                if i not in seen:
                    seen[i] = _visible_seeds(r, seeds[0].astype(np.float64), size, 0.01 * ext)
                uv, ok = seen[i]
                im = Image.fromarray(np.ascontiguousarray(tile))
                _markers(ImageDraw.Draw(im), uv[ok], seeds[1][ok], radius=max(4, int(1.6 * point_size)))
                tile = np.asarray(im)
            grid[i * h:(i + 1) * h, j * w:(j + 1) * w] = tile
    return grid


def camera_image_with_boxes(scene, L: Layers) -> np.ndarray | None:
    """The frame's first camera image with every box of ``L`` projected onto it (12 edges each,
    in its class colour; GT boxes drawn wider), or None without an image."""
    if not scene.frames or scene.frames[0].image is None:
        return None
    from PIL import Image, ImageDraw
    from pcweak.camera import project
    from pcweak.geometry import box_corners
    f = scene.frames[0]
    img = Image.fromarray(np.asarray(f.image)[:, :, :3].astype(np.uint8))
    d = ImageDraw.Draw(img)
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
    for bname, (boxes, colors) in L.boxes.items():
        if not len(boxes):
            continue
        uv, z = project(box_corners(boxes).reshape(-1, 3), f.intrinsics, f.pose)
        uv, z = uv.reshape(-1, 8, 2), z.reshape(-1, 8)
        for k in range(len(boxes)):
            for a, b in edges:
                if z[k, a] > 0.1 and z[k, b] > 0.1:
                    d.line([tuple(uv[k, a]), tuple(uv[k, b])], fill=tuple(int(v) for v in colors[k]), width=3 if bname == "gt boxes" else 2)
    return np.asarray(img)


def compose(grid: np.ndarray, panels: list[str], legend: list[tuple[str, tuple[int, int, int]]], panel_w: int,
            extra: list[tuple[str, tuple[int, int, int]]] = (), below: np.ndarray | None = None) -> "Image":
    from PIL import Image, ImageDraw
    title_h, row_h = 22, 18
    if below is not None:  # the camera image, scaled to the grid's width
        im = Image.fromarray(below)
        im = im.resize((grid.shape[1], max(1, round(im.height * grid.shape[1] / im.width))))
        grid = np.concatenate([grid, np.asarray(im)[:, :, :3]], 0)
    entries = list(legend) + ([("", None)] if legend and extra else []) + list(extra)
    leg_w = 250 if entries else 0
    H = max(grid.shape[0] + title_h, title_h + row_h * (len(entries) + 2))
    img = Image.new("RGB", (grid.shape[1] + leg_w, H), (255, 255, 255))
    img.paste(Image.fromarray(grid), (0, title_h))
    d = ImageDraw.Draw(img)
    for j, name in enumerate(panels):
        d.text((j * panel_w + 6, 4), PANEL_TITLES.get(name, name), fill=(0, 0, 0))
    if entries:
        x0 = grid.shape[1] + 10
        d.text((x0, 4), "legend", fill=(0, 0, 0))
        for k, (cname, col) in enumerate(entries):
            if col is None:
                continue
            y = title_h + k * row_h
            if cname.startswith("seed point"):
                d.ellipse([x0, y + 1, x0 + 14, y + 15], fill=(0, 0, 0))
                d.ellipse([x0 + 4, y + 5, x0 + 10, y + 11], fill=(200, 200, 200))
            elif "outline" in cname:
                d.rectangle([x0, y + 2, x0 + 14, y + 14], outline=(0, 0, 0), width=2)
            else:
                d.rectangle([x0, y + 2, x0 + 14, y + 14], fill=tuple(col))
            d.text((x0 + 20, y + 2), cname, fill=(0, 0, 0))
    return img


def check_png_output(out: str | Path, views: int | None = None) -> None:
    """Raise ValueError unless ``out`` names a ``.png`` file that is not a folder and ``views``
    (rows of the grid; None: the default) is an integer from 1 to ``MAX_VIEWS``: checked before a
    scene is read or drawn."""
    from pcweak.npzio import check_output_file
    from pcweak.params import COUNT_RANGE
    check_output_file(out, ".png", "--png")
    if views is not None and not (COUNT_RANGE.holds(views) and views <= MAX_VIEWS):
        raise ValueError(f"--views must be an integer in [1, {MAX_VIEWS}] (rows of views in the PNG, each "
                         f"{360 // MAX_VIEWS} degrees or more apart), got {views!r}")


def render_png(scene, out: str | Path, pseudo=None, weak=None, color_by: str | None = None, views: int = 4,
               size: tuple[int, int] = (480, 360), point_size: float = 3.0) -> Path:
    """Render ``scene`` (with optional pseudo and weak labels) headless into ``out`` (PNG):
    ``views`` rows of views (one row of top views for a LiDAR frame), a column per layer."""
    from pcweak.npzio import atomic_write_bytes
    check_png_output(out, views)
    L = build_layers(scene, pseudo, weak)
    panels = default_panels(L, color_by)
    if not panels:
        raise ValueError(f"scene {scene.name!r}: nothing to colour by (no colours, labels or pseudo-labels)")
    grid = render_views(L, panels, views, size, point_size)
    below = camera_image_with_boxes(scene, L) if L.lidar else None
    img = compose(grid, panels, L.legend, size[0], L.extra_legend, below)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return atomic_write_bytes(out, buf.getvalue())

"""Interactive inspection: an Open3D window with the cloud on the left and a side panel on the
right — one radio button per colour layer (RGB, GT, GT instances, the scene's own segments,
pseudo-labels, pseudo instances, confidence, error, and the cells propagation's labels are
uniform over: its superpoints, or their common refinement), a check box per overlay (seed spheres, GT / pseudo / weak boxes),
and the legend naming every colour shown. Keys do the same: ``1``-``9`` pick a colour layer,
``s`` / ``g`` / ``p`` / ``w`` toggle seeds / GT / pseudo / weak boxes, ``r`` resets the view,
``q`` or Esc closes. Needs a display (an X server; Xvfb works)."""
from __future__ import annotations

import os

import numpy as np

from . import colors as C
from ..open3d_lib import held_lines, native_output_held, open3d as o3d
from .geometry import POINT_SHADER, box_lines, cloud, spheres
from .layers import LAYER_FALLBACK, Layers, build_layers
from .render import FOV_DEG, bounds_diagonal, lidar_camera, orbit_camera

OVERLAY_KEYS = {"seeds": "s", "gt boxes": "g", "pseudo boxes": "p", "weak boxes": "w"}
TITLES = {"rgb": "RGB / intensity", "gt": "GT classes", "gt instance": "GT instances", "semantic": "pseudo-labels",
          "instance": "pseudo instances", "confidence": "confidence", "error": "error (pseudo vs GT)",
          "segment": "scene segments", "superpoint": "pseudo-label cells"}
PANEL_EM = 19  # side panel width in font heights


def first_layer(L: Layers, color_by: str | None) -> str:
    """The colour layer shown first: ``color_by`` if it exists, else the pseudo-labels, else GT."""
    for name in (color_by, LAYER_FALLBACK.get(color_by or ""), "semantic", "gt"):
        if name in L.point_layers:
            return name
    return next(iter(L.point_layers))


def legend_rows(L: Layers) -> list[tuple[str, tuple[int, int, int] | None]]:
    """(text, colour) rows of the window's legend: the classes shown, then every other colour
    (no label, error / correct, confidence scale, seeds, box outlines); ``None`` for a heading."""
    rows: list[tuple[str, tuple[int, int, int] | None]] = [("classes", None)] + list(L.legend)
    rows.append(("other colours", None))
    rows += [("seed: shaded sphere, class colour", rgb) if text.startswith("seed point") else (text, rgb)
             for text, rgb in L.extra_legend]
    if "confidence" in L.point_layers:
        lo, hi = C.heat(np.array([0.0, 1.0]))
        rows += [("confidence 0", tuple(int(v) for v in lo)), ("confidence 1", tuple(int(v) for v in hi))]
    return rows


def show(scene, pseudo=None, weak=None, color_by: str | None = None, point_size: int = 3) -> None:
    """Open the window and block until it is closed. Open3D's and Filament's start-up report
    (engine, backend, device, swapchain: nine lines on stdout) is held until the first frame is
    drawn and shown only in the error where the window cannot open; stderr, where a native
    abort says why, is left alone (``native_output_held``)."""
    display = check_display()
    gui = o3d().visualization.gui
    L = build_layers(scene, pseudo, weak)
    app = gui.Application.instance
    with native_output_held() as engine_report:
        try:
            app.initialize()
            if "headless" in engine_report.getvalue().lower():  # GLFW found no window system and Open3D went on without one
                raise RuntimeError("no window system answers there")
            win = app.create_window(f"pcweak — {scene.name}", 1400, 900)
        except Exception as e:
            failure = e
        else:
            failure = None
            _fill_window(win, L, color_by, point_size)
            app.run_one_tick()  # the first frame, whose swapchain is the report's last line
    if failure is not None:
        raise RuntimeError(f"Open3D's window cannot open on display {display} ({failure}); use --png out.png for a "
                           f"headless render" + held_lines(engine_report, "; the window said: ")) from failure
    app.run()


def check_display() -> str:
    """The display the window would open on (``$DISPLAY``, else ``$WAYLAND_DISPLAY``), checked
    before any work: none set, or an X display no server answers at (a stale ``DISPLAY``, an ssh
    session without X forwarding), is a RuntimeError saying so. Open3D itself would go on
    without a window there and wait for a close that never comes. Where libX11 cannot be loaded
    the X display is not checked (``show`` still refuses a window system Open3D cannot use)."""
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not display:
        raise RuntimeError("no display: use --png out.png for a headless render")
    if not os.environ.get("DISPLAY"):
        return display
    import ctypes
    try:
        x11 = ctypes.CDLL("libX11.so.6")
    except OSError:
        return display
    x11.XOpenDisplay.restype, x11.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(display.encode())
    if not handle:
        raise RuntimeError(f"DISPLAY={display}: no X server answers there (or it refuses this user); start one, "
                           f"fix DISPLAY (ssh -X forwards one), or use --png out.png for a headless render")
    x11.XCloseDisplay(handle)
    return display


def _fill_window(win, L: Layers, color_by: str | None, point_size: int) -> None:
    """The cloud's layers and overlays in a scene widget, the side panel, the keys and the first
    view of ``win``."""
    o = o3d()
    gui, R = o.visualization.gui, o.visualization.rendering
    em = win.theme.font_size

    widget = gui.SceneWidget()
    widget.scene = R.Open3DScene(win.renderer)
    widget.scene.set_background([1.0, 1.0, 1.0, 1.0])
    widget.scene.view.set_post_processing(False)  # exact class colours, no tone mapping
    pmat = R.MaterialRecord()
    pmat.shader, pmat.point_size = POINT_SHADER, float(point_size) * win.scaling
    lmat = R.MaterialRecord()
    lmat.shader, lmat.line_width = "unlitLine", 2.0 * win.scaling
    smat = R.MaterialRecord()
    smat.shader = "defaultLit"  # shaded spheres stand out from the flat-coloured points

    names = list(L.point_layers)
    shown = first_layer(L, color_by)
    for name, colors in L.point_layers.items():
        widget.scene.add_geometry(name, cloud(L.coord, colors), pmat)
        widget.scene.show_geometry(name, name == shown)
    ext = bounds_diagonal(L.coord)
    overlays: list[str] = []
    seeds = L.seed_points
    if seeds is not None:
        balls = spheres(*seeds, 0.008 * ext)
        balls.compute_vertex_normals()  # a lit mesh needs normals (without them the Vulkan view stays black)
        widget.scene.add_geometry("seeds", balls, smat)
        overlays.append("seeds")
    for bname, (b, bc) in L.boxes.items():
        widget.scene.add_geometry(bname, box_lines(b, bc), lmat)
        overlays.append(bname)

    def reset_view() -> None:  # a room from above at an angle; a LiDAR frame where its boxes and seeds lie
        widget.setup_camera(FOV_DEG, widget.scene.bounding_box, widget.scene.bounding_box.get_center())
        centre, eye, up = lidar_camera(L) if L.lidar else (*orbit_camera(L.coord, 0, 1), np.array([0.0, 0.0, 1.0]))
        widget.look_at(centre.tolist(), eye.tolist(), up.tolist())

    panel = gui.ScrollableVert(0.25 * em, gui.Margins(0.5 * em, 0.5 * em, 0.5 * em, 0.5 * em))
    panel.add_child(gui.Label("Colour by  (keys 1-9)"))
    radio = gui.RadioButton(gui.RadioButton.VERT)
    radio.set_items([f"{k + 1}  {TITLES.get(n, n)}" if k < 9 else TITLES.get(n, n) for k, n in enumerate(names)])
    radio.selected_index = names.index(shown)

    def pick(index: int) -> None:
        for k, n in enumerate(names):
            widget.scene.show_geometry(n, k == index)
        radio.selected_index = index
        widget.force_redraw()

    def show_overlay(name: str, on: bool) -> None:
        checkboxes[name].checked = on
        widget.scene.show_geometry(name, on)
        widget.force_redraw()

    radio.set_on_selection_changed(lambda _value, index: pick(index))
    panel.add_child(radio)
    checkboxes = {}
    if overlays:
        panel.add_fixed(0.5 * em)
        panel.add_child(gui.Label("Overlays"))
        for name in overlays:
            cb = gui.Checkbox(f"{OVERLAY_KEYS.get(name, ' ')}  {name}")
            cb.checked = True
            cb.set_on_checked(lambda on, name=name: show_overlay(name, on))
            panel.add_child(cb)
            checkboxes[name] = cb
    panel.add_fixed(0.5 * em)
    panel.add_child(gui.Label("Legend"))
    for text, rgb in legend_rows(L):
        if rgb is None:
            panel.add_child(gui.Label(text))
            continue
        row = gui.Horiz(0.5 * em)
        swatch = gui.Button("    ")  # a Label's background is not drawn; a Button's is
        swatch.horizontal_padding_em, swatch.vertical_padding_em = 0.2, 0.0
        swatch.background_color = gui.Color(*(v / 255.0 for v in rgb))
        row.add_child(swatch)
        row.add_child(gui.Label(text))
        panel.add_child(row)
    panel.add_fixed(0.5 * em)
    panel.add_child(gui.Label("r  reset view    q  close"))

    def on_key(event) -> bool:
        if event.type != gui.KeyEvent.Type.DOWN:
            return False
        key = int(event.key)
        if int(gui.KeyName.ONE) <= key <= int(gui.KeyName.NINE) and key - int(gui.KeyName.ONE) < len(names):
            pick(key - int(gui.KeyName.ONE))
            return True
        for name, letter in OVERLAY_KEYS.items():
            if name in checkboxes and key == ord(letter):
                show_overlay(name, not checkboxes[name].checked)
                return True
        if key == ord("r"):
            reset_view()
            return True
        if key in (ord("q"), int(gui.KeyName.ESCAPE)):
            win.close()
            return True
        return False

    def on_layout(_ctx) -> None:
        r = win.content_rect
        width = int(min(PANEL_EM * em, r.width // 2))
        widget.frame = gui.Rect(r.x, r.y, r.width - width, r.height)
        panel.frame = gui.Rect(r.get_right() - width, r.y, width, r.height)

    win.set_on_layout(on_layout)
    win.set_on_key(on_key)
    win.add_child(widget)
    win.add_child(panel)
    reset_view()

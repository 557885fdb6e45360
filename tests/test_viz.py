"""Headless renders asserted on pixels; skipped only where the renderer truly cannot start."""
import numpy as np
import pytest
from PIL import Image

from pcweak import PseudoLabels, weak
from pcweak.cli import main

SIZE = (240, 180)
TITLE_H = 22


def _render(scene, path, **kw):
    from pcweak.viz.render import RenderError, render_png
    try:
        return render_png(scene, path, size=SIZE, views=1, **kw)
    except RenderError as e:
        pytest.skip(f"offscreen renderer unavailable: {e}")


def _panel(img: np.ndarray, j: int) -> np.ndarray:
    return img[TITLE_H:TITLE_H + SIZE[1], j * SIZE[0]:(j + 1) * SIZE[0]]


def _has(panel: np.ndarray, color) -> int:
    return int((panel == np.array(color, np.uint8)).all(-1).sum())


def test_gt_pseudo_error_panels(tmp_path, room):
    from pcweak.viz.colors import CORRECT, ERROR, SCANNET20_COLORS
    same = PseudoLabels(semantic=room.semantic, instance=room.instance, classes=room.classes)
    img = np.asarray(Image.open(_render(room, tmp_path / "a.png", pseudo=same)))[:, :, :3]
    assert img.shape[1] > 3 * SIZE[0]  # three panels and a legend
    gt, ps, err = (_panel(img, j) for j in range(3))
    assert ((gt != 255).any(-1)).mean() > 0.2  # the scene covers the view
    # every class with enough visible points shows in its ScanNet colour
    big = [c for c in np.unique(room.semantic) if (room.semantic == c).sum() > 1500]
    for c in big:
        assert _has(gt, SCANNET20_COLORS[c]) > 0, room.classes[c]
    assert (gt != ps).any(-1).mean() < 0.01  # identical labels render identically (GT panel adds box lines)
    assert _has(err, ERROR) == 0 and _has(err, CORRECT) > 1000  # no red without differences
    # relabel the floor: red appears exactly where labels differ
    sem = room.semantic.copy()
    floor = room.classes.index("floor")
    sem[room.semantic == floor] = room.classes.index("wall")
    diff = PseudoLabels(semantic=sem, classes=room.classes)
    img2 = np.asarray(Image.open(_render(room, tmp_path / "b.png", pseudo=diff)))[:, :, :3]
    err2 = _panel(img2, 2)
    floor_px = _has(_panel(img2, 0), SCANNET20_COLORS[floor])
    assert _has(err2, ERROR) > 0.5 * floor_px > 0
    assert _has(_panel(img2, 1), SCANNET20_COLORS[floor]) == 0


def test_the_renderers_start_up_report_stays_off_the_terminal(tmp_path, room, capfd):
    """Open3D's renderer writes about nine lines from native code as it starts (GLFW, Filament,
    the Vulkan device); a headless render prints none of them."""
    _render(room, tmp_path / "a.png")
    out, err = capfd.readouterr()
    assert "FEngine" not in out + err and "[Open3D" not in out + err, out + err


def test_a_renderer_that_cannot_start_says_what_it_printed(tmp_path, room, monkeypatch, capfd):
    """Where the renderer fails, its own last lines on stdout join the error (the set-up's
    packages named); what it writes to stderr is not held."""
    import os

    import open3d
    from pcweak.viz.render import RenderError, render_png

    def fails(w, h):
        os.write(1, b"[Open3D WARNING] EngineInstance: Vulkan context init failed\n")
        os.write(2, b"on stderr\n")
        raise RuntimeError("no device")
    monkeypatch.setattr(open3d.visualization.rendering, "OffscreenRenderer", fails)
    with pytest.raises(RenderError, match=r"cannot start here \(no device\); install libvulkan1 and mesa-vulkan-drivers "
                                          r"\(scripts/setup.sh does\); the renderer said: \[Open3D WARNING\] "
                                          r"EngineInstance: Vulkan context init failed$"):
        render_png(room, tmp_path / "a.png", size=SIZE, views=1)
    assert capfd.readouterr().err == "on stderr\n"


def test_a_renderer_that_aborts_the_process_leaves_its_reason_on_stderr(tmp_path):
    """Filament without a Vulkan device aborts the process from native code, where no Python
    runs after it: its reason must reach stderr, not a held buffer."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "VK_ICD_FILENAMES": str(tmp_path / "no-driver.json")}  # no Vulkan driver at all
    run = subprocess.run([sys.executable, "-m", "pcweak.cli", "viz", "synthetic:0", "--png", str(tmp_path / "v.png"),
                          "--views", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "Vulkan" in run.stderr, (run.returncode, run.stdout[-2000:], run.stderr[-2000:])


def test_the_window_refuses_a_display_nobody_answers_at(tmp_path, room, monkeypatch, capsys):
    """A stale DISPLAY (an ssh session without X forwarding): Open3D would fall back to running
    without a window and wait forever for it to close; pcweak says so before reading the scene."""
    import os
    room.save(tmp_path / "r.npz")
    free = next(n for n in range(950, 1000) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    monkeypatch.setenv("DISPLAY", f":{free}")
    assert main(["viz", f"npz:{tmp_path / 'r.npz'}"]) == 2
    err = capsys.readouterr().err
    assert f":{free}" in err and "use --png out.png for a headless render" in err, err


def test_the_window_refuses_a_window_system_open3d_cannot_use(tmp_path):
    """Only WAYLAND_DISPLAY set (Open3D's GLFW speaks X11): the window cannot open, and the error
    carries Open3D's own line instead of a process that waits with no window."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"} | {"WAYLAND_DISPLAY": "wayland-pcweak-test"}
    run = subprocess.run([sys.executable, "-m", "pcweak.cli", "viz", "synthetic:0"], env=env, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 2, (run.returncode, run.stdout[-2000:], run.stderr[-2000:])
    assert "window cannot open on display wayland-pcweak-test" in run.stderr and "headless" in run.stderr, run.stderr
    assert "\x1b[" not in run.stderr and "FEngine" not in run.stdout + run.stderr


def _projected(points: np.ndarray, centre, eye, up, aspect: float = 1096 / 900) -> np.ndarray:
    """(N,2) points in a pinhole picture of vertical field FOV_DEG: x right, y up, the frame's
    edges at -1 and 1 (the window's cloud pane is about 1096 x 900)."""
    from pcweak.viz.render import FOV_DEG
    f = (np.asarray(centre) - eye) / np.linalg.norm(np.asarray(centre) - eye)
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    d = points - eye
    z, t = d @ f, np.tan(np.radians(FOV_DEG) / 2)
    return np.stack([(d @ r) / (z * t * aspect), (d @ np.cross(r, f)) / (z * t)], 1)


def test_the_window_opens_a_lidar_frame_where_its_objects_are(lidar):
    """The window's first view of a LiDAR frame frames what the top-view PNG draws (every box and
    the ground the top view covers in the picture, forward up it; all around the sensor for a scan
    without a camera), and its cars look about twice as large (at least 1.5x) as from the whole
    sweep's bounding sphere, which reaches past 80 m."""
    import dataclasses

    from pcweak.geometry import box_corners
    from pcweak.viz.layers import build_layers
    from pcweak.viz.render import layers_reach, lidar_camera, orbit_camera
    L = build_layers(lidar)
    centre, eye, up = lidar_camera(L)
    at = _projected(lidar.boxes[:, :3], centre, eye, up)
    assert np.abs(at).max() < 0.9, at
    far, near = np.argmax(lidar.boxes[:, 0]), np.argmin(lidar.boxes[:, 0])
    assert at[far, 1] > at[near, 1] + 0.2  # the farthest box ahead is drawn above the nearest

    def size(cam) -> float:
        return float(np.mean([np.linalg.norm(np.ptp(_projected(k, *cam), 0)) for k in box_corners(lidar.boxes)]))
    assert size((centre, eye, up)) > 1.5 * size((*orbit_camera(L.coord, 0, 1), np.array([0.0, 0.0, 1.0])))

    around = build_layers(dataclasses.replace(lidar, frames=[]))  # no camera: labelled all around, drawn so
    assert around.around
    for layers in (L, around):
        behind, ahead, side = layers_reach(layers)
        ground = np.array([[x, y, -1.7] for x in (-behind, ahead) for y in (-side, side)])
        assert np.abs(_projected(ground, *lidar_camera(layers))).max() < 1.0


def test_color_by_layers_and_weak_seeds(tmp_path, room, lidar):
    w = weak.points(room, count=50, seed=0)
    p = PseudoLabels(semantic=room.semantic, confidence=np.linspace(0, 1, room.num_points), classes=room.classes)
    for layer in ("confidence", "rgb", "instance"):
        img = np.asarray(Image.open(_render(room, tmp_path / f"{layer}.png", pseudo=p, weak=w, color_by=layer)))
        assert ((img[TITLE_H:, :SIZE[0], :3] != 255).any(-1)).mean() > 0.1
    img = np.asarray(Image.open(_render(lidar, tmp_path / "k.png")))[:, :, :3]
    from pcweak.viz.colors import KITTI_COLORS
    assert _has(_panel(img, 0), KITTI_COLORS[3]) > 100  # background in KITTI grey
    with pytest.raises(ValueError, match=r"--color-by error: not available"):
        _render(room, tmp_path / "x.png", color_by="error")


def test_superpoint_layer_shows_the_cells_behind_the_labels(tmp_path, room):
    """``--color-by superpoint``: each cell a propagation's labels are uniform over in one
    colour (a bare scene's: the partitions' common refinement); without such a file, the
    scene's own segments; neither: one message saying what it needs."""
    from dataclasses import replace

    from pcweak.pseudo.registry import label
    from pcweak.viz.colors import instance_colors

    def share_in(img: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        """Of the panel's cloud pixels, the share drawn exactly in a colour of ``labels``' ids
        (the rest are edges blended with the background), and how many such colours show."""
        px = _panel(img, 0).reshape(-1, 3)
        px = px[(px != 255).any(1)]
        pal = np.unique(instance_colors(labels), axis=0)
        code = lambda a: (a[:, 0].astype(np.int64) << 16) | (a[:, 1].astype(np.int64) << 8) | a[:, 2]  # noqa: E731
        hit = np.isin(code(px), code(pal))
        return float(hit.mean()), len(np.unique(code(px[hit])))
    bare = replace(room, segment=None)
    p = label(bare, weak.points(bare, count=50, seed=0), "propagate")
    img = np.asarray(Image.open(_render(bare, tmp_path / "sp.png", pseudo=p, color_by="superpoint")))[:, :, :3]
    share, shown = share_in(img, p.extras["superpoint"])
    assert share > 0.3 and shown > 200  # a layer of labels or instances shows tens of colours
    img = np.asarray(Image.open(_render(room, tmp_path / "seg.png", color_by="superpoint")))[:, :, :3]
    share, shown = share_in(img, room.segment)
    assert share > 0.3 and shown > 100
    with pytest.raises(ValueError, match=r"--color-by superpoint: not available \(needs --pseudo made by propagation"):
        _render(bare, tmp_path / "x.png", color_by="superpoint")


def test_cli_viz_export_and_plots(tmp_path, room, capsys, monkeypatch):
    room.save(tmp_path / "r.npz")
    w = weak.points(room, count=80, seed=0)
    w.save(tmp_path / "w.npz")
    assert main(["label", f"npz:{tmp_path / 'r.npz'}", "--weak", str(tmp_path / "w.npz"), "-o", str(tmp_path / "p.npz")]) == 0
    assert main(["viz", f"npz:{tmp_path / 'r.npz'}", "--pseudo", str(tmp_path / "p.npz"), "--export", str(tmp_path / "o.ply")]) == 0
    from plyfile import PlyData
    v = PlyData.read(str(tmp_path / "o.ply"))["vertex"]
    for f in ("label", "instance", "pseudo_label", "pseudo_instance", "confidence", "superpoint"):
        assert f in v.data.dtype.names
    assert main(["evaluate", f"npz:{tmp_path / 'r.npz'}", "--pseudo", str(tmp_path / "p.npz"), "--plots", str(tmp_path / "plots"), "--json"]) == 0
    for name in ("per_class_iou.png", "confusion.png"):
        with Image.open(tmp_path / "plots" / name) as im:
            assert im.size[0] > 200 and im.size[1] > 200
    capsys.readouterr()
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["viz", f"npz:{tmp_path / 'r.npz'}"]) == 2
    assert "no display: use --png out.png" in capsys.readouterr().err


def test_every_package_is_installed():
    """pyproject's package search finds every pcweak package (viz included, no folder mapping)."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib reads pyproject.toml from Python 3.11 on")
    from pathlib import Path

    from setuptools import find_packages
    root = Path(__file__).resolve().parents[1]
    tool = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "package-dir" not in tool
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "pcweak").rglob("__init__.py")}
    assert set(find_packages(root, include=tool["packages"]["find"]["include"])) == found
    assert {"pcweak.viz", "pcweak.segment", "pcweak.train"} <= found

def test_seeds_stand_out_on_every_panel_and_the_cloud_fits(tmp_path, room):
    from pcweak.viz.layers import build_layers
    w = weak.points(room, count=40, seed=0)
    p = PseudoLabels(semantic=room.semantic, classes=room.classes)
    plain = np.asarray(Image.open(_render(room, tmp_path / "a.png", pseudo=p)))[:, :, :3]
    marked = np.asarray(Image.open(_render(room, tmp_path / "b.png", pseudo=p, weak=w)))[:, :, :3]
    for j in range(3):  # GT, pseudo-labels, error: black-ringed markers on each
        assert _has(_panel(plain, j), (0, 0, 0)) == 0
        assert _has(_panel(marked, j), (0, 0, 0)) > 100, j
        tile = _panel(plain, j)
        border = np.concatenate([tile[:2].reshape(-1, 3), tile[-2:].reshape(-1, 3), tile[:, :2].reshape(-1, 3), tile[:, -2:].reshape(-1, 3)])
        assert (border == 255).all(), "the cloud is cut at the panel's edge"
    names = [n for n, _ in build_layers(room, PseudoLabels(semantic=np.full(room.num_points, -1), classes=room.classes), w).extra_legend]
    assert names[:2] == ["no label", "error: pseudo != GT"] and any(n.startswith("seed point") for n in names)
    assert any("outline" in n for n in names)


def test_lidar_frame_from_above_with_boxes_and_camera_image(tmp_path, lidar):
    from pcweak.viz.colors import KITTI_COLORS
    img = np.asarray(Image.open(_render(lidar, tmp_path / "k.png")))[:, :, :3]
    assert img.shape[0] > TITLE_H + SIZE[1] + 50  # the camera image with projected boxes below the top view
    top = _panel(img, 0)
    car = KITTI_COLORS[0]
    # every car box ahead of the sensor and within the view is an outline in the car colour:
    # more car-coloured pixels than its points alone give
    from pcweak.viz.render import bev_panel
    bare = bev_panel(lidar.coord, np.tile(KITTI_COLORS[3], (lidar.num_points, 1)), [], SIZE)
    boxed = bev_panel(lidar.coord, np.tile(KITTI_COLORS[3], (lidar.num_points, 1)),
                      [(lidar.boxes, np.tile(car, (len(lidar.boxes), 1)), 2)], SIZE)
    assert _has(bare, car) == 0 and _has(boxed, car) > 20 * int((lidar.boxes[:, 0] < 40).sum())
    assert _has(top, car) > 0
    # a box as far as KITTI scores (70 m) is drawn: the view reaches past the farthest box
    far = lidar.boxes[:1].copy()
    far[0, :2] = (68.0, -35.0)
    drawn = bev_panel(lidar.coord, np.tile(KITTI_COLORS[3], (lidar.num_points, 1)), [(far, np.tile(car, (1, 1)), 2)], SIZE)
    assert _has(drawn, car) > 20


def test_a_lidar_scan_without_a_camera_is_drawn_all_around_the_sensor(tmp_path, lidar, capsys):
    """A LiDAR scan without a camera image (SemanticKITTI's, labelled all around) gets the top
    view centred on the sensor, where a camera's frame is drawn ahead (what lies 5 m behind the
    sensor is shown in the one, not in the other); one row of top views, no camera image."""
    import dataclasses
    from pcweak.viz.colors import KITTI_COLORS
    from pcweak.viz.layers import build_layers
    from pcweak.viz.render import bev_panel, bev_reach
    bare = dataclasses.replace(lidar, frames=[], meta={"dataset": "semantickitti"})
    assert build_layers(bare).lidar and build_layers(bare).around and not build_layers(lidar).around
    car, grey = KITTI_COLORS[0], KITTI_COLORS[3]
    colors = np.where((lidar.coord[:, 0] < -5)[:, None], car, grey).astype(np.uint8)
    assert (lidar.coord[:, 0] < -5).sum() > 100
    assert _has(bev_panel(lidar.coord, colors, [], SIZE, reach=bev_reach([], None)), car) == 0
    assert _has(bev_panel(lidar.coord, colors, [], SIZE, reach=bev_reach([], None, around=True)), car) > 100
    img = np.asarray(Image.open(_render(bare, tmp_path / "s.png")))[:, :, :3]
    assert img.shape[0] == TITLE_H + SIZE[1]  # one row of top views, nothing below
    bare.save(tmp_path / "scan.npz")
    capsys.readouterr()
    assert main(["viz", f"npz:{tmp_path / 'scan.npz'}", "--png", str(tmp_path / "v.png"), "--views", "2"]) == 0
    assert "is a LiDAR frame, drawn in one row of top views; --views is not used" in capsys.readouterr().err

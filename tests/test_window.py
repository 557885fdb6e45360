"""The interactive window as a person sees it: `pcweak viz` under Xvfb, screenshots of the X
screen, keys typed with xdotool. Xvfb and xdotool come with the set-up (scripts/setup.sh)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from pcweak.viz import colors as C

NEEDS = [shutil.which("Xvfb"), shutil.which("xdotool")]
pytestmark = pytest.mark.skipif(not all(NEEDS) and not os.environ.get("CI"), reason="Xvfb / xdotool not installed (scripts/setup.sh installs them)")


@pytest.fixture
def display():
    r, w = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    number = b""
    while not number.endswith(b"\n"):
        chunk = os.read(r, 16)
        assert chunk, "Xvfb did not start"
        number += chunk
    os.close(r)
    yield f":{number.decode().strip()}"
    xvfb.terminate()
    xvfb.wait(10)


def grab(disp: str) -> np.ndarray:
    from PIL import ImageGrab
    return np.asarray(ImageGrab.grab(xdisplay=disp).convert("RGB"))


def xdo(disp: str, *args: str) -> str:
    return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": disp}, capture_output=True, text=True, timeout=30).stdout


def share(img: np.ndarray, rgb, tol: int = 6) -> float:
    """Fraction of pixels within ``tol`` of colour ``rgb``."""
    return float((np.abs(img.astype(int) - np.asarray(rgb, int)).max(-1) <= tol).mean())


def drawn(img: np.ndarray) -> bool:
    """Whether ``img`` shows a drawn frame: no one colour covers 95 % of it (a window that is
    mapped but not yet rendered is one flat colour, white or black)."""
    rgb = img.reshape(-1, 3).astype(np.int64)
    _, counts = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2], return_counts=True)
    return counts.max() < 0.95 * counts.sum()


def settle(disp: str, timeout: float = 180.0) -> np.ndarray:
    """The screen once it shows a drawn frame (``drawn``) and two grabs a second apart agree
    (llvmpipe renders slowly, more so when the suite's other tests share the cores)."""
    end, last = time.time() + timeout, None
    while time.time() < end:
        time.sleep(1.0)
        img = grab(disp)
        if last is not None and np.array_equal(img, last) and drawn(img):
            return img
        last = img
    pytest.fail(f"the window showed no steady drawn frame within {timeout:.0f} s (drawn: {drawn(last)})")


def press(disp: str, key: str, before: np.ndarray, region: slice, tries: int = 2) -> np.ndarray:
    """Types ``key`` into the pcweak window and returns the steady frame after it, once the
    ``region`` of columns differs from ``before``'s; a key the window never received (focus
    still moving under a slow llvmpipe) is typed again, up to ``tries`` times in all."""
    for _ in range(tries):
        xdo(disp, "search", "--name", "pcweak", "windowactivate", "--sync")
        xdo(disp, "key", key)
        end = time.time() + 60
        while time.time() < end:
            img = settle(disp)
            if (np.abs(img[:, region].astype(int) - before[:, region].astype(int)).max(-1) > 30).mean() > 1e-4:
                return img
    pytest.fail(f"the window did not change after the key {key!r} ({tries} tries)")


@pytest.mark.slow
def test_window_layers_toggle_and_legend(tmp_path, display):
    from pcweak.cli import main
    assert main(["simulate", "synthetic:0", "--weak", "points", "--count", "200", "--seed", "0", "-o", str(tmp_path / "w.npz")]) == 0
    assert main(["label", "synthetic:0", "--weak", str(tmp_path / "w.npz"), "--method", "nearest", "-o", str(tmp_path / "p.npz")]) == 0
    env = {**os.environ, "DISPLAY": display}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from pcweak.cli import main; sys.exit(main(sys.argv[1:]))",
                             "viz", "synthetic:0", "--pseudo", str(tmp_path / "p.npz"), "--weak", str(tmp_path / "w.npz")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.time() + 120
        while not xdo(display, "search", "--name", "pcweak").strip():
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < end, "no pcweak window appeared"
            time.sleep(0.5)
        first = settle(display)
        from PIL import Image
        Image.fromarray(first).save(tmp_path / "window_semantic.png")
        h, w, _ = first.shape
        cloud, panel = first[:, : w * 2 // 3], first[:, w * 3 // 4:]

        # the legend: a swatch of every class shown, in its ScanNet colour, in the side panel
        import pcweak
        from pcweak.viz.layers import build_layers
        scene = pcweak.load_scene("synthetic:0")
        order = list(build_layers(scene, pcweak.PseudoLabels.load(tmp_path / "p.npz")).point_layers)
        pal = C.palette_for(scene.classes)
        shown = np.unique(scene.semantic[scene.semantic >= 0])
        assert all(share(panel, pal[c], 2) > 1e-4 for c in shown), "legend swatches missing"
        assert share(panel, C.ERROR, 2) > 1e-4  # the error colour is named too

        # the pseudo-label layer first: class colours, little red
        assert share(cloud, C.ERROR, 20) < 0.002
        wall = pal[scene.classes.index("wall")]
        assert share(cloud, wall, 12) > 0.01

        # the error layer's number key: red appears, the wall colour goes
        err = press(display, str(order.index("error") + 1), first, slice(0, w * 2 // 3))
        Image.fromarray(err).save(tmp_path / "window_error.png")
        cloud_err = err[:, : w * 2 // 3]
        assert share(cloud_err, C.ERROR, 20) > 0.01
        assert share(cloud_err, wall, 12) < share(cloud, wall, 12) / 5

        # s hides the seed spheres: the picture changes, the panel's seed check box clears
        noseeds = press(display, "s", err, slice(0, w * 2 // 3))
        changed = np.abs(noseeds[:, : w * 2 // 3].astype(int) - cloud_err.astype(int)).max(-1) > 30
        assert 0.0005 < changed.mean() < 0.05

        # q closes the window and the command ends cleanly, quietly: Open3D's start-up report held
        xdo(display, "key", "q")
        assert proc.wait(60) == 0, proc.stdout.read()
        said = proc.stdout.read()
        assert "FEngine" not in said and "Vulkan device" not in said and "swapchain" not in said.lower(), said
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

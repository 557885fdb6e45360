"""Looking at pseudo-labels.

``layers`` builds the colour layers of a scene (RGB, GT, pseudo-labels, confidence, error, seeds,
boxes); ``render_png`` draws them headless with Open3D's OffscreenRenderer into one image (a
multi-view grid, GT | pseudo | error side by side, and a legend); ``show`` opens an interactive
O3DVisualizer window with every layer toggleable; ``plots`` writes report charts.
"""
from .colors import palette_for
from .layers import Layers, build_layers
from .render import render_png

__all__ = ["palette_for", "Layers", "build_layers", "render_png", "show"]


def show(*args, **kwargs):
    """Interactive window (needs a display); see ``pcweak.viz.window.show``."""
    from .window import show as _show
    return _show(*args, **kwargs)

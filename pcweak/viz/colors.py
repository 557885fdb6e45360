"""Fixed, documented class colours (RGB 0-255).

ScanNet-20: ScanNet's own palette (``create_color_palette`` of the benchmark scripts, indexed by
the classes' NYU40 ids). S3DIS: the palette of the S3DIS indoor3d tools (``g_class2color``).
KITTI: SemanticKITTI's colours for car, person and bicyclist (converted from BGR); background
grey. Other class lists get a deterministic tab20-style palette.
"""
from __future__ import annotations

import numpy as np

SCANNET20_COLORS = np.array([
    (174, 199, 232), (152, 223, 138), (31, 119, 180), (255, 187, 120), (188, 189, 34), (140, 86, 75),
    (255, 152, 150), (214, 39, 40), (197, 176, 213), (148, 103, 189), (196, 156, 148), (23, 190, 207),
    (247, 182, 210), (219, 219, 141), (255, 127, 14), (158, 218, 229), (44, 160, 44), (112, 128, 144),
    (227, 119, 194), (82, 84, 163)], np.uint8)
S3DIS13_COLORS = np.array([
    (0, 255, 0), (0, 0, 255), (0, 255, 255), (255, 255, 0), (255, 0, 255), (100, 100, 255), (200, 200, 100),
    (170, 120, 200), (255, 0, 0), (200, 100, 100), (10, 200, 100), (200, 200, 200), (50, 50, 50)], np.uint8)
KITTI_COLORS = np.array([(100, 150, 245), (30, 30, 255), (200, 40, 255), (150, 150, 150)], np.uint8)
UNLABELLED = np.array((60, 60, 60), np.uint8)      # label -1
ERROR = np.array((230, 25, 25), np.uint8)          # pseudo != GT
CORRECT = np.array((205, 205, 205), np.uint8)      # pseudo == GT
IGNORED = np.array((90, 90, 90), np.uint8)         # GT unlabelled


def generic_palette(n: int) -> np.ndarray:
    """(n,3) uint8 distinct colours (golden-ratio hues), deterministic."""
    import colorsys
    return np.array([[int(255 * c) for c in colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.65, 0.95)]
                     for i in range(n)], np.uint8).reshape(-1, 3)


def palette_for(classes: tuple[str, ...]) -> np.ndarray:
    """(C,3) uint8 colours of a class list."""
    from pcweak.classes import KITTI_CLASSES, S3DIS13, SCANNET20
    classes = tuple(classes)
    if classes == SCANNET20:
        return SCANNET20_COLORS
    if classes == S3DIS13:
        return S3DIS13_COLORS
    if classes == KITTI_CLASSES:
        return KITTI_COLORS
    return generic_palette(len(classes))


def label_colors(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(N,3) uint8 colours of labels (-1 -> UNLABELLED)."""
    out = np.tile(UNLABELLED, (len(labels), 1))
    ok = (labels >= 0) & (labels < len(palette))
    out[ok] = palette[labels[ok]]
    return out


def instance_colors(instance: np.ndarray) -> np.ndarray:
    ids = np.maximum(instance, 0)
    pal = generic_palette(int(ids.max()) + 1 if len(ids) else 1)
    out = pal[ids]
    out[instance < 0] = UNLABELLED
    return out


def heat(values: np.ndarray) -> np.ndarray:
    """Confidence heat-map: 0 blue -> 0.5 yellow -> 1 red-free green (viridis-like ramp)."""
    v = np.clip(np.nan_to_num(values), 0, 1)[:, None]
    lo, mid, hi = np.array([68, 1, 84]), np.array([33, 145, 140]), np.array([253, 231, 37])
    out = np.where(v < 0.5, lo + (mid - lo) * (v / 0.5), mid + (hi - mid) * ((v - 0.5) / 0.5))
    return out.astype(np.uint8)

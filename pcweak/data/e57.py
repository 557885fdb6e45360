"""ASTM E57 scans (``e57:<file.e57>``), the exchange format of terrestrial laser scanners (Leica,
FARO, NavVis, Matterport exports), read with pye57 (the ``e57`` extra).

A file holds one or more scans, each in its own frame with a pose (rotation, translation) into
the file's: every scan is moved by its pose and the scans are concatenated in file order, so a
room scanned from several stations reads as one cloud (``meta['e57_scans']``: each scan's name
and point count, in order). Points are cartesian or spherical; those the scanner marked invalid
(no return) are left out. Colours are scaled by the scan's ``colorLimits`` (else by the range
their largest value falls in) to [0,1], intensity by its ``intensityLimits`` (else the same
way). E57 has no labels: a scan reads unlabelled, for weak labels to be drawn on it. Metres, as
the standard fixes them; georeferenced translations are moved toward the origin by ``Scene``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReaderError
from ..scene import Scene
from .point_fields import COLOR_RANGES, unit_colors

EXTRA = 'the "e57" extra of pcweak (pip install -e ".[e57]", which installs pye57)'
COLOR_CHANNELS = ("colorRed", "colorGreen", "colorBlue")


def _limit(header: Any, group: str, name: str) -> float | None:
    """A scan header's ``group/name`` limit (``intensityLimits/intensityMaximum``, say), or None."""
    try:
        return float(header[group][name].value())
    except Exception:  # pye57 raises libE57Format's own errors for an absent node
        return None


def _unit_intensity(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    """(N,) float32 in [0,1]: by the scan's intensity limits where it has them, else by the range
    (1, 255 or 65535) the largest value falls in, or by the largest value beyond them."""
    v = np.asarray(values, np.float64)
    if low is not None and high is not None and high > low:
        return np.clip((v - low) / (high - low), 0, 1).astype(np.float32)
    top = float(v.max()) if v.size else 0.0
    scale = next((s for s in COLOR_RANGES if top <= s), top)
    return np.clip(v / max(scale, 1e-12), 0, 1).astype(np.float32)


def _scan_colors(path: Path, data: dict[str, np.ndarray], header: Any) -> np.ndarray | None:
    """(M,3) float32 colours in [0,1] of one scan, or None where it has none."""
    if not all(c in data for c in COLOR_CHANNELS):
        return None
    rgb = np.stack([np.asarray(data[c], np.float64) for c in COLOR_CHANNELS], 1)
    top = max((_limit(header, "colorLimits", f"{c}Maximum") or 0.0) for c in COLOR_CHANNELS)
    if top > 0:
        return np.clip(rgb / top, 0, 1).astype(np.float32)
    return unit_colors(path, rgb, COLOR_CHANNELS)


def _check_rotation(path: Path, header: Any, name: str) -> None:
    """ReaderError naming ``path`` and the scan where its pose's rotation (a quaternion w, x, y,
    z, which pye57 normalises) is zero or not finite: it would put every point at one place or
    nowhere. A scan without a pose is in the file's frame."""
    try:
        q = np.array([float(e.value()) for e in header["pose"]["rotation"]], np.float64)
    except Exception:  # libE57Format's error for an absent node
        return
    if q.shape != (4,) or not np.isfinite(q).all() or np.linalg.norm(q) < 1e-6:
        raise ReaderError(f"{path}: scan {name!r}: its pose's rotation {q.tolist()} is no rotation (E57 stores a unit "
                          f"quaternion w, x, y, z; [1, 0, 0, 0] for none): a corrupt pose")


def read_e57(path: str | os.PathLike) -> Scene:
    """Read every scan of an E57 file into one ``Scene`` (see the module's docstring).
    ReaderError naming the file for a missing or unreadable file, one without points, a scan
    whose pose rotation is zero or not finite, or the extra not installed."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    try:
        import pye57
    except ImportError as e:
        raise ReaderError(f"{path}: reading E57 files needs {EXTRA}") from e
    coords, colors, intensities, scans = [], [], [], []
    e57 = None
    try:
        e57 = pye57.E57(str(path))
        for i in range(e57.scan_count):
            header = e57.get_header(i)
            try:
                name = str(header["name"].value())
            except Exception:
                name = f"scan {i}"
            _check_rotation(path, header, name)
            data = e57.read_scan(i, intensity=True, colors=True, ignore_missing_fields=True, transform=True)
            xyz = np.stack([np.asarray(data[k], np.float64) for k in ("cartesianX", "cartesianY", "cartesianZ")], 1)
            coords.append(xyz)
            colors.append(_scan_colors(path, data, header))
            intensities.append(_unit_intensity(data["intensity"], _limit(header, "intensityLimits", "intensityMinimum"),
                                               _limit(header, "intensityLimits", "intensityMaximum"))
                               if "intensity" in data else None)
            scans.append([name, len(xyz)])
    except ReaderError:
        raise
    except Exception as e:  # libE57Format's errors: a damaged or foreign file
        raise ReaderError(f"{path}: not a readable E57 file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    finally:
        if e57 is not None:
            e57.close()
    n = sum(len(c) for c in coords)
    if n == 0:
        raise ReaderError(f"{path}: no valid points in its {len(coords)} scan(s)")
    coord = np.concatenate(coords)
    bad = ~np.isfinite(coord).all(1)
    if bad.any():
        raise ReaderError(f"{path}: {int(bad.sum())} points have NaN/inf coordinates (first at index {int(np.argmax(bad))})")
    # a field that only some scans have is left out rather than made up for the others
    color = np.concatenate(colors) if all(c is not None for c in colors) else None
    intensity = np.concatenate(intensities) if all(v is not None for v in intensities) else None
    return Scene(name=path.stem, coord=coord, color=color, intensity=intensity,
                 meta={"dataset": "e57", "source": str(path), "e57_scans": scans})

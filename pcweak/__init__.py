"""pcweak: train 3D point-cloud networks from weak labels.

Python API::

    import pcweak
    scene = pcweak.load_scene("synthetic:0")              # or scannet:/s3dis:/kitti:/ply:/npz:
    weak = pcweak.weak.points(scene, count=200, seed=0)   # simulate cheap labels
"""
from __future__ import annotations

from .data.address import load_scene
from .errors import AddressError, PcweakError, ReaderError, SceneError
from .scene import Frame, KittiCalib, PseudoLabels, Scene, WeakLabels

__version__ = "0.1.0"


def propagate(*args, **kwargs):
    """Dense pseudo-labels from sparse point labels; see ``pcweak.pseudo.propagate.propagate``."""
    from .pseudo.propagate import propagate as _p
    return _p(*args, **kwargs)


def gp_box_labels(scene, boxes, box_labels, **params):
    """Instance pseudo-labels from 3D boxes with GP classifiers; see ``pcweak.pseudo.gp_boxes``."""
    from .pseudo.gp_boxes import gp_box_labels as _g
    return _g(scene, boxes, box_labels, **params)
__all__ = ["load_scene", "propagate", "gp_box_labels", "Scene", "Frame", "KittiCalib", "WeakLabels", "PseudoLabels",
           "PcweakError", "SceneError", "ReaderError", "AddressError", "__version__"]


def __getattr__(name: str):  # lazy subpackages: pcweak.weak, ...
    if name in ("weak",):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(name)

"""pcweak: train 3D point-cloud networks from weak labels.

Python API::

    import pcweak
    scene = pcweak.load_scene("synthetic:0")              # or scannet:/s3dis:/kitti:/ply:/npz:
    weak = pcweak.simulate(scene, "points", count=200, seed=0)   # cheap labels from ground truth
    weak = pcweak.import_tables(scene, ["clicks.csv"])           # or clicks made in another tool
    pseudo = pcweak.label(scene, weak, "propagate", **{"graph.sigma_color": 0.1})
    print(pcweak.evaluate(scene, pseudo)["miou"])
"""
from __future__ import annotations

from .data.address import load_scene
from .errors import AddressError, PcweakError, ReaderError, SceneError
from .metrics.evaluate import evaluate
from .pseudo.propagate import PropagateConfig, propagate
from .pseudo.registry import label
from .scene import Frame, KittiCalib, PseudoLabels, Scene, WeakLabels
from .segment.superpoints import superpoints
from .weak.from_tables import import_tables

__version__ = "0.1.0"


def simulate(scene: Scene, kind: str = "points", seed: int = 0, **params) -> WeakLabels:
    """Weak labels of ``kind`` (points, clicks, boxes, boxes2d, masks2d) drawn from ``scene``'s
    ground truth, reproducibly from ``seed``; see ``pcweak.weak.simulate``."""
    from .weak import simulate as _simulate
    return _simulate(scene, kind, seed=seed, **params)


__all__ = ["load_scene", "simulate", "import_tables", "label", "evaluate", "propagate", "PropagateConfig", "superpoints", "Scene", "Frame",
           "KittiCalib", "WeakLabels", "PseudoLabels", "PcweakError", "SceneError", "ReaderError", "AddressError", "__version__"]


def __getattr__(name: str):  # lazy subpackages: pcweak.weak, ...
    if name in ("weak",):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(name)

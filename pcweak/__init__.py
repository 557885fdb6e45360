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

from typing import TYPE_CHECKING

from .errors import AddressError, PcweakError, ReaderError, SceneError

if TYPE_CHECKING:  # the names below, for type checkers and editors; at run time __getattr__
    from .data.address import load_scene
    from .metrics.evaluate import evaluate
    from .pseudo.propagate import PropagateConfig, propagate
    from .pseudo.registry import label
    from .scene import Frame, KittiCalib, PseudoLabels, Scene, WeakLabels
    from .segment.superpoints import superpoints
    from .weak.from_tables import import_tables

# public name -> the module that defines it, imported on first use: `import pcweak` (and so
# every `pcweak` command, `--help` included) does not load torch and scipy before it needs them
_DEFINED_IN = {
    "load_scene": ".data.address", "evaluate": ".metrics.evaluate", "propagate": ".pseudo.propagate",
    "PropagateConfig": ".pseudo.propagate", "label": ".pseudo.registry", "superpoints": ".segment.superpoints",
    "import_tables": ".weak.from_tables",
    **dict.fromkeys(("Frame", "KittiCalib", "PseudoLabels", "Scene", "WeakLabels"), ".scene"),
}

__version__ = "0.1.0"


def simulate(scene: Scene, kind: str = "points", seed: int = 0, **params) -> WeakLabels:
    """Weak labels of ``kind`` (points, clicks, boxes, boxes2d, masks2d) drawn from ``scene``'s
    ground truth, reproducibly from ``seed``; see ``pcweak.weak.simulate``."""
    from .weak import simulate as _simulate
    return _simulate(scene, kind, seed=seed, **params)


__all__ = ["load_scene", "simulate", "import_tables", "label", "evaluate", "propagate", "PropagateConfig", "superpoints", "Scene", "Frame",
           "KittiCalib", "WeakLabels", "PseudoLabels", "PcweakError", "SceneError", "ReaderError", "AddressError", "__version__"]


def __getattr__(name: str) -> object:
    """The API's names and the ``weak`` subpackage, imported when first asked for."""
    import importlib
    if name in _DEFINED_IN:
        value = getattr(importlib.import_module(_DEFINED_IN[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name == "weak":
        return importlib.import_module(".weak", __name__)
    raise AttributeError(f"module 'pcweak' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""The project's folders that pcweak reads at run time: ``cuda_ops/`` (the sources of the
compiled ops, built on first use) and ``configs/`` (the training configs; ``pcweak demo`` and the
training benches read ``configs/demo.yaml``).

In a checkout (the set-up's editable install) they lie beside the ``pcweak`` package. A wheel
(``pip install .`` or ``pip install git+URL``) carries copies in ``pcweak/_bundled/``, which
``setup.py``'s build step makes, since a wheel holds only what lies inside its packages."""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
BUNDLED = PACKAGE / "_bundled"
PROJECT_FOLDERS = ("cuda_ops", "configs")


def project_folder(name: str) -> Path:
    """The folder ``name`` (one of ``PROJECT_FOLDERS``): the wheel's copy where pcweak was
    installed from one, else the checkout's, beside the package."""
    if name not in PROJECT_FOLDERS:
        raise ValueError(f"project_folder: {name!r} is none of {PROJECT_FOLDERS}")
    bundled = BUNDLED / name
    return bundled if bundled.is_dir() else PACKAGE.parent / name

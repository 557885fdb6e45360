"""Open3D, imported through one door that says what to install when it cannot load.

Open3D's wheel links system libraries a bare Debian lacks: ``libEGL.so.1`` (Debian's
``libegl1``) for any import, ``libusb-1.0`` for its device support, Vulkan (``libvulkan1``,
``mesa-vulkan-drivers``) for offscreen rendering. Without them ``import open3d`` raises an
ImportError naming only the ``.so`` file; pcweak's readers, normals and viewers then raise
``Open3DMissing`` naming the set-up step instead. Its renderer's start-up report on stdout
(GLFW, the Filament engine, the Vulkan device: about nine lines written by native code) is held
back (``native_output_held``) and shown only where the renderer fails.
"""
from __future__ import annotations

import contextlib
import io
import sys
from types import ModuleType
from typing import Iterator

from .errors import PcweakError

# What scripts/setup.sh installs with apt for Open3D (kept in step with its list).
OPEN3D_SYSTEM_PACKAGES = ("libegl1", "libusb-1.0-0", "libvulkan1", "mesa-vulkan-drivers", "libgomp1")


class Open3DMissing(PcweakError, RuntimeError):
    """Open3D is not installed, or a system library it links is missing."""


def open3d() -> ModuleType:
    """The ``open3d`` module; ``Open3DMissing`` with what to install where it cannot be imported."""
    try:
        import open3d as o3d
    except (ImportError, OSError) as e:
        raise Open3DMissing(f"Open3D cannot be imported ({e}); run the set-up (scripts/setup.sh), or install the "
                            f"system libraries it needs: apt-get install {' '.join(OPEN3D_SYSTEM_PACKAGES)}") from e
    return o3d


@contextlib.contextmanager
def native_output_held() -> Iterator[io.StringIO]:
    """What the block writes to the process's stdout, held in the yielded buffer instead of
    reaching the terminal: native code's writes to file descriptor 1 (wurlitzer's pipe) and
    Python's to ``sys.stdout``, where Open3D's logger writes when it is not descriptor 1
    (pytest, Jupyter). Open3D's and Filament's start-up report goes to stdout; stderr is left
    alone, so where the native code aborts the process (Filament without a Vulkan device) its
    reason ("terminate called ... Unable to create Vulkan instance") still reaches the terminal.
    Without wurlitzer (no ``fcntl``: Windows) only Python's writes are held."""
    try:
        from wurlitzer import pipes
    except ImportError:
        held = io.StringIO()
        with contextlib.redirect_stdout(held):
            yield held
        return
    sys.stdout.flush()
    with pipes(stderr=None) as (held, _), contextlib.redirect_stdout(held):
        yield held


def held_lines(held: io.StringIO, lead: str, last: int = 8) -> str:
    """The last ``last`` non-empty lines of what ``native_output_held`` held, terminal colour
    codes removed, joined by " | " after ``lead`` (for an error message); "" where it held nothing."""
    import re
    text = re.sub(r"\x1b\[[0-9;]*m", "", held.getvalue())
    said = " | ".join(line.strip() for line in text.splitlines()[-last:] if line.strip())
    return f"{lead}{said}" if said else ""

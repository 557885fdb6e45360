"""Build-on-first-use of the compiled ops in ``cuda_ops/`` and the backend switch.

The C++ (CPU, OpenMP) source is compiled with ``torch.utils.cpp_extension.load`` the first time
an op runs; the library lands in a cache folder (``$PCWEAK_CACHE`` or ``~/.cache/pcweak``, one
sub-folder per build key: the sources' bytes, torch's version and CUDA version, the Python ABI and
the machine; never a path) and later runs, from this checkout or any other with the same sources
and environment, import it directly. The one build says so on stderr. The CUDA
kernels are added only where torch has CUDA. ``PCWEAK_OPS=reference`` forces the pure-torch
reference, ``PCWEAK_OPS=compiled`` makes a failed build an error instead of a warning.

No process ever waits on another: a ready library is imported without torch's build lock, and
a build runs in a private temporary folder whose library is then renamed into place atomically
(``os.replace``). A process killed mid-build leaves only its own temporary folder, which later
builds remove; two processes building at once each finish, and the last rename wins (the same
bytes).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

from ..project_files import project_folder

SRC_DIR = project_folder("cuda_ops")
_state: dict[str, object] = {}


def mode() -> str:
    m = os.environ.get("PCWEAK_OPS", "auto").lower()
    if m not in ("auto", "reference", "compiled"):
        raise ValueError(f"PCWEAK_OPS={m!r}: expected auto, reference or compiled")
    return m


def cache_dir() -> Path:
    base = Path(os.environ.get("PCWEAK_CACHE", Path.home() / ".cache" / "pcweak"))
    return base / "ops"


def _sources(with_cuda: bool) -> list[Path]:
    srcs = [SRC_DIR / "pcweak_ops.cpp"]
    if with_cuda:
        srcs.append(SRC_DIR / "pcweak_ops_cuda.cu")
    return srcs


@contextlib.contextmanager
def ninja_on_path() -> Iterator[None]:
    """PATH with the ``ninja`` Python package's binary folder in front while the block runs.

    torch's ``cpp_extension.load`` runs ``ninja`` found on PATH; pcweak depends on the ``ninja``
    package, whose binary lands in the virtual environment's ``bin/``, which is not on PATH
    where ``.venv/bin/pcweak`` runs without the environment activated. A bare Debian has no
    system ninja either, so without this the build fails there and pcweak falls back to the
    reference ops. PATH is restored afterwards; where the package is missing, PATH is left as
    it is (a system ninja may serve)."""
    try:
        import ninja
    except ImportError:
        yield
        return
    before = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join(p for p in (str(ninja.BIN_DIR), before) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = before


def _cpp_extension() -> ModuleType:
    """``torch.utils.cpp_extension``, imported with its logger quiet. A CUDA build of torch on a
    machine with a CUDA toolkit but no usable GPU (a cluster's login node; PyPI's torch, a CUDA
    build, on a workstation) logs "No CUDA runtime is found, using CUDA_HOME=..." at that import,
    once per command and worker; pcweak builds its CPU library there, so the line tells its
    users nothing."""
    import logging
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import torch.utils.cpp_extension as cpp
    finally:
        log.setLevel(level)
    return cpp


def build(verbose: bool = False) -> ModuleType:
    """Compile (or load from the cache) the extension; raises on failure."""
    load = _cpp_extension().load
    with_cuda = torch.cuda.is_available() and torch.version.cuda is not None
    srcs = _sources(with_cuda)
    missing = [s for s in srcs if not s.is_file()]
    if missing:
        raise FileNotFoundError(f"pcweak ops sources not found: {missing} (is cuda_ops/ next to the pcweak package?)")
    tag = build_key(srcs + [SRC_DIR / "pcweak_ops_cuda.h"], with_cuda)
    out = cache_dir() / tag
    out.mkdir(parents=True, exist_ok=True)
    name = f"pcweak_ops_{tag}"
    library = out / f"{name}.so"
    if library.is_file():
        return _import_library(name, library)
    _remove_stale_builds(out)
    import sys
    print(f"pcweak: compiling the C++{'/CUDA' if with_cuda else ''} ops once for this environment (about 30 s); "
          f"cached in {out}", file=sys.stderr, flush=True)
    flags = ["-O3", "-fopenmp", "-ffp-contract=off"]
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out) as tmp:
        kw = dict(name=name, sources=[str(s) for s in srcs], build_directory=tmp,
                  extra_cflags=flags + (["-DPCWEAK_WITH_CUDA"] if with_cuda else []), extra_ldflags=["-fopenmp"],
                  verbose=verbose)
        if with_cuda:
            kw["extra_cuda_cflags"] = ["-O3", "--fmad=false", "-DPCWEAK_WITH_CUDA"]
            kw["extra_include_paths"] = [str(SRC_DIR)]
        with ninja_on_path():
            module = load(**kw)
        os.replace(Path(tmp) / f"{name}.so", library)  # atomic: never a half-written library
    module.__file__ = str(library)  # the same file, renamed: its build folder is gone
    return module


def build_key(files: list[Path], with_cuda: bool) -> str:
    """What the library depends on, hashed: the files' bytes (not their paths), torch's version
    and CUDA version, the Python ABI tag and the machine."""
    import platform
    import sys
    h = hashlib.sha1()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    for part in (torch.__version__, str(torch.version.cuda), sys.implementation.cache_tag or "", platform.machine()):
        h.update(b"\0" + part.encode())
    return h.hexdigest()[:12] + ("_cuda" if with_cuda else "_cpu")


def _import_library(name: str, library: Path) -> ModuleType:
    """Import the built extension ``library`` as module ``name`` (no build step, no lock)."""
    import sys
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, library)
    if spec is None or spec.loader is None:
        raise ImportError(f"{library}: not an importable extension")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


STALE_BUILD_SECONDS = 3600.0


def _remove_stale_builds(out: Path) -> None:
    """Remove private build folders that killed processes left in ``out`` (older than an hour:
    a live build is never that old)."""
    now = time.time()
    for d in out.glob(".build-*"):
        try:
            if now - d.stat().st_mtime > STALE_BUILD_SECONDS:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def compiled() -> ModuleType | None:
    """The compiled module, or None when the reference must be used (warns once on failure)."""
    m = mode()
    if m == "reference":
        return None
    if "module" in _state:
        return _state["module"]  # type: ignore[return-value]
    if "error" in _state and m == "auto":
        return None
    try:
        _state["module"] = build()
        return _state["module"]  # type: ignore[return-value]
    except Exception as e:  # a toolchain problem must not make pcweak unusable
        _state["error"] = e
        if m == "compiled":
            raise RuntimeError(f"PCWEAK_OPS=compiled but building cuda_ops failed: {e}") from e
        warnings.warn(f"pcweak: compiling cuda_ops failed ({type(e).__name__}: {str(e)[:300]}); "
                      "using the pure-torch reference ops (set PCWEAK_OPS=reference to silence this)")
        return None


def backend() -> str:
    """``"compiled"`` or ``"reference"``: what the ops use now."""
    return "compiled" if compiled() is not None else "reference"

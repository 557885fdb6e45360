"""Loading files users download without running code from them.

``torch.load`` unpickles: a crafted checkpoint can run code before anything is checked. Here
every torch file is read with ``weights_only=True`` (tensors, numbers, strings, lists, dicts),
with a short allow-list of the plain types that Lightning checkpoints and ScanNet's
Data-Efficient annotation files really hold (numpy arrays, Lightning's ``AttributeDict``).
A file that needs anything else is refused with a message naming the type; ``.npy`` files are
read with ``allow_pickle=False``; plain pickles (mmdetection3d's infos) rebuild only plain data
and numpy arrays.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import ReaderError


def _numpy_core(module: str, names: tuple[str, ...]) -> list[tuple[Any, str]]:
    """numpy's functions ``names`` of ``numpy._core.<module>`` (numpy 2) or ``numpy.core.<module>``
    (numpy 1, which has no ``numpy._core.numeric``), each under both module names, since a file
    names them as the numpy that wrote it called them, whichever numpy reads it."""
    import importlib
    try:
        mod = importlib.import_module(f"numpy._core.{module}")
        found = [getattr(mod, n) for n in names]
    except (ImportError, AttributeError):
        mod = importlib.import_module(f"numpy.core.{module}")
        found = [getattr(mod, n) for n in names]
    return [(f, f"{prefix}.{module}.{n}") for f, n in zip(found, names) for prefix in ("numpy._core", "numpy.core")]


def _allowed_globals() -> list[Any]:
    """The plain types allowed besides torch's own: numpy arrays and scalars' dtypes (under
    numpy 1's and 2's module names, as files written by either name them) and Lightning's
    ``AttributeDict`` of hyper-parameters."""
    import numpy as np
    allowed: list[Any] = [np.ndarray, np.dtype, *_numpy_core("multiarray", ("_reconstruct", "scalar"))]
    allowed += [type(np.dtype(t)) for t in ("int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64",
                                             "float16", "float32", "float64", "bool")]
    try:
        from lightning.fabric.utilities.data import AttributeDict
        allowed.append(AttributeDict)
    except ImportError:  # pragma: no cover
        pass
    return allowed


def torch_load(path: str | os.PathLike, what: str) -> Any:
    """``torch.load(path)`` without unpickling code: ReaderError naming ``what`` (the argument
    or kind of file) when the file is missing, unreadable, or holds an object of a type that
    is not plain data."""
    import pickle

    import torch
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{what}: {path} not found")
    try:
        with torch.serialization.safe_globals(_allowed_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        import re
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None:  # no type named: a damaged file or not a torch file at all
            detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(e))
            raise ReaderError(f"{what}: {path} is not a torch file pcweak can read safely ("
                              f"{detail.group(1).strip() if detail else type(e).__name__}): not a checkpoint, a "
                              f"damaged one, or one holding more than tensors and plain values") from e
        raise ReaderError(f"{what}: {path} holds an object of type {found.group(1)}; pcweak does not load it, since "
                          f"loading it could run code. Re-save the file with tensors, arrays and plain Python values "
                          f"only") from e
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise ReaderError(f"{what}: {path} is not a readable torch file ({type(e).__name__}: {str(e)[:300]})") from e


def numpy_load(path: str | os.PathLike, what: str) -> Any:
    """``np.load(path)`` with ``allow_pickle=False``; an object array (a pickled dict, as some
    ``.npy`` annotation files are) is refused with a message saying how to convert it, a file
    that is no ``.npy`` or is cut short as unreadable (ReaderError naming ``what`` and ``path``)."""
    import numpy as np
    path = Path(path)
    try:
        with open(path, "rb") as f:  # one open: the header checked, then the same file read
            head = f.read(6)
            if head != b"\x93NUMPY" and not head.startswith(b"\x80"):  # neither an array nor a pickle
                raise ReaderError(f"{what}: {path} is not a .npy file (it does not begin with NumPy's header)")
            f.seek(0)
            return np.load(f, allow_pickle=False)
    except ReaderError:
        raise
    except ValueError as e:
        if "pickle" not in str(e):  # a short read: a truncated copy
            raise ReaderError(f"{what}: {path} is not a readable .npy file ({e})") from e
        raise ReaderError(f"{what}: {path} holds pickled Python objects, which pcweak will not load since "
                          f"loading them could run code; save the dict as .json, .npz or a torch file of "
                          f"tensors instead") from e
    except OSError as e:
        raise ReaderError(f"{what}: {path} is not a readable .npy file ({e})") from e


def pickle_load(path: str | os.PathLike, what: str) -> Any:
    """A plain pickle file (mmdetection3d's ``*_infos_*.pkl``) read without running code from it:
    only dicts, lists, tuples, strings, numbers and numpy arrays are rebuilt (the globals of
    ``_allowed_globals`` but Lightning's, numpy's ``_frombuffer``, ``codecs.encode`` and
    ``OrderedDict``); any other global is refused with a ReaderError naming it, as
    ``torch_load`` refuses one."""
    import pickle

    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{what}: {path} not found")
    allowed: dict[str, Any] = {}
    for g in _allowed_globals():
        if isinstance(g, tuple):
            allowed[g[1]] = g[0]
        elif getattr(g, "__module__", "").startswith("numpy"):
            allowed[f"{g.__module__}.{g.__qualname__}"] = g
            allowed[f"numpy.{g.__qualname__}"] = g  # pickles name np.ndarray and np.dtype from the top level
    import codecs
    import collections
    # protocol 2 pickles carry arrays' bytes as latin-1 text re-encoded by codecs.encode
    allowed.update({"_codecs.encode": codecs.encode, "collections.OrderedDict": collections.OrderedDict})
    allowed.update({name: f for f, name in _numpy_core("numeric", ("_frombuffer",))})  # protocol 5: arrays from buffers

    class _Plain(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            key = f"{module}.{name}"
            if key not in allowed:
                raise pickle.UnpicklingError(f"GLOBAL {key}")
            return allowed[key]

    try:
        with open(path, "rb") as f:
            return _Plain(f).load()
    except pickle.UnpicklingError as e:
        import re
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None:
            raise ReaderError(f"{what}: {path} is not a readable pickle file ({str(e)[:300]})") from e
        raise ReaderError(f"{what}: {path} holds an object of type {found.group(1)}; pcweak does not load it, since "
                          f"loading it could run code. Convert the file to JSON (dicts, lists, numbers) instead") from e
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError, MemoryError) as e:
        raise ReaderError(f"{what}: {path} is not a readable pickle file ({type(e).__name__}: {str(e)[:300]})") from e

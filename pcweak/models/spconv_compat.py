"""The one place where pcweak patches spconv 2.x so that its convolutions work on CPU tensors.

spconv's CPU build has four problems, and its CUDA builds a fifth:

1. Backward (and the hash tables) ask ``torch.cuda.current_stream()`` for a stream handle, which
   fails when torch has no CUDA. The CPU kernels ignore the stream, so we hand them the default
   stream handle 0 instead (only when CUDA is unavailable; GPU behaviour is unchanged).
2. In eval mode spconv fuses the bias into the convolution kernel, and its CPU kernels refuse
   that ("cpu don't support act and bias"). On CPU tensors we run the convolution without the
   bias and add it to the output features, exactly what training mode does.
3. spconv reads ``indices`` and ``features`` as contiguous memory without checking; a
   column-major tensor (``torch.nonzero(...).int()`` is one) silently builds a corrupt
   rulebook. ``SparseConvTensor`` is made to store contiguous copies.
4. spconv's CPU ``gather_cpu`` / ``scatter_add_cpu`` kernels race with more than one thread:
   about one forward or backward in a hundred returns wrong features on 2 cores. The CPU
   convolution (gather -> matmul -> scatter-add per kernel offset) gets race-free replacements:
   pcweak's compiled row kernels (``cuda_ops/``, OpenMP over rows; within one kernel offset the
   row indices are unique, so no two threads write one row), or numpy where the ops are not
   built (``PCWEAK_OPS=reference``). ``pcweak bench spconv --json`` times both against spconv's
   own kernels on a training step.
5. A CUDA build of spconv (spconv-cu12x) gives new layers its implicit-GEMM algorithm, which has
   no CPU kernels ("implicit gemm only support cuda"): a model made on a GPU machine cannot run on
   CPU tensors there (CPU inference, the CPU tests). Both algorithms keep the weights in one layout
   (KRSC), so on CPU tensors the layer runs with spconv's native algorithm for that call; CUDA
   tensors keep the layer's own.

``apply()`` is idempotent and runs when ``pcweak.models`` is imported. The fix is proven by
``tests/test_spconv_compat.py`` (forward and gradients against dense ``torch.nn.functional.conv3d``,
on CPU and, on a GPU machine, on CUDA).
"""
from __future__ import annotations

import contextlib
import functools
from typing import Iterator

import numpy as np
import torch

from ..errors import PcweakError

_APPLIED = False


def _stream_shim(original):
    @functools.wraps(original)
    def get_current_stream():
        if not torch.cuda.is_available():
            return 0
        return original()
    get_current_stream.__pcweak_patched__ = True
    return get_current_stream


def _conv_forward_shim(original):
    from spconv.constants import ALL_WEIGHT_IS_KRSC
    from spconv.core import ConvAlgo

    def cpu_forward(self, training, input, weight, bias, *args, **kwargs):
        if (not training and bias is not None
                and getattr(self, "act_type", None) is not None and str(self.act_type).endswith("None_")):
            out = original(self, training, input, weight, None, *args, **kwargs)
            return out.replace_feature(out.features + bias)
        return original(self, training, input, weight, bias, *args, **kwargs)

    @functools.wraps(original)
    def _conv_forward(self, training, input, weight, bias, *args, **kwargs):
        if input.features.is_cuda:
            return original(self, training, input, weight, bias, *args, **kwargs)
        if self.algo == ConvAlgo.Native or not ALL_WEIGHT_IS_KRSC:
            return cpu_forward(self, training, input, weight, bias, *args, **kwargs)
        # a CUDA build's implicit-GEMM layer on CPU tensors: the same KRSC weights, native algorithm
        saved, self.algo = self.algo, ConvAlgo.Native
        try:
            return cpu_forward(self, training, input, weight, bias, *args, **kwargs)
        finally:
            self.algo = saved
    _conv_forward.__pcweak_patched__ = True
    return _conv_forward


def _row_kernels():
    """pcweak's compiled module when its row kernels can be used, else None (numpy then)."""
    from ..ops.extension import compiled
    mod = compiled()
    return mod if mod is not None and hasattr(mod, "gather_rows") else None


_ROW_DTYPES: dict[int, int] = {}  # tensorview dtype -> the kernels' code (0 f32, 1 f64, 2 f16, 3 bf16)
_INDEX_DTYPES: dict[int, bool] = {}  # tensorview dtype -> whether 64-bit


def _row_args(out, src, indices) -> tuple | None:
    """The compiled kernels' arguments for tensorview buffers, or None where they do not apply."""
    if not _ROW_DTYPES:
        import cumm.tensorview as tv
        _ROW_DTYPES.update({tv.float32: 0, tv.float64: 1, tv.float16: 2, tv.bfloat16: 3})
        _INDEX_DTYPES.update({tv.int32: False, tv.int64: True})
    code = _ROW_DTYPES.get(out.dtype)
    if (code is None or src.dtype != out.dtype or indices.dtype not in _INDEX_DTYPES or out.ndim != 2 or src.ndim != 2
            or indices.ndim != 1 or out.shape[1] != src.shape[1] or not (out.is_contiguous() and src.is_contiguous()
                                                                       and indices.is_contiguous())):
        return None
    return (out.byte_pointer(), out.shape[0], src.byte_pointer(), src.shape[0], indices.byte_pointer(), indices.shape[0],
            _INDEX_DTYPES[indices.dtype], out.shape[1], code)


class _SafeCpuOps:
    """Proxy of spconv's ``SpconvOps`` whose CPU gather and scatter-add are race-free."""

    kernels: object | None | bool = False  # False: not looked up yet

    def __init__(self, original) -> None:
        self._original = original

    def __getattr__(self, name):
        return getattr(self._original, name)

    @classmethod
    def _kernels(cls):
        if cls.kernels is False:
            cls.kernels = _row_kernels()
        return cls.kernels

    @classmethod
    def _move_rows(cls, scatter: bool, out, src, indices) -> None:
        """gather (out[i] = src[idx[i]]) or scatter-add (out[idx[i]] += src[i]) over i < len(idx)."""
        mod = cls._kernels()
        args = _row_args(out, src, indices) if mod is not None else None
        if args is not None:
            status = (mod.scatter_add_rows if scatter else mod.gather_rows)(*args)
            if status > 0:
                limit = out.shape[0] if scatter else src.shape[0]
                raise RuntimeError(f"rows ops: {status} indices out of range [0, {limit})")
            if status < 0:
                raise RuntimeError(f"rows ops: {len(indices)} indices do not fit buffers of {out.shape[0]} and {src.shape[0]} rows")
        elif scatter:
            idx = indices.numpy_view()
            out.numpy_view()[idx] += src.numpy_view()[: len(idx)]  # idx unique within a kernel offset
        else:
            idx = indices.numpy_view()
            np.take(src.numpy_view(), idx, axis=0, out=out.numpy_view()[: len(idx)])

    @classmethod
    def gather_cpu(cls, out, src, indices) -> None:
        cls._move_rows(False, out, src, indices)

    @classmethod
    def scatter_add_cpu(cls, out, src, indices) -> None:
        cls._move_rows(True, out, src, indices)


ROW_KERNELS = ("pcweak", "numpy", "spconv")


@contextlib.contextmanager
def use_row_kernels(name: str) -> Iterator[None]:
    """Run spconv's CPU convolutions with one gather/scatter-add implementation, for benchmarks:
    ``pcweak`` (the compiled kernels; an error if they are not built), ``numpy``, or ``spconv``
    (spconv's own kernels, which race on more than one thread: timing only, never training)."""
    if name not in ROW_KERNELS:
        raise ValueError(f"row kernels: expected one of {list(ROW_KERNELS)}, got {name!r}")
    apply()
    from spconv.pytorch import ops
    proxy, before = ops.SpconvOps, _SafeCpuOps.kernels
    if name == "pcweak" and _SafeCpuOps._kernels() is None:
        raise RuntimeError("row kernels 'pcweak': pcweak's compiled ops are not available (PCWEAK_OPS=reference "
                           "or no C++ compiler)")
    try:
        if name == "spconv":
            ops.SpconvOps = proxy._original
        elif name == "numpy":
            _SafeCpuOps.kernels = None
        yield
    finally:
        ops.SpconvOps, _SafeCpuOps.kernels = proxy, before


class SpconvMissing(PcweakError, ImportError):
    """spconv cannot be imported: the sparse-convolution models cannot be built."""


def require_spconv() -> None:
    """``apply()``, or ``SpconvMissing`` saying what to install where spconv cannot be imported
    (pcweak installed without its ``cpu`` extra, or a spconv wheel missing its libraries)."""
    try:
        import spconv.pytorch  # noqa: F401
    except ImportError as e:
        raise SpconvMissing(f"spconv cannot be imported ({e}); the sparse-convolution models need it: pip install "
                            f"spconv (the CPU build; pcweak's `cpu` extra), or on a GPU machine a CUDA build such as "
                            f"spconv-cu126 (scripts/setup.sh installs the one this machine needs)") from e
    apply()


def apply() -> bool:
    """Patch spconv (if installed); returns whether spconv is available."""
    global _APPLIED
    try:
        import spconv.pytorch  # noqa: F401
        from spconv.pytorch import conv, cppcore, hash as sphash, ops
    except ImportError:
        return False
    if _APPLIED:
        return True
    for mod in (cppcore, ops, sphash):
        f = getattr(mod, "get_current_stream", None)
        if f is not None and not getattr(f, "__pcweak_patched__", False):
            mod.get_current_stream = _stream_shim(f)
    from spconv.pytorch import core
    init = core.SparseConvTensor.__init__
    if not getattr(init, "__pcweak_patched__", False):
        @functools.wraps(init)
        def __init__(self, features, indices, *args, **kwargs):
            init(self, features.contiguous(), indices.contiguous(), *args, **kwargs)
        __init__.__pcweak_patched__ = True
        core.SparseConvTensor.__init__ = __init__
    if not isinstance(ops.SpconvOps, _SafeCpuOps):
        ops.SpconvOps = _SafeCpuOps(ops.SpconvOps)
    cls = conv.SparseConvolution
    if not getattr(cls._conv_forward, "__pcweak_patched__", False):
        cls._conv_forward = _conv_forward_shim(cls._conv_forward)
    _APPLIED = True
    return True

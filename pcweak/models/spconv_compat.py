"""The one place where pcweak patches spconv 2.x so that it works on a CPU-only torch.

spconv's CPU build has four problems:

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
   convolution (gather -> matmul -> scatter-add per kernel offset) gets numpy replacements;
   within one kernel offset the row indices are unique, so ``out[idx] += rows`` is exact.

``apply()`` is idempotent and runs when ``pcweak.models`` is imported. The fix is proven by
``tests/test_spconv_compat.py`` (forward and gradients against dense ``torch.nn.functional.conv3d``).
"""
from __future__ import annotations

import functools

import numpy as np
import torch

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
    @functools.wraps(original)
    def _conv_forward(self, training, input, weight, bias, *args, **kwargs):
        if (not training and bias is not None and not input.features.is_cuda
                and getattr(self, "act_type", None) is not None and str(self.act_type).endswith("None_")):
            out = original(self, training, input, weight, None, *args, **kwargs)
            return out.replace_feature(out.features + bias)
        return original(self, training, input, weight, bias, *args, **kwargs)
    _conv_forward.__pcweak_patched__ = True
    return _conv_forward


class _SafeCpuOps:
    """Proxy of spconv's ``SpconvOps`` whose CPU gather and scatter-add are race-free numpy."""

    def __init__(self, original) -> None:
        self._original = original

    def __getattr__(self, name):
        return getattr(self._original, name)

    @staticmethod
    def gather_cpu(out, src, indices) -> None:
        idx = indices.numpy_view()
        np.take(src.numpy_view(), idx, axis=0, out=out.numpy_view()[: len(idx)])

    @staticmethod
    def scatter_add_cpu(out, src, indices) -> None:
        idx = indices.numpy_view()
        out.numpy_view()[idx] += src.numpy_view()[: len(idx)]  # idx unique within a kernel offset


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

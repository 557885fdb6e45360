"""Point-cloud ops on batched clouds: ``ball_query``, ``knn``, ``voxelize``, ``scatter``, ``fps``.

Batches are concatenated point sets with ``offset`` (B,) int64 cumulative counts; no
neighbour ever crosses scenes. Each op runs the compiled kernel from ``cuda_ops/`` (built on
first use: C++/OpenMP with a spatial hash grid on CPU, CUDA where torch has it) or, when that
cannot be built or ``PCWEAK_OPS=reference``, the pure-torch reference in ``reference.py``;
both give identical results (neighbour order is (dist2, index)).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from . import reference
from .extension import backend, compiled

__all__ = ["ball_query", "knn", "voxelize", "scatter", "fps", "backend", "Neighbours", "Voxels"]


class Neighbours(NamedTuple):
    idx: torch.Tensor    # (Q,k) int64, nearest first, -1 padding
    dist2: torch.Tensor  # (Q,k) squared distances, +inf padding


class Voxels(NamedTuple):
    grid_coord: torch.Tensor  # (V,3) int32 voxel coordinates relative to each scene's min corner
    inverse: torch.Tensor     # (N,) int64 voxel of every point
    counts: torch.Tensor      # (V,) int64 points per voxel
    offset: torch.Tensor      # (B,) int64 cumulative voxel counts per scene


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor or numpy array, got {type(x).__name__}")
    return x


def _points(x, name: str) -> torch.Tensor:
    x = _as_tensor(x, name)
    if x.dim() != 2 or x.shape[1] != 3:
        raise ValueError(f"{name}: expected shape (N,3), got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    if x.numel() and not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinite coordinates")
    return x.contiguous()


def _offset(off, n: int, name: str, device) -> torch.Tensor:
    if off is None:
        return torch.tensor([n], dtype=torch.int64, device=device)
    off = _as_tensor(off, name).to(torch.int64).reshape(-1)
    if off.numel() == 0 or int(off[-1]) != n or (off.numel() > 1 and bool((off[1:] < off[:-1]).any())) or int(off[0]) < 0:
        raise ValueError(f"{name}: must be non-decreasing cumulative counts ending at {n}, got {off.tolist()[:8]}")
    return off.to(device)


def _neighbours(support, query, k: int, radius: float | None, support_offset, query_offset) -> Neighbours:
    support = _points(support, "support")
    query = _points(query, "query").to(support.dtype)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if radius is not None and not radius >= 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    so = _offset(support_offset, support.shape[0], "support_offset", support.device)
    qo = _offset(query_offset, query.shape[0], "query_offset", support.device)
    if so.numel() != qo.numel():
        raise ValueError(f"support_offset has {so.numel()} scenes but query_offset has {qo.numel()}")
    mod = compiled()
    if mod is None:
        return Neighbours(*reference.neighbours(support, query, so, qo, k, radius))
    idx, d2 = mod.neighbours(support, query, so, qo, int(k), float(radius or 0.0), radius is not None)
    return Neighbours(idx, d2)


def ball_query(support, query, radius: float, k: int, support_offset=None, query_offset=None) -> Neighbours:
    """Up to ``k`` support points within ``radius`` (inclusive) of each query, nearest first.

    Args: support (S,3), query (Q,3) float32/float64; offsets (B,) int64 (None = one scene).
    Returns ``Neighbours(idx (Q,k) int64 padded with -1, dist2 (Q,k) padded with +inf)``."""
    return _neighbours(support, query, k, float(radius), support_offset, query_offset)


def knn(support, query, k: int, support_offset=None, query_offset=None) -> Neighbours:
    """The ``k`` nearest support points of each query in its scene (ties broken by index)."""
    return _neighbours(support, query, k, None, support_offset, query_offset)


def voxelize(coord, voxel_size: float, offset=None) -> Voxels:
    """Group points into voxels of edge ``voxel_size`` per scene.

    Returns ``Voxels(grid_coord (V,3) int32, inverse (N,) int64, counts (V,), offset (B,))``
    with voxels sorted by (scene, x, y, z); ``grid_coord[inverse]`` is each point's voxel."""
    coord = _points(coord, "coord")
    if not voxel_size > 0:
        raise ValueError(f"voxel_size must be > 0, got {voxel_size}")
    off = _offset(offset, coord.shape[0], "offset", coord.device)
    reference.check_voxel_extent(coord, float(voxel_size), off)
    mod = compiled()
    if mod is None or coord.is_cuda:
        return Voxels(*reference.voxelize(coord, float(voxel_size), off))
    try:
        return Voxels(*mod.voxelize(coord, float(voxel_size), off))
    except RuntimeError as e:
        raise ValueError(str(e).splitlines()[0]) from e


_REDUCE = {"sum": 0, "mean": 1, "max": 2, "min": 3}


class _Scatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, src, index, dim_size, reduce):
        mod = compiled()
        if mod is None:
            out, arg, count = reference.scatter(src, index, dim_size, reduce)
        else:
            out, arg, count = mod.scatter_fwd(src, index, dim_size, _REDUCE[reduce])
        ctx.reduce, ctx.n = reduce, src.shape[0]
        ctx.save_for_backward(index, arg, count)
        ctx.mark_non_differentiable(arg)
        return out, arg

    @staticmethod
    def backward(ctx, grad_out, _grad_arg):
        index, arg, count = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        if ctx.reduce == "sum":
            g = grad_out[index]
        elif ctx.reduce == "mean":
            g = grad_out[index] / count.clamp(min=1)[index][:, None].to(grad_out.dtype)
        else:
            mod = compiled()
            if mod is None:
                g = torch.zeros((ctx.n, grad_out.shape[1]), dtype=grad_out.dtype, device=grad_out.device)
                g.scatter_add_(0, arg.clamp(min=0), grad_out * (arg >= 0).to(grad_out.dtype))
            else:
                g = mod.scatter_arg_bwd(grad_out, arg, ctx.n)
        return g, None, None, None


def scatter(src: torch.Tensor, index: torch.Tensor, dim_size: int | None = None, reduce: str = "sum"):
    """Reduce rows of ``src`` (N,C) or (N,) into ``dim_size`` groups given by ``index`` (N,).

    ``reduce`` in sum, mean, max, min. Returns ``out`` (G,C) for sum/mean and ``(out, arg)``
    for max/min, where ``arg`` (G,C) int64 is the winning row (the first on ties, -1 for empty
    groups, whose output is 0). Differentiable w.r.t. ``src``."""
    src, index = _as_tensor(src, "src"), _as_tensor(index, "index")
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {list(_REDUCE)}, got {reduce!r}")
    squeeze = src.dim() == 1
    if squeeze:
        src = src[:, None]
    if src.dim() != 2:
        raise ValueError(f"src: expected (N,) or (N,C), got {tuple(src.shape)}")
    index = index.to(torch.int64).reshape(-1)
    if index.shape[0] != src.shape[0]:
        raise ValueError(f"index: length {index.shape[0]} does not match src's {src.shape[0]} rows")
    if not src.is_floating_point():
        src = src.float()
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() else 0
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= dim_size):
        raise ValueError(f"index: values must lie in [0, {dim_size})")
    out, arg = _Scatter.apply(src.contiguous(), index.contiguous(), int(dim_size), reduce)
    if squeeze:
        out, arg = out[:, 0], arg[:, 0]
    return out if reduce in ("sum", "mean") else (out, arg)


def fps(coord, n, offset=None) -> torch.Tensor:
    """Farthest point sampling: ``n`` points per scene (int, or (B,) per-scene counts; capped at
    the scene size), starting from each scene's first point. Returns (M,) int64 global indices,
    scene by scene, in sampling order."""
    coord = _points(coord, "coord")
    off = _offset(offset, coord.shape[0], "offset", coord.device)
    sizes = torch.diff(off, prepend=off.new_zeros(1)).cpu()
    want = torch.as_tensor(n, dtype=torch.int64).reshape(-1).cpu()
    if want.numel() == 1:
        want = want.expand_as(sizes)
    if want.numel() != sizes.numel() or (want < 0).any():
        raise ValueError(f"n: expected a non-negative int or one count per scene ({sizes.numel()}), got {n}")
    new_off = torch.cumsum(torch.minimum(want, sizes), 0)
    mod = compiled()
    if mod is None:
        return reference.fps(coord, off.cpu(), new_off)
    return mod.fps(coord, off, new_off).to(coord.device)

"""Pure-torch reference implementations of the ops (brute force, chunked).

They define the semantics the compiled kernels must reproduce exactly and are what the tests
compare against; they also run wherever the extension cannot be built.
"""
from __future__ import annotations

import torch


def _segments(offset: torch.Tensor) -> list[tuple[int, int]]:
    o = [0] + [int(x) for x in offset.tolist()]
    return list(zip(o[:-1], o[1:]))


def pairwise_dist2(q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """(Q,S) squared distances evaluated as dx*dx + dy*dy + dz*dz (the kernels' rounding)."""
    d = q[:, None, :] - s[None, :, :]
    return (d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]) + d[..., 2] * d[..., 2]


def neighbours(support: torch.Tensor, query: torch.Tensor, support_offset: torch.Tensor, query_offset: torch.Tensor,
               k: int, radius: float | None, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest support points of each query within its scene (and within ``radius``).

    Returns idx (Q,k) int64 ordered by (dist2, index), padded with -1, and dist2 (Q,k) padded
    with +inf."""
    nq = query.shape[0]
    idx = torch.full((nq, k), -1, dtype=torch.int64, device=query.device)
    d2 = torch.full((nq, k), float("inf"), dtype=query.dtype, device=query.device)
    if k == 0:
        return idx, d2
    r2 = None if radius is None else torch.tensor(radius * radius, dtype=query.dtype)
    for (s0, s1), (q0, q1) in zip(_segments(support_offset), _segments(query_offset)):
        if s1 <= s0 or q1 <= q0:
            continue
        s = support[s0:s1]
        for c0 in range(q0, q1, chunk):
            c1 = min(c0 + chunk, q1)
            d = pairwise_dist2(query[c0:c1], s)
            if r2 is not None:
                d = torch.where(d <= r2, d, torch.full_like(d, float("inf")))
            vals, order = torch.sort(d, dim=1, stable=True)  # stable: ties by index
            kk = min(k, s.shape[0])
            vals, order = vals[:, :kk], order[:, :kk]
            ok = torch.isfinite(vals)
            idx[c0:c1, :kk] = torch.where(ok, order + s0, torch.full_like(order, -1))
            d2[c0:c1, :kk] = vals
    return idx, d2


VOXEL_AXIS = 1 << 18  # voxels along one axis of one scene: the kernels' keys hold 18 bits a coordinate


def check_voxel_extent(coord: torch.Tensor, voxel_size: float, offset: torch.Tensor) -> None:
    """ValueError when a scene of ``coord`` (N,3) spans ``VOXEL_AXIS`` voxels or more along an
    axis: checked before any kernel runs. One min/max over the whole cloud decides for nearly every
    input; the scenes are looked at one by one only when the whole cloud is that wide."""
    if coord.shape[0] == 0:
        return
    lo, hi = coord.min(0).values, coord.max(0).values  # on CPU a tenth of amin(0) and amax(0)'s time (docs/results.md)
    if bool(((hi.double() - lo.double()) / voxel_size < VOXEL_AXIS - 1).all()):
        return
    c = coord.double()
    for b, (s, e) in enumerate(_segments(offset)):
        if e > s and bool((torch.floor((c[s:e] - c[s:e].amin(0)) / voxel_size) >= VOXEL_AXIS).any()):
            raise ValueError(f"voxelize: scene {b} spans more than {VOXEL_AXIS} voxels along an axis "
                             f"({voxel_size:g} each); use a larger voxel_size")


def voxelize(coord: torch.Tensor, voxel_size: float, offset: torch.Tensor):
    """Grid (V,3) int32 relative to each scene's min corner, inverse (N,), counts (V,), voxel
    offset (B,); voxels sorted by (scene, x, y, z). Scenes must pass ``check_voxel_extent``."""
    c = coord.double()
    keys = torch.empty(c.shape[0], dtype=torch.int64, device=coord.device)
    for b, (s, e) in enumerate(_segments(offset)):
        if e <= s:
            continue
        g = torch.floor((c[s:e] - c[s:e].min(0).values) / voxel_size).long()
        keys[s:e] = (b << 54) | (g[:, 0] << 36) | (g[:, 1] << 18) | g[:, 2]
    uniq, inverse, counts = torch.unique(keys, sorted=True, return_inverse=True, return_counts=True)
    m = (1 << 18) - 1
    grid = torch.stack([(uniq >> 36) & m, (uniq >> 18) & m, uniq & m], 1).int()
    voff = torch.cumsum(torch.bincount(uniq >> 54, minlength=offset.shape[0]), 0)
    return grid, inverse, counts, voff


def scatter(src: torch.Tensor, index: torch.Tensor, dim_size: int, reduce: str):
    """out (G,C), arg (G,C) (max/min: first winning row, -1 for empty groups), count (G,)."""
    G, C = dim_size, src.shape[1]
    count = torch.bincount(index, minlength=G)
    arg = torch.full((G, C), -1, dtype=torch.int64, device=src.device)
    idx2 = index[:, None].expand_as(src)
    if reduce in ("sum", "mean"):
        out = torch.zeros((G, C), dtype=src.dtype, device=src.device).scatter_add_(0, idx2, src)
        if reduce == "mean":
            out = out / count.clamp(min=1)[:, None].to(src.dtype)
        return out, arg, count
    red = "amax" if reduce == "max" else "amin"
    out = torch.zeros((G, C), dtype=src.dtype, device=src.device).scatter_reduce_(0, idx2, src, red, include_self=False)
    rows = torch.arange(src.shape[0], device=src.device)[:, None].expand_as(src)
    winner = src == out[index]
    cand = torch.where(winner, rows, torch.full_like(rows, src.shape[0]))
    arg = torch.full((G, C), src.shape[0], dtype=torch.int64, device=src.device).scatter_reduce_(0, idx2, cand, "amin", include_self=True)
    arg = torch.where(count[:, None] > 0, arg, torch.full_like(arg, -1))
    return out, arg, count


def fps(coord: torch.Tensor, offset: torch.Tensor, new_offset: torch.Tensor) -> torch.Tensor:
    """Farthest point sampling per scene, starting at the scene's first point; ties -> lower index."""
    out = []
    for (s, e), (o0, o1) in zip(_segments(offset), _segments(new_offset)):
        m = o1 - o0
        if m <= 0 or e <= s:
            continue
        p = coord[s:e]
        mind = torch.full((e - s,), float("inf"), dtype=coord.dtype, device=coord.device)
        cur = 0
        sel = [s]
        for _ in range(1, m):
            d = p - p[cur]
            d = (d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]) + d[:, 2] * d[:, 2]
            mind = torch.minimum(mind, d)
            cur = int(torch.argmax(mind))
            sel.append(s + cur)
        out.append(torch.tensor(sel, dtype=torch.int64, device=coord.device))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64, device=coord.device)

"""SECOND-style sparse voxel backbone -> bird's-eye-view map -> anchor-free centre head.

Voxels (mean x, y, z, intensity) -> submanifold stem -> strided sparse stages (three: x8 in
x/y) -> dense BEV map (channels x height folded) -> 2D convs -> per-class centre heatmap and
regression (sub-cell offset 2, z 1, log size 3, sin/cos yaw 2) per BEV cell.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import spconv_compat

spconv_compat.require_spconv()
import spconv.pytorch as spconv  # noqa: E402


def _block(cin: int, cout: int, stride: int, key: str):
    conv = (spconv.SparseConv3d(cin, cout, 3, stride=stride, padding=1, bias=False, indice_key=key) if stride > 1
            else spconv.SubMConv3d(cin, cout, 3, padding=1, bias=False, indice_key=key))
    return spconv.SparseSequential(conv, nn.BatchNorm1d(cout), nn.ReLU(inplace=True))


def to_dense(x: "spconv.SparseConvTensor") -> torch.Tensor:
    """``x`` as a dense (B, C, *spatial_shape) tensor, zeros where no site is active: what
    spconv's ``.dense()`` gives, written with a tuple index (its own indexes with a list, which
    torch warns about on every call)."""
    f, idx = x.features, x.indices.long()
    out = f.new_zeros((x.batch_size, *x.spatial_shape, f.shape[1]))
    out[tuple(idx.unbind(1))] = f
    return out.movedim(-1, 1).contiguous()


class SecondCenter(nn.Module):
    """``grid`` (nx, ny, nz) voxels over the range. ``channels``: the stem's width, then one
    strided stage (x2 in x, y and z) per further entry, so the output stride in x and y
    (``stride``) is 2 ** (len(channels) - 1): 8 for SECOND's four widths, 4 for three."""

    def __init__(self, grid: Sequence[int], in_channels: int = 4, num_classes: int = 3,
                 channels: Sequence[int] = (16, 32, 64, 64), bev_channels: int = 128) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"channels: the stem's width and at least one strided stage's, got {list(channels)}")
        self.grid = tuple(int(g) for g in grid)
        blocks = [_block(in_channels, channels[0], 1, "s0"), _block(channels[0], channels[0], 1, "s0")]
        for k in range(1, len(channels)):
            blocks += [_block(channels[k - 1], channels[k], 2, f"d{k}"), _block(channels[k], channels[k], 1, f"s{k}")]
        self.sparse = spconv.SparseSequential(*blocks)
        self.stride = 2 ** (len(channels) - 1)
        nz = self.grid[2]
        for _ in range(len(channels) - 1):
            nz = (nz - 1) // 2 + 1
        c3 = channels[-1]
        self.bev = nn.Sequential(nn.Conv2d(c3 * nz, bev_channels, 3, padding=1, bias=False), nn.BatchNorm2d(bev_channels), nn.ReLU(inplace=True),
                                 nn.Conv2d(bev_channels, bev_channels, 3, padding=1, bias=False), nn.BatchNorm2d(bev_channels), nn.ReLU(inplace=True))
        self.heatmap = nn.Conv2d(bev_channels, num_classes, 1)
        self.reg = nn.Conv2d(bev_channels, 8, 1)
        nn.init.constant_(self.heatmap.bias, -2.19)  # prior 0.1 (CenterNet)

    def forward(self, feat: torch.Tensor, coord: torch.Tensor, batch: torch.Tensor, batch_size: int):
        """feat (V,C), coord (V,3) int voxel (x,y,z), batch (V,) -> heatmap logits (B,K,Y,X), reg (B,8,Y,X)."""
        nx, ny, nz = self.grid
        idx = torch.stack([batch, coord[:, 2], coord[:, 1], coord[:, 0]], 1).int().contiguous()
        x = spconv.SparseConvTensor(feat.contiguous(), idx, [nz, ny, nx], batch_size)
        d = to_dense(self.sparse(x))  # (B, C, Z', Y', X')
        B, C, Z, Y, X = d.shape
        m = self.bev(d.reshape(B, C * Z, Y, X))
        return self.heatmap(m), self.reg(m)

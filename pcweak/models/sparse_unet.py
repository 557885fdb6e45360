"""SparseUNet family on spconv 2.x (SpUNet-14/18/34 style).

A 5x5x5 submanifold stem, four encoder stages (strided 2x2x2 sparse conv down, residual
submanifold blocks), four decoder stages (inverse conv up, concatenation with the skip,
residual blocks) and a linear head; batch norm everywhere. ``layers`` sets the blocks per
stage: (1,)*8 = SpUNet-14, (2,)*8 = SpUNet-18, (2,3,4,6,2,2,2,2) = SpUNet-34.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import spconv_compat

spconv_compat.require_spconv()
import spconv.pytorch as spconv  # noqa: E402

PRESETS = {"spunet14": (1, 1, 1, 1, 1, 1, 1, 1), "spunet18": (2, 2, 2, 2, 2, 2, 2, 2), "spunet34": (2, 3, 4, 6, 2, 2, 2, 2)}


class BasicBlock(spconv.SparseModule):
    """Two 3x3x3 submanifold convs with batch norm and a residual connection."""

    def __init__(self, cin: int, cout: int, key: str) -> None:
        super().__init__()
        self.proj = None if cin == cout else spconv.SparseSequential(spconv.SubMConv3d(cin, cout, 1, bias=False), nn.BatchNorm1d(cout))
        self.conv1 = spconv.SubMConv3d(cin, cout, 3, padding=1, bias=False, indice_key=key)
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = spconv.SubMConv3d(cout, cout, 3, padding=1, bias=False, indice_key=key)
        self.bn2 = nn.BatchNorm1d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x if self.proj is None else self.proj(x)
        out = self.conv1(x)
        out = out.replace_feature(self.relu(self.bn1(out.features)))
        out = self.conv2(out)
        out = out.replace_feature(self.relu(self.bn2(out.features) + identity.features))
        return out


class SpUNet(nn.Module):
    """Sparse U-Net: per-voxel logits (V, num_classes) from a batch of voxels.

    Args:
        in_channels: feature channels per voxel (e.g. 6 for rgb + normal, 3 for rgb).
        num_classes: output classes; 0 for no classifier (``forward`` then returns the
            features, for a head of the caller's own); ``extra_head`` > 0 adds a second head
            with that many outputs per voxel (instance offsets: 3).
        base_channels / channels: stem width and the 8 stage widths (4 down, 4 up).
        layers: residual blocks per stage, or a preset name in ``PRESETS``.
    """

    def __init__(self, in_channels: int = 6, num_classes: int = 20, base_channels: int = 32,
                 channels: Sequence[int] = (32, 64, 128, 256, 256, 128, 96, 96),
                 layers: Sequence[int] | str = "spunet18", extra_head: int = 0) -> None:
        super().__init__()
        if isinstance(layers, str):
            if layers not in PRESETS:
                raise ValueError(f"layers: unknown preset {layers!r}; one of {sorted(PRESETS)} or 8 numbers")
            layers = PRESETS[layers]
        if len(channels) != 8 or len(layers) != 8:
            raise ValueError("channels and layers need 8 entries (4 encoder + 4 decoder stages)")
        self.num_classes = num_classes
        self.stem = spconv.SparseSequential(
            spconv.SubMConv3d(in_channels, base_channels, 5, padding=2, bias=False, indice_key="stem"),
            nn.BatchNorm1d(base_channels), nn.ReLU(inplace=True))
        enc_ch = [base_channels] + list(channels[:4])
        self.down, self.enc = nn.ModuleList(), nn.ModuleList()
        for s in range(4):
            self.down.append(spconv.SparseSequential(
                spconv.SparseConv3d(enc_ch[s], enc_ch[s + 1], 2, stride=2, bias=False, indice_key=f"down{s}"),
                nn.BatchNorm1d(enc_ch[s + 1]), nn.ReLU(inplace=True)))
            self.enc.append(spconv.SparseSequential(*[BasicBlock(enc_ch[s + 1], enc_ch[s + 1], f"subm{s + 1}") for _ in range(layers[s])]))
        self.up, self.dec = nn.ModuleList(), nn.ModuleList()
        prev = enc_ch[4]
        for i, s in enumerate(range(3, -1, -1)):
            cout = channels[4 + i]
            self.up.append(spconv.SparseSequential(
                spconv.SparseInverseConv3d(prev, cout, 2, bias=False, indice_key=f"down{s}"),
                nn.BatchNorm1d(cout), nn.ReLU(inplace=True)))
            blocks = [BasicBlock(cout + enc_ch[s], cout, f"subm{s}")] + [BasicBlock(cout, cout, f"subm{s}") for _ in range(layers[4 + i] - 1)]
            self.dec.append(spconv.SparseSequential(*blocks))
            prev = cout
        self.out_channels = prev
        # no classifier without classes: a parameter no loss reaches stops a distributed (DDP) step
        self.head = nn.Linear(prev, num_classes) if num_classes else None
        self.extra = nn.Sequential(nn.Linear(prev, prev), nn.BatchNorm1d(prev), nn.ReLU(inplace=True), nn.Linear(prev, extra_head)) if extra_head else None

    def forward(self, feat: torch.Tensor, grid_coord: torch.Tensor, batch: torch.Tensor, batch_size: int):
        """feat (V,C) float, grid_coord (V,3) int, batch (V,) int -> logits (V,num_classes), or
        the (V,out_channels) features without a classifier (and the extra head's (V,E) output
        when configured)."""
        x = self.features(feat, grid_coord, batch, batch_size)
        logits = self.head(x) if self.head is not None else x
        if self.extra is not None:
            return logits, self.extra(x)
        return logits

    def features(self, feat: torch.Tensor, grid_coord: torch.Tensor, batch: torch.Tensor, batch_size: int) -> torch.Tensor:
        """The last decoder stage's (V, out_channels) features, before the heads."""
        idx = torch.cat([batch[:, None], grid_coord], 1).int().contiguous()
        shape = (grid_coord.max(0).values + 1).tolist() if len(grid_coord) else [1, 1, 1]
        shape = [max(int(s), 16) + 16 - max(int(s), 16) % 16 for s in shape]  # room for four 2x downsamplings
        x = spconv.SparseConvTensor(feat.contiguous(), idx, shape, batch_size)
        x = self.stem(x)
        skips = [x]
        for down, enc in zip(self.down, self.enc):
            x = enc(down(x))
            skips.append(x)
        skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = up(x)
            skip = skips.pop()
            x = x.replace_feature(torch.cat([x.features, skip.features], 1))
            x = dec(x)
        return x.features

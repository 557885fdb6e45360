"""Per-point classification over a voxel backbone.

A voxel network gives one prediction per voxel, so every point of a voxel holding two classes
(a floor and the foot of a wall, a picture on a wall) gets the same one. ``PointHead`` reads each
point's voxel features (V, C) gathered to the point, its own input features and its offset from
its voxel's centre (``OFFSET_WIDTH`` values, in voxel units), and gives (N, num_classes) logits.
"""
from __future__ import annotations

import torch
from torch import nn

OFFSET_WIDTH = 3  # a point's offset from its voxel's centre, x y z in voxel units, in [-0.5, 0.5)


class PointHead(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Linear over [voxel features, point features, offset].

    Args:
        voxel_channels: C of the backbone's (V, C) features.
        point_channels: F of the (N, F) point input features (without the offset).
        num_classes: outputs per point.
    """

    def __init__(self, voxel_channels: int, point_channels: int, num_classes: int) -> None:
        super().__init__()
        c = voxel_channels
        self.mlp = nn.Sequential(nn.Linear(c + point_channels + OFFSET_WIDTH, c), nn.BatchNorm1d(c), nn.ReLU(inplace=True),
                                 nn.Linear(c, num_classes))

    def forward(self, voxel_features: torch.Tensor, inverse: torch.Tensor, point_features: torch.Tensor) -> torch.Tensor:
        """voxel_features (V,C) float, inverse (N,) int64 voxel of each point, point_features
        (N, F + OFFSET_WIDTH) float -> (N, num_classes) logits."""
        return self.mlp(torch.cat([voxel_features[inverse], point_features], 1))

"""Feature fusion block (FFB), the paper's Fig. 2 (after FishFSRNet's refine block).

In the teacher's decoder the current feature F meets the encoder feature F_p
kept at the same resolution. Their difference D = F - F_p is what the decoder
has lost or invented; a projection function (two residual blocks) turns it
into a correction that is added back to F, and a channel gate pooled by
average, max and variance re-weights the result.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv3


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip (FishFSRNet's refine unit)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3(channels, channels), nn.ReLU(inplace=True), conv3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class StatChannelAttention(nn.Module):
    """Channel gate from average, max and variance pooling through one shared MLP, summed."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3), keepdim=True)
        mx = x.amax(dim=(2, 3), keepdim=True)
        var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
        return x * torch.sigmoid(self.mlp(avg) + self.mlp(mx) + self.mlp(var))


class FFB(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.project = nn.Sequential(ResBlock(channels), ResBlock(channels))
        self.attention = StatChannelAttention(channels)

    def forward(self, x: torch.Tensor, retained: torch.Tensor) -> torch.Tensor:
        return self.attention(x + self.project(x - retained))

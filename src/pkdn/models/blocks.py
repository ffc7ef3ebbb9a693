"""Building blocks shared by the teacher and the student (RCAN-style).

Conventions: every block maps (B, C, H, W) -> (B, C, H', W'); 3 x 3 convs keep
the size (padding 1); attention modules return the re-weighted input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class ChannelAttention(nn.Module):
    """RCAN channel attention: global average pool -> C/r -> ReLU -> C -> sigmoid gate.

    The gate's weights keep RCAN's layout (two 1 x 1 convs, so checkpoints
    match), but are applied as matrix products on the pooled (B, C) vector:
    the same maths without the convolution machinery, which dominates the
    cost of a 1 x 1 conv on a 1 x 1 map.
    """

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeeze, excite = self.gate[0], self.gate[2]
        s = x.mean(dim=(2, 3))
        s = F.relu(F.linear(s, squeeze.weight.flatten(1), squeeze.bias))
        g = torch.sigmoid(F.linear(s, excite.weight.flatten(1), excite.bias))
        return x * g[:, :, None, None]


class SpatialAttention(nn.Module):
    """CBAM spatial attention: channel-wise mean and max -> 7 x 7 conv -> sigmoid gate."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(stats))


class RCAB(nn.Module):
    """Residual channel attention block: conv-ReLU-conv, channel attention, identity skip."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3(channels, channels),
            nn.ReLU(inplace=True),
            conv3(channels, channels),
            ChannelAttention(channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RCAG(nn.Module):
    """Residual channel attention group: cascaded RCABs, a closing conv, and a group skip."""

    def __init__(self, channels: int, n_blocks: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[RCAB(channels, reduction) for _ in range(n_blocks)], conv3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DownBlock(nn.Module):
    """Halve the resolution without discarding pixels: inverse pixel shuffle (C -> 4C), conv 4C -> C."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.PixelUnshuffle(2), conv3(4 * channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpBlock(nn.Module):
    """Double the resolution: conv C -> 4C, pixel shuffle (4C -> C)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3(channels, 4 * channels), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

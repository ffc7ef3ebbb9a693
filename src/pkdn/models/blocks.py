"""Building blocks shared by the teacher and the student (RCAN-style).

Conventions: every block maps (B, C, H, W) -> (B, C, H', W'); 3 x 3 convs keep
the size (padding 1); attention modules return the re-weighted input.
"""
from __future__ import annotations

import torch
from torch import nn


def conv3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class ChannelAttention(nn.Module):
    """RCAN channel attention: global average pool -> C/r -> ReLU -> C -> sigmoid gate."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.gate = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.pool(x))


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
            conv3(channels, channels), nn.ReLU(inplace=True), conv3(channels, channels),
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

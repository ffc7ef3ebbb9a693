"""Parsing map fusion block (PFB), the paper's section 3.3 and Fig. 3.

The parsing map is resized (nearest) to the feature's grid; two convs project
feature and map into a common domain; a fusion conv mixes their concatenation;
channel and spatial attention look at the fused feature in parallel; a second
fusion conv combines the two views, and the result is added to the input
feature, so a PFB is a residual block conditioned on the facial layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ChannelAttention, SpatialAttention, conv3


def parsing_at(parsing: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The parsing map on a feature grid of ``size`` (nearest: class maps must stay crisp)."""
    if tuple(parsing.shape[-2:]) == tuple(size):
        return parsing
    return F.interpolate(parsing, size=size, mode="nearest")


class PFB(nn.Module):
    def __init__(self, channels: int, parsing_channels: int, reduction: int) -> None:
        super().__init__()
        self.project_feature = conv3(channels, channels)
        self.project_parsing = conv3(parsing_channels, channels)
        self.fuse_in = nn.Sequential(conv3(2 * channels, channels), nn.ReLU(inplace=True))
        self.channel_attention = ChannelAttention(channels, reduction)
        self.spatial_attention = SpatialAttention()
        self.fuse_out = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor, parsing: torch.Tensor) -> torch.Tensor:
        p = parsing_at(parsing, (x.shape[-2], x.shape[-1]))
        fused = self.fuse_in(torch.cat([self.project_feature(x), self.project_parsing(p)], dim=1))
        attended = torch.cat([self.channel_attention(fused), self.spatial_attention(fused)], dim=1)
        return x + self.fuse_out(attended)


class PFBGroup(nn.Module):
    """A teacher stage: cascaded PFBs, a closing conv and a group skip (the RCAG's shape)."""

    def __init__(self, channels: int, parsing_channels: int, n_blocks: int, reduction: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([PFB(channels, parsing_channels, reduction) for _ in range(n_blocks)])
        self.tail = conv3(channels, channels)

    def forward(self, x: torch.Tensor, parsing: torch.Tensor) -> torch.Tensor:
        p = parsing_at(parsing, (x.shape[-2], x.shape[-1]))
        h = x
        for block in self.blocks:
            h = block(h, p)
        return x + self.tail(h)

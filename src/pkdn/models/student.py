"""The student: an RCAG encoder-decoder that sees the LR face only."""

from __future__ import annotations

import torch
from torch import nn

from .base import SRNet
from .blocks import RCAG, DownBlock, UpBlock
from .config import ModelConfig


class Student(SRNet):
    """head -> [down, RCAG] x L -> RCAG -> [up, RCAG] x L -> tail (+ bicubic input).

    Returns the SR image and the 2L + 1 stage outputs (encoder, bottleneck,
    decoder), the features the teacher's are distilled into.
    """

    def __init__(self, config: ModelConfig) -> None:
        if config.kind != "student":
            raise ValueError(f"Student needs a student config, got kind={config.kind!r}")
        super().__init__(config)
        c, n, r, levels = config.channels, config.blocks, config.reduction, config.levels
        self.down = nn.ModuleList([DownBlock(c) for _ in range(levels)])
        self.encoder = nn.ModuleList([RCAG(c, n, r) for _ in range(levels)])
        self.bottleneck = RCAG(c, n, r)
        self.up = nn.ModuleList([UpBlock(c) for _ in range(levels)])
        self.decoder = nn.ModuleList([RCAG(c, n, r) for _ in range(levels)])

    def forward(self, lr: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        grid = self.lr_to_grid(lr)
        h = self.head(grid)
        feats = []
        for down, stage in zip(self.down, self.encoder):
            h = stage(down(h))
            feats.append(h)
        h = self.bottleneck(h)
        feats.append(h)
        for up, stage in zip(self.up, self.decoder):
            h = stage(up(h))
            feats.append(h)
        return self.output(h, grid), feats

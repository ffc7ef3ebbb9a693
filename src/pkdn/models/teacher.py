"""The teacher: sees the LR face and the HR face's parsing map.

Full PKDN: PFB stages fuse the parsing map at every scale, and in the decoder
an FFB fuses each upsampled feature with the encoder feature retained at the
same resolution (the head's output at full resolution). Ablations of the
paper's Table 2: ``use_pfb=False`` turns the stages into RCAGs and feeds the
parsing map at the input only (concatenated to the image, as KDFSRNet did);
``use_ffb=False`` drops the FFBs.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import SRNet
from .blocks import RCAG, DownBlock, UpBlock
from .config import ModelConfig
from .ffb import FFB
from .pfb import PFBGroup


class Teacher(SRNet):
    def __init__(self, config: ModelConfig) -> None:
        if config.kind != "teacher":
            raise ValueError(f"Teacher needs a teacher config, got kind={config.kind!r}")
        in_channels = 3 if config.use_pfb else 3 + config.parsing_channels
        super().__init__(config, in_channels=in_channels)
        c, n, r, levels, cp = config.channels, config.blocks, config.reduction, config.levels, config.parsing_channels

        def stage() -> nn.Module:
            return PFBGroup(c, cp, n, r) if config.use_pfb else RCAG(c, n, r)

        self.down = nn.ModuleList([DownBlock(c) for _ in range(levels)])
        self.encoder = nn.ModuleList([stage() for _ in range(levels)])
        self.bottleneck = stage()
        self.up = nn.ModuleList([UpBlock(c) for _ in range(levels)])
        self.fuse = nn.ModuleList([FFB(c) for _ in range(levels)]) if config.use_ffb else None
        self.decoder = nn.ModuleList([stage() for _ in range(levels)])

    def _stage(self, stage: nn.Module, h: torch.Tensor, parsing: torch.Tensor) -> torch.Tensor:
        return stage(h, parsing) if self.config.use_pfb else stage(h)

    def forward(self, lr: torch.Tensor, parsing: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        grid = self.lr_to_grid(lr)
        if parsing.dim() != 4 or parsing.shape[0] != lr.shape[0] or parsing.shape[1] != self.config.parsing_channels:
            raise ValueError(
                f"expected a parsing map of shape ({lr.shape[0]}, {self.config.parsing_channels}, H, W), "
                f"got {tuple(parsing.shape)}"
            )
        if parsing.shape[-2:] != grid.shape[-2:]:
            raise ValueError(f"parsing map is {tuple(parsing.shape[-2:])}, the HR grid is {tuple(grid.shape[-2:])}")
        h = self.head(grid if self.config.use_pfb else torch.cat([grid, parsing], dim=1))
        retained = [h]
        feats = []
        for down, stage in zip(self.down, self.encoder):
            h = self._stage(stage, down(h), parsing)
            feats.append(h)
            retained.append(h)
        h = self._stage(self.bottleneck, h, parsing)
        feats.append(h)
        retained.pop()  # the deepest encoder feature is the bottleneck's own input
        for i, (up, stage) in enumerate(zip(self.up, self.decoder)):
            h = up(h)
            if self.fuse is not None:
                h = self.fuse[i](h, retained.pop())
            h = self._stage(stage, h, parsing)
            feats.append(h)
        return self.output(h, grid), feats

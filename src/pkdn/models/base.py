"""What the teacher and the student share: LR -> HR-grid input, size checks, output head."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv3
from .config import ModelConfig
from .resize import BicubicUpsample


class SRNet(nn.Module):
    """Encoder-decoder on the HR grid. Subclasses build the stages and ``forward``."""

    def __init__(self, config: ModelConfig, in_channels: int = 3) -> None:
        super().__init__()
        self.config = config
        self.upsample = BicubicUpsample(config.scale)
        self.head = conv3(in_channels, config.channels)
        self.tail = conv3(config.channels, 3)

    def lr_to_grid(self, lr: torch.Tensor) -> torch.Tensor:
        """Bicubic-upsample the LR batch to the HR grid, after checking it fits the encoder."""
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected an LR batch of shape (B, 3, h, w), got {tuple(lr.shape)}")
        c = self.config
        h, w = lr.shape[-2] * c.scale, lr.shape[-1] * c.scale
        step = 2**c.levels
        if h % step or w % step:
            raise ValueError(
                f"LR size {lr.shape[-2]}x{lr.shape[-1]}: its x{c.scale} grid {h}x{w} must be divisible by "
                f"{step}; pad the LR image (pkdn's inference does) or crop it"
            )
        return self.upsample(lr)

    def output(self, h: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        sr = self.tail(h)
        return sr + grid if self.config.global_residual else sr

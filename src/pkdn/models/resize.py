"""Bicubic resizing that matches PIL, as a fixed linear operator.

The data pipeline degrades and upsamples with PIL (the literature's
convention), so the networks' internal LR -> HR upsampling must be PIL's
bicubic too, not torch's (which uses a different kernel, a = -0.75). A resize
is separable: PIL resizes the width first, stores that pass as 8-bit (clipping
any overshoot to [0, 255]), then resizes the height. ``resize`` does the same
with PIL's weights in two matrices and a clamp between the passes, so on RGB
images in [0, 1] it matches PIL's 8-bit bicubic resize to within one level
(1/255), rounding aside.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn


def _pil_bicubic(x: float, a: float = -0.5) -> float:
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


@lru_cache(maxsize=64)
def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float64 matrix of PIL's bicubic weights (antialiased when shrinking)."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        w = [_pil_bicubic((x - center + 0.5) / filterscale) for x in range(lo, hi)]
        total = sum(w)
        for x, wx in zip(range(lo, hi), w):
            m[i, x] = wx / total
    return m


def resize(x: torch.Tensor, size: tuple[int, int], clamp: bool = True) -> torch.Tensor:
    """Resize a (..., H, W) tensor in [0, 1] to ``size`` = (H', W') as PIL's bicubic does.

    ``clamp`` clips the intermediate (width) pass to [0, 1] like PIL's 8-bit
    buffer; turn it off for data that is not an image in [0, 1].
    """
    ah = resize_matrix(x.shape[-2], size[0]).to(device=x.device, dtype=x.dtype)
    aw = resize_matrix(x.shape[-1], size[1]).to(device=x.device, dtype=x.dtype)
    y = x @ aw.transpose(0, 1)
    if clamp:
        y = y.clamp(0.0, 1.0)
    return ah @ y


class BicubicUpsample(nn.Module):
    """x``scale`` PIL-bicubic upsampling (no parameters)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize(x, (x.shape[-2] * self.scale, x.shape[-1] * self.scale))

"""PSNR and SSIM under one protocol, stated below and in docs/evaluation.md.

Protocol (the convention of DIC and BasicSR's ``test_y_channel``), applied to
every number the project reports:

* both images are clamped to [0, 1] and rounded to 8 bits (the HR images come
  from 8-bit files, so for them this is a no-op; for a network output it is
  what writing a PNG would do);
* the Y channel of YCbCr, ITU-R BT.601: ``Y = 16 + (65.481 R + 128.553 G +
  24.966 B) / 255`` for R, G, B in [0, 1], so Y is in [16, 235] on a 0..255
  scale (kept as floating point, not rounded);
* an ``border``-pixel border (8 by default) cropped from every side;
* PSNR with a peak of 255; SSIM with an 11 x 11 Gaussian window (sigma 1.5),
  ``C1 = (0.01 * 255) ** 2``, ``C2 = (0.03 * 255) ** 2``, population
  (not sample) statistics, averaged over the positions where the window fits
  entirely inside the cropped image;
* scores are per image; a data set's score is the mean of its images' scores.

This module knows tensors only: ``(B, 3, H, W)`` or ``(3, H, W)`` RGB in
[0, 1], any float dtype, any device. Computation is float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PROTOCOL = (
    "Y channel (BT.601), 8-px border cropped, SR clamped and rounded to 8 bits, "
    "SSIM 11x11 Gaussian window (sigma 1.5), data range 255, mean over images"
)

Y_WEIGHTS = (65.481, 128.553, 24.966)


def _batched(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an RGB tensor (B, 3, H, W) or (3, H, W), got shape {tuple(x.shape)}")
    return x


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the nearest of the 256 8-bit levels (values stay in [0, 1])."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of RGB in [0, 1]: ``(B, 3, H, W) -> (B, 1, H, W)`` on the 0..255 scale ([16, 235])."""
    x = _batched(x).to(torch.float64)
    w = torch.tensor(Y_WEIGHTS, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    return 16.0 + (x * w).sum(dim=1, keepdim=True)


def _prepare(sr: torch.Tensor, hr: torch.Tensor, border: int) -> tuple[torch.Tensor, torch.Tensor]:
    sr, hr = _batched(sr), _batched(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"SR and HR shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    h, w = sr.shape[-2:]
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"image {h}x{w} too small for a {border}-px border crop")
    ys = rgb_to_y(quantize(sr.detach().to(torch.float64)))
    yh = rgb_to_y(quantize(hr.detach().to(torch.float64).to(sr.device)))
    if border > 0:
        ys = ys[..., border:-border, border:-border]
        yh = yh[..., border:-border, border:-border]
    return ys, yh


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, border: int = 8) -> torch.Tensor:
    """Per-image PSNR (dB) under the protocol: a float64 tensor of shape (B,); ``inf`` where identical."""
    ys, yh = _prepare(sr, hr, border)
    mse = (ys - yh).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``size`` taps (float64)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, border: int = 8, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM under the protocol: a float64 tensor of shape (B,)."""
    ys, yh = _prepare(sr, hr, border)
    if min(ys.shape[-2:]) < window:
        raise ValueError(f"cropped image {tuple(ys.shape[-2:])} smaller than the {window}x{window} SSIM window")
    g = gaussian_window(window, sigma).to(ys.device)
    gh, gw = g.view(1, 1, window, 1), g.view(1, 1, 1, window)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable, 'valid' positions only
        return F.conv2d(F.conv2d(t, gh), gw)

    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    stack = torch.cat([ys, yh, ys * ys, yh * yh, ys * yh], dim=0)
    b = ys.shape[0]
    mu_x, mu_y, xx, yy, xy = blur(stack).split(b, dim=0)
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).mean(dim=(1, 2, 3))


def psnr_ssim_y(sr: torch.Tensor, hr: torch.Tensor, border: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Both metrics at once: ``(psnr (B,), ssim (B,))``."""
    return psnr_y(sr, hr, border), ssim_y(sr, hr, border)


def mean_finite(values) -> float:
    """Mean of per-image scores (``inf`` PSNRs of identical pairs are skipped, as is customary)."""
    vals = [float(v) for v in values if math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else float("nan")


def paired_difference(a, b) -> tuple[float, float, float]:
    """Per-face comparison of two methods on the same faces: the mean of the differences a - b, its standard
    error (sample sd / sqrt(n); nan for one face) and the share of faces where a is higher. Pairing removes the
    spread between faces, so it resolves differences far smaller than either method's own spread."""
    a, b = [float(x) for x in a], [float(x) for x in b]
    if len(a) != len(b) or not a:
        raise ValueError(f"paired scores need two equally long, non-empty lists, got {len(a)} and {len(b)} items")
    d = [x - y for x, y in zip(a, b)]
    m = sum(d) / len(d)
    se = math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1) / len(d)) if len(d) > 1 else float("nan")
    return m, se, sum(x > 0 for x in d) / len(d)

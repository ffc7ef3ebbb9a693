"""The metric code against independent implementations, on real faces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from pkdn import metrics
from pkdn.data.degrade import hr_from_image, load_rgb, lr_from_hr, upsample


def _to_tensor(img) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255.0


def _y_numpy(rgb_u8: np.ndarray) -> np.ndarray:
    """BT.601 Y by hand, on 0..255 uint8 RGB: 16 + (65.481 R + 128.553 G + 24.966 B) / 255 with R in [0, 1]."""
    r, g, b = (rgb_u8[..., i].astype(np.float64) / 255.0 for i in range(3))
    return 16.0 + 65.481 * r + 128.553 * g + 24.966 * b


def _reference(sr: torch.Tensor, hr: torch.Tensor, border: int = 8) -> tuple[float, float]:
    """Independent path: numpy 8-bit images, a hand-written PSNR loop-free formula, scikit-image's SSIM."""
    sr_u8 = np.clip(np.rint(sr.permute(1, 2, 0).double().numpy() * 255.0), 0, 255).astype(np.uint8)
    hr_u8 = np.clip(np.rint(hr.permute(1, 2, 0).double().numpy() * 255.0), 0, 255).astype(np.uint8)
    ys = _y_numpy(sr_u8)[border:-border, border:-border]
    yh = _y_numpy(hr_u8)[border:-border, border:-border]
    diff = ys - yh
    mse = float(np.sum(diff * diff)) / diff.size
    psnr = 10.0 * math.log10(255.0 * 255.0 / mse)
    ssim = structural_similarity(
        ys, yh, data_range=255.0, gaussian_weights=True, sigma=1.5, win_size=11, use_sample_covariance=False
    )
    return psnr, float(ssim)


@pytest.fixture(scope="module")
def faces(celeba):
    files = sorted((celeba / "test").glob("*.jpg"))[:6]
    hrs, bics = [], []
    for f in files:
        hr = hr_from_image(load_rgb(f))
        hrs.append(_to_tensor(hr))
        bics.append(_to_tensor(upsample(lr_from_hr(hr))))
    return torch.stack(hrs), torch.stack(bics)


def test_matches_independent_implementation_on_bicubic(faces):
    hr, bic = faces
    p, s = metrics.psnr_ssim_y(bic, hr)
    assert p.shape == s.shape == (hr.shape[0],)
    for i in range(hr.shape[0]):
        rp, rs = _reference(bic[i], hr[i])
        assert p[i].item() == pytest.approx(rp, abs=1e-6)
        assert s[i].item() == pytest.approx(rs, abs=1e-6)
    assert 18 < p.mean().item() < 30 and 0.3 < s.mean().item() < 0.9


def test_sr_is_clamped_and_rounded_to_8_bits(faces):
    hr, bic = faces
    # an unclamped, unrounded "network output": overshoot and sub-level noise
    g = torch.Generator().manual_seed(0)
    raw = bic + 0.08 * torch.randn(bic.shape, generator=g)
    p, s = metrics.psnr_ssim_y(raw, hr)
    for i in range(hr.shape[0]):
        rp, rs = _reference(raw[i].clamp(0, 1), hr[i])
        assert p[i].item() == pytest.approx(rp, abs=1e-6)
        assert s[i].item() == pytest.approx(rs, abs=1e-6)
    # a sub-level perturbation does not change the score (it rounds away)
    p2 = metrics.psnr_y(bic + 0.4 / 255.0, hr)
    assert torch.allclose(p2, metrics.psnr_y(bic, hr))


def test_hand_computed_psnr_constant_offset():
    # Y of a gray image with every channel raised by 10 levels rises by 10 * (65.481+128.553+24.966)/255
    hr = torch.full((1, 3, 32, 32), 100 / 255.0)
    sr = torch.full((1, 3, 32, 32), 110 / 255.0)
    dy = 10 * (65.481 + 128.553 + 24.966) / 255.0
    expected = 10 * math.log10(255.0**2 / dy**2)
    assert metrics.psnr_y(sr, hr).item() == pytest.approx(expected, abs=1e-9)
    assert metrics.psnr_y(hr, hr).item() == math.inf
    assert metrics.ssim_y(hr, hr).item() == pytest.approx(1.0, abs=1e-12)


def test_border_is_cropped():
    hr = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    sr = hr.clone()
    sr[..., :8, :] = 1 - sr[..., :8, :]  # damage only the border
    sr[..., :, -8:] = 0
    assert torch.isinf(metrics.psnr_y(sr, hr)).all()
    assert torch.allclose(metrics.ssim_y(sr, hr), torch.ones(2, dtype=torch.float64))
    assert torch.isfinite(metrics.psnr_y(sr, hr, border=4)).all()


def test_y_channel_range_and_shape_errors():
    y = metrics.rgb_to_y(torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)]))
    assert y[0].max().item() == pytest.approx(16.0) and y[1].min().item() == pytest.approx(235.0)
    with pytest.raises(ValueError):
        metrics.psnr_y(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 30))
    with pytest.raises(ValueError):
        metrics.ssim_y(torch.zeros(1, 3, 20, 20), torch.zeros(1, 3, 20, 20))
    assert metrics.mean_finite([1.0, 3.0, math.inf]) == 2.0

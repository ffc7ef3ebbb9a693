"""The x8 degradation (PIL bicubic, as in DIC/KDFSRNet/PKDN): face crop -> HR -> LR.

Images are read through :mod:`pkdn.imageio`; its reading names are
re-exported here for code written before it existed.
"""
from __future__ import annotations

from PIL import Image

from pkdn.imageio import MAX_PIXELS, MIN_SIZE, ImageError, load_rgb, to_float_tensor  # noqa: F401 - re-exported

BICUBIC = Image.Resampling.BICUBIC


def center_square(img: Image.Image) -> Image.Image:
    """Crop the central square (the shorter side) of ``img``."""
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img if (w, h) == (s, s) else img.crop((left, top, left + s, top + s))


CROPS = ("center", "resize")
DEFAULT_CROP = "center"


def hr_from_image(img: Image.Image, hr_size: int = 128, crop: str = DEFAULT_CROP) -> Image.Image:
    """HR face: the crop PIL-bicubic resized to ``hr_size`` x ``hr_size``.

    ``center`` (default) first takes the central square, so faces keep their
    aspect ratio; on the shared CelebA test split it reproduces the data's
    bicubic reference (23.50 dB / 0.630). ``resize`` squeezes the whole crop
    into the square instead (23.45 dB / 0.628 there), for crops whose borders
    must not be cut.
    """
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, not {crop!r}")
    img = img.convert("RGB") if img.mode != "RGB" else img
    if crop == "center":
        img = center_square(img)
    return img if img.size == (hr_size, hr_size) else img.resize((hr_size, hr_size), BICUBIC)


def lr_from_hr(hr: Image.Image, scale: int = 8) -> Image.Image:
    """LR = HR downscaled by ``scale`` with PIL bicubic (antialiased: PIL widens the kernel)."""
    w, h = hr.size
    if w % scale or h % scale:
        raise ValueError(f"HR size {w}x{h} is not divisible by scale {scale}")
    return hr.resize((w // scale, h // scale), BICUBIC)


def upsample(lr: Image.Image, scale: int = 8) -> Image.Image:
    """Bicubic upsampling by ``scale`` (the networks' input; also the bicubic baseline)."""
    w, h = lr.size
    return lr.resize((w * scale, h * scale), BICUBIC)

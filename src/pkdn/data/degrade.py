"""The project's degradation, and the one place images are read and validated.

MINIMAL STAND-IN written on the ``eval`` branch so that evaluation and
``pkdn sr`` can be built before the ``data`` branch lands; the ``data``
branch's version of this module replaces it (same names, same behaviour).

HR = PIL bicubic resize of the face crop to ``hr_size`` x ``hr_size``; LR =
PIL bicubic (antialiased) resize of HR by 1/``scale``; ``upsample`` = PIL
bicubic back up. All on 8-bit RGB PIL images.
"""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

#: Images with more pixels than this are refused before they are decoded.
MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """A file that is not a usable 8-bit RGB image; the message is one line naming the file."""


def load_rgb(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Read an 8-bit RGB image fully, or raise :class:`ImageError` naming the file and the reason.

    Refused: missing, empty, non-image, corrupt or truncated files, grayscale,
    images with an alpha channel, 16-bit or floating-point images, and images
    over ``max_pixels`` pixels (checked from the header, before decoding).
    Palette images without transparency are converted to RGB.
    """
    p = Path(path)

    def fail(reason: str) -> ImageError:
        return ImageError(f"{p}: {reason}")

    try:
        size = p.stat().st_size
    except OSError as e:
        raise fail(f"cannot read ({e.strerror or e})") from None
    if not p.is_file():
        raise fail("not a file")
    if size == 0:
        raise fail("empty file")
    try:
        img = Image.open(p)
    except UnidentifiedImageError:
        raise fail("not an image (unrecognised format)") from None
    except Image.DecompressionBombError:
        raise fail("image too large") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise fail(f"unreadable image ({_one_line(e)})") from None
    with img:
        w, h = img.size
        if w * h > max_pixels:
            raise fail(f"image too large ({w}x{h} pixels; at most {max_pixels:,} pixels accepted)")
        if w == 0 or h == 0:
            raise fail("image has no pixels")
        mode = img.mode
        sixteen = any(";16" in str(t.args) for t in (img.tile or []))
        if mode in ("I;16", "I;16B", "I;16L", "I", "F") or sixteen:
            raise fail(f"16-bit or floating-point image (mode {mode}); convert to 8-bit RGB")
        if mode in ("1", "L", "LA", "La"):
            raise fail(f"grayscale image (mode {mode}); an RGB colour image is needed")
        if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
            raise fail(f"image has an alpha channel (mode {mode}); flatten it to RGB first")
        if mode not in ("RGB", "P"):
            raise fail(f"unsupported colour mode {mode}; an 8-bit RGB image is needed")
        try:
            img.load()
        except Image.DecompressionBombError:
            raise fail("image too large") from None
        except Exception as e:  # truncated / corrupt streams: PIL raises OSError, SyntaxError, zlib.error...
            raise fail(f"corrupt or truncated image ({_one_line(e)})") from None
        return img.convert("RGB") if mode == "P" else img.copy()


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg[:200]


def hr_from_image(img: Image.Image, hr_size: int = 128) -> Image.Image:
    """The HR image: the face crop resized to ``hr_size`` x ``hr_size`` (PIL bicubic)."""
    if img.size == (hr_size, hr_size):
        return img.copy()
    return img.resize((hr_size, hr_size), Image.BICUBIC)


def lr_from_hr(hr: Image.Image, scale: int = 8) -> Image.Image:
    """The LR image: HR resized by 1/``scale`` (PIL bicubic, antialiased)."""
    w, h = hr.size
    if w % scale or h % scale:
        raise ValueError(f"HR size {w}x{h} is not divisible by the scale {scale}")
    return hr.resize((w // scale, h // scale), Image.BICUBIC)


def upsample(lr: Image.Image, scale: int = 8) -> Image.Image:
    """Bicubic x``scale`` upsampling (PIL): the baseline the networks are compared with."""
    w, h = lr.size
    return lr.resize((w * scale, h * scale), Image.BICUBIC)

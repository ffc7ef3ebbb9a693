"""Images in and out: the one place pkdn reads, validates, converts and writes image files.

``load_rgb`` is where every image enters pkdn: it validates the file and
returns an 8-bit RGB ``PIL.Image``. Broken input raises :class:`ImageError`
whose message is one line starting with the path; convertible input
(grayscale, palette, RGBA, CMYK, 16-bit) is converted to 8-bit RGB and a
one-line note is reported (``notes`` list and ``logging``), so callers can
warn or, strictly, refuse. ``to_float_tensor`` / ``tensor_to_pil`` are the
only image <-> tensor conversions, and ``save_png`` the only image writer
(atomic: a reader sees the whole file or none).
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from pkdn.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

#: file extensions every command treats as images (folders are listed with these; `pkdn prepare`, `sr`, `eval`).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".gif"}
)
#: refuse images above this many pixels (decompression bombs); 64 Mpx.
MAX_PIXELS = 64_000_000
#: default smallest side accepted by ``load_rgb``.
MIN_SIZE = 8


def is_image_file(path: str | os.PathLike) -> bool:
    """A regular file whose extension is one of :data:`IMAGE_EXTENSIONS`."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of ``folder`` (not recursive), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if is_image_file(p))


class ImageError(ValueError):
    """An input image that cannot be used; ``str()`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _to_rgb(img: Image.Image, path: str, notes: list[str]) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = float(arr.max(initial=0))
        if mode == "F":
            what, arr = "float", arr * 255.0 if peak <= 1.0 else arr
        elif mode.startswith("I;16") or peak > 255:
            what, arr = "16-bit", arr / 257.0  # 65535 -> 255
        else:
            what = "32-bit integer"
        notes.append(f"{path}: {what} grayscale ({mode}) converted to 8-bit RGB")
        return Image.fromarray(np.round(np.clip(arr, 0, 255)).astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append(f"{path}: {mode} with alpha composited onto white, converted to RGB")
        return Image.alpha_composite(bg, rgba).convert("RGB")
    label = {
        "L": "grayscale",
        "1": "1-bit",
        "P": "palette",
        "CMYK": "CMYK",
        "YCbCr": "YCbCr",
        "LAB": "Lab",
        "HSV": "HSV",
    }.get(mode, mode)
    notes.append(f"{path}: {label} image ({mode}) converted to RGB")
    return img.convert("RGB")


def load_rgb(
    path: str | os.PathLike, *, min_size: int = MIN_SIZE, max_pixels: int = MAX_PIXELS, notes: list[str] | None = None
) -> Image.Image:
    """Read ``path`` as an 8-bit RGB image, or raise :class:`ImageError`.

    Checks, each with a one-line message naming the file: missing, not a
    regular file, empty, not an image, truncated/corrupt, too large
    (decompression bomb), smaller than ``min_size`` on a side. EXIF
    orientation is applied. Conversions to RGB are appended to ``notes``
    (when given) and logged at INFO level.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(p, "file not found")
    if not p.is_file():
        raise ImageError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise ImageError(p, "empty file (0 bytes)")
    local: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageError(
                        p,
                        f"image too large ({w}x{h} = {w * h / 1e6:.0f} Mpx > "
                        f"{max_pixels / 1e6:.0f} Mpx; possible decompression bomb)",
                    )
                im.load()
                fmt = im.format  # exif_transpose may return a copy without it
                img = ImageOps.exif_transpose(im)
                img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(p, "not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(p, f"image too large (possible decompression bomb: {e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        raise ImageError(p, f"truncated or corrupt image ({msg})") from None
    w, h = img.size
    if min(w, h) < min_size:
        raise ImageError(p, f"image too small ({w}x{h}; need at least {min_size} px per side)")
    if fmt == "PNG" and img.mode in ("RGB", "RGBA") and _png_bit_depth(p) == 16:
        # PIL keeps only the high byte of 16-bit colour PNGs without saying so; say it.
        local.append(f"{p}: 16-bit {img.mode} PNG reduced to 8 bits per channel")
    img = _to_rgb(img, str(p), local)
    for n in local:
        log.info(n)
    if notes is not None:
        notes.extend(local)
    return img


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from a PNG's IHDR chunk (None if the header is not one); PIL does not expose it."""
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24] if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" else None


def to_float_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit RGB image -> float32 (3, H, W) tensor in [0, 1]."""
    arr = np.asarray(img.convert("RGB") if img.mode != "RGB" else img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """(3, H, W) in [0, 1] -> 8-bit RGB PIL image (clamped and rounded, as every SR output is scored)."""
    a = t.detach().float().clamp(0, 1).mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(a), "RGB")


def save_png(img: Image.Image, path: str | os.PathLike, compress_level: int = 6) -> Path:
    """Write ``img`` as a PNG atomically (temporary file + rename); returns the path.

    ``compress_level`` 1 is several times faster to write than 6 for a few
    per cent larger files: what bulk outputs (``pkdn sr``) use.
    """
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=compress_level)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)

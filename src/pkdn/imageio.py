"""Images in and out: the one place pkdn reads, validates, converts and writes image files.

``load_rgb`` is where every image enters pkdn, from a file or from bytes in
memory (the web app's uploads): it validates the image and returns an 8-bit
RGB ``PIL.Image``. Broken input raises :class:`ImageError` whose message is
one line starting with the path (or the name given for bytes) and whose
``kind`` says what is wrong (the web app maps it to an HTTP status); convertible input
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
import re
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


#: what :attr:`ImageError.kind` may say.
PROBLEMS = ("missing", "empty", "format", "corrupt", "too_large", "too_small", "other")


class ImageError(ValueError):
    """An input image that cannot be used; ``str()`` is ``"<path>: <problem>"``, ``kind`` one of :data:`PROBLEMS`."""

    def __init__(self, path: str | os.PathLike, problem: str, kind: str = "other"):
        self.path = str(path)
        self.problem = problem
        self.kind = kind
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


def _too_many_pixels(p: str | Path, size: str, max_pixels: int) -> ImageError:
    """The decompression-bomb guard's one line: the size and the limit."""
    return ImageError(p, f"image too large ({size}; the limit is {max_pixels / 1e6:g} Mpx)", "too_large")


def load_rgb(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    min_size: int = MIN_SIZE,
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = None,
    notes: list[str] | None = None,
) -> Image.Image:
    """Read an image file, or decode image bytes, as an 8-bit RGB image, or raise :class:`ImageError`.

    ``source``: a path, or the bytes of an image file (named ``name`` in messages, default ``upload``;
    nothing is written to disk). Checks, each with a one-line message naming the file: missing, not a
    regular file, empty, not an image, truncated/corrupt, too large (decompression bomb; or a side over
    ``max_side``, refused before the pixels are decoded), smaller than ``min_size`` on a side. EXIF
    orientation is applied. Conversions to RGB are appended to ``notes`` (when given) and logged at INFO level.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, p = bytes(source), (name or "upload")
        if not data:
            raise ImageError(p, "empty file (0 bytes)", "empty")
        opened, head = io.BytesIO(data), data[:26]
    else:
        p = Path(source)
        if not p.exists():
            raise ImageError(p, "file not found", "missing")
        if not p.is_file():
            raise ImageError(p, "not a regular file", "missing")
        if p.stat().st_size == 0:
            raise ImageError(p, "empty file (0 bytes)", "empty")
        opened, head = p, None
    local: list[str] = []
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning sits above max_pixels: the check below names the size and the limit instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(opened) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise _too_many_pixels(p, f"{w} x {h} px = {w * h / 1e6:.1f} Mpx", max_pixels)
                if max_side is not None and max(w, h) > max_side:
                    raise ImageError(p, f"image too large ({w}x{h}; at most {max_side} px a side)", "too_large")
                im.load()
                fmt = im.format  # exif_transpose may return a copy without it
                img = ImageOps.exif_transpose(im)
                img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(p, "not an image (unrecognised format)", "format") from None
    except Image.DecompressionBombError as e:  # past twice Pillow's limit it refuses before the size is known
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_many_pixels(
            p, f"{int(pixels[1]) / 1e6:.0f} Mpx" if pixels else "too many pixels", max_pixels
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        raise ImageError(p, f"truncated or corrupt image ({msg})", "corrupt") from None
    w, h = img.size
    if min(w, h) < min_size:
        raise ImageError(p, f"image too small ({w}x{h}; need at least {min_size} px per side)", "too_small")
    if fmt == "PNG" and img.mode in ("RGB", "RGBA") and _png_bit_depth(p if head is None else head) == 16:
        # PIL keeps only the high byte of 16-bit colour PNGs without saying so; say it.
        local.append(f"{p}: 16-bit {img.mode} PNG reduced to 8 bits per channel")
    img = _to_rgb(img, str(p), local)
    for n in local:
        log.info(n)
    if notes is not None:
        notes.extend(local)
    return img


def _png_bit_depth(source: Path | bytes) -> int | None:
    """Bit depth from a PNG's IHDR chunk (None if the header is not one); PIL does not expose it."""
    if isinstance(source, bytes):
        head = source[:26]
    else:
        with open(source, "rb") as f:
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

"""Turn uploaded bytes into an 8-bit RGB image, or one line saying why not.

The server never writes uploads to disk, so this checks bytes in memory with
Pillow. It mirrors :func:`pkdn.imageio.load_rgb` (same pixel limit, same
conversions) and is the one function to repoint at the shared validator.
"""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from pkdn.imageio import MAX_PIXELS, _to_rgb

#: default limit on an upload's size in bytes (20 MB).
MAX_BYTES = 20_000_000


class UploadError(ValueError):
    """A request the client can fix; ``status`` is the HTTP code, ``str()`` the one-line reason."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


def _too_many_pixels(size: str, max_pixels: int) -> UploadError:
    return UploadError(f"image too large ({size}; the limit is {max_pixels / 1e6:g} Mpx)", 413)


def decode_upload(
    data: bytes,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = None,
    notes: list[str] | None = None,
) -> Image.Image:
    """Validate and decode ``data``; raise :class:`UploadError` (4xx) for anything unusable.

    Grayscale, palette, RGBA, CMYK and 16-bit images are converted to RGB (a
    note each, as ``pkdn sr`` does); EXIF orientation is applied.
    """
    if not data:
        raise UploadError("the uploaded file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise UploadError(f"file too large ({len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB)", 413)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning sits above max_pixels: the check below names the size and the limit instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise _too_many_pixels(f"{w} x {h} px = {w * h / 1e6:.1f} Mpx", max_pixels)
                if max_side is not None and max(w, h) > max_side:
                    raise UploadError(
                        f"image too large for x8 super-resolution ({w}x{h}; at most {max_side} px "
                        "a side in this mode): send a smaller image",
                        413,
                    )
                im.load()
                img = ImageOps.exif_transpose(im)
                img.load()
    except UploadError:
        raise
    except UnidentifiedImageError:
        raise UploadError("not an image (unrecognised format); send a PNG, JPEG, WebP, BMP or TIFF file", 415) from None
    except Image.DecompressionBombError as e:  # past twice Pillow's limit it refuses before the size is known
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_many_pixels(f"{int(pixels[1]) / 1e6:.0f} Mpx" if pixels else "too many pixels", max_pixels) from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        raise UploadError(f"truncated or corrupt image ({msg}); re-export it and try again", 422) from None
    if min(img.size) < 2:
        raise UploadError(f"image too small ({img.size[0]}x{img.size[1]}; need at least 2 px a side)", 422)
    local: list[str] = []
    img = _to_rgb(img, "upload", local)
    if notes is not None:
        notes.extend(local)
    return img

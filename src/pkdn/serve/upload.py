"""Turn uploaded bytes into an 8-bit RGB image, or one line (and an HTTP status) saying why not.

The server never writes uploads to disk: the bytes go to :func:`pkdn.imageio.load_rgb`, the decoder every
file goes through (same checks, same pixel limit, same conversions and notes). This adds what only an upload
has: a byte limit, the HTTP status of each problem and a hint of what to send instead.
"""

from __future__ import annotations

from PIL import Image

from pkdn.imageio import MAX_PIXELS, ImageError, load_rgb

#: default limit on an upload's size in bytes (20 MB).
MAX_BYTES = 20_000_000
#: the HTTP status of each :attr:`pkdn.imageio.ImageError.kind`, and what the client can do about it.
STATUS = {
    "empty": (400, ""),
    "format": (415, "; send a PNG, JPEG, WebP, BMP or TIFF file"),
    "corrupt": (422, "; re-export it and try again"),
    "too_large": (413, ""),
    "too_small": (422, ""),
}


class UploadError(ValueError):
    """A request the client can fix; ``status`` is the HTTP code, ``str()`` the one-line reason."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


def decode_upload(
    data: bytes,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = None,
    notes: list[str] | None = None,
) -> Image.Image:
    """Validate and decode ``data``; raise :class:`UploadError` (4xx) for anything unusable.

    Grayscale, palette, RGBA, CMYK and 16-bit images are converted to RGB (a note each, as ``pkdn sr``
    does); EXIF orientation is applied; a side over ``max_side`` is refused before the pixels are decoded.
    """
    if len(data) > max_bytes:
        raise UploadError(f"file too large ({len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB)", 413)
    try:
        return load_rgb(data, name="upload", min_size=2, max_pixels=max_pixels, max_side=max_side, notes=notes)
    except ImageError as e:
        status, hint = STATUS.get(e.kind, (400, ""))
        problem = "the uploaded file is empty (0 bytes)" if e.kind == "empty" else e.problem
        raise UploadError(problem + hint, status) from None

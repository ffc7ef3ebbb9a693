"""Helpers shared by the evaluation / sr / export tests: a trained student, real LR faces, broken files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from _models import student_path  # noqa: F401  (re-exported for the tests)


def write_lr_faces(celeba: Path, folder: Path, n: int = 6, offset: int = 0) -> dict[str, Image.Image]:
    """Degrade ``n`` real test faces with the project's degradation; write the 16 x 16 LR PNGs; return the HRs."""
    from pkdn.data.degrade import hr_from_image, load_rgb, lr_from_hr

    folder.mkdir(parents=True, exist_ok=True)
    hrs = {}
    for f in sorted((celeba / "test").glob("*.jpg"))[offset : offset + n]:
        hr = hr_from_image(load_rgb(f))
        lr_from_hr(hr).save(folder / f"{f.stem}.png")
        hrs[f.stem] = hr
    return hrs


def _png(width: int, height: int, bit_depth: int, color_type: int, raw: bytes) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write_bad_inputs(folder: Path, good: Path) -> dict[str, Path]:
    """Each kind of bad input the commands must refuse, made from ``good`` (a valid 16 x 16 RGB PNG) or from scratch."""
    folder.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    out = {}

    p = folder / "corrupt.png"  # the image data scrambled (header intact)
    b = bytearray(data)
    for i in range(60, min(len(b) - 12, 140)):
        b[i] ^= 0x5A
    p.write_bytes(bytes(b))
    out["corrupt"] = p

    p = folder / "truncated.jpg"
    buf = folder / "_full.jpg"
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buf, quality=95)
    p.write_bytes(buf.read_bytes()[: buf.stat().st_size // 2])
    buf.unlink()
    out["truncated"] = p

    p = folder / "notes.png"  # not an image at all
    p.write_text("these are not the pixels you are looking for\n")
    out["non-image"] = p

    p = folder / "empty.png"
    p.write_bytes(b"")
    out["empty"] = p

    p = folder / "gray.png"
    Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8), "L").save(p)
    out["grayscale"] = p

    p = folder / "rgba.png"
    Image.fromarray(rng.integers(0, 255, (16, 16, 4), dtype=np.uint8), "RGBA").save(p)
    out["rgba"] = p

    p = folder / "deep16.png"  # 16 bits per sample (PIL writes those as grayscale, mode I;16)
    Image.fromarray(rng.integers(0, 65535, (16, 16), dtype=np.uint16)).save(p)
    assert Image.open(p).mode == "I;16"
    out["16-bit"] = p

    p = folder / "bomb.png"  # claims 100000 x 100000 pixels (a decompression bomb), a few bytes of data
    p.write_bytes(_png(100_000, 100_000, 8, 2, b"\x00" * 64))
    out["huge"] = p

    p = folder / "wide.png"  # a real image, too large for x8 super-resolution (would be 6400 px wide)
    Image.fromarray(rng.integers(0, 255, (12, 800, 3), dtype=np.uint8)).save(p)
    out["too-large-for-sr"] = p
    return out

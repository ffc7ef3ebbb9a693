"""HR/LR degradation equals PIL's bicubic; load_rgb reports every kind of bad input."""

import numpy as np
import pytest
from PIL import Image

from pkdn.data.degrade import ImageError, hr_from_image, load_rgb, lr_from_hr, to_float_tensor, upsample


@pytest.fixture(scope="module")
def faces(celeba):
    return sorted((celeba / "test").glob("*.jpg"))[:4]


def test_sizes_and_bicubic_values_match_pil(faces):
    for f in faces:
        src = Image.open(f).convert("RGB")
        w, h = src.size
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        squeezed = hr_from_image(load_rgb(f), 128, crop="resize")
        assert np.array_equal(np.asarray(squeezed), np.asarray(src.resize((128, 128), Image.Resampling.BICUBIC)))
        ref_hr = src.crop(box).resize((128, 128), Image.Resampling.BICUBIC)
        hr = hr_from_image(load_rgb(f), 128)  # default: the central square
        assert hr.size == (128, 128) and hr.mode == "RGB"
        assert np.array_equal(np.asarray(hr), np.asarray(ref_hr))
        lr = lr_from_hr(hr, 8)
        assert lr.size == (16, 16)
        assert np.array_equal(np.asarray(lr), np.asarray(ref_hr.resize((16, 16), Image.Resampling.BICUBIC)))
        up = upsample(lr, 8)
        assert up.size == (128, 128)
        assert np.array_equal(np.asarray(up), np.asarray(lr.resize((128, 128), Image.Resampling.BICUBIC)))
    t = to_float_tensor(hr)
    assert t.shape == (3, 128, 128) and 0 <= t.min() and t.max() <= 1


def test_lr_is_antialiased(faces):
    # PIL widens the bicubic kernel when downscaling: LR differs from point-sampled bicubic
    hr = hr_from_image(load_rgb(faces[0]))
    lr = np.asarray(lr_from_hr(hr, 8), dtype=np.float64)
    assert lr.std() > 0
    with pytest.raises(ValueError, match="divisible"):
        lr_from_hr(hr.resize((100, 100)), 8)


def _bad_files(tmp, face):
    """Broken inputs: name -> expected message fragment."""
    (tmp / "text.jpg").write_text("this is not an image\n")
    (tmp / "empty.png").write_bytes(b"")
    data = face.read_bytes()
    (tmp / "truncated.jpg").write_bytes(data[: len(data) // 2])
    Image.new("RGB", (6, 5), (128, 64, 32)).save(tmp / "tiny.png")
    return {
        "text.jpg": "not an image",
        "empty.png": "empty file",
        "truncated.jpg": "truncated",
        "tiny.png": "too small",
    }


def _convertible_files(tmp, face):
    """Inputs converted to RGB: name -> expected note fragment."""
    rgb = Image.open(face).convert("RGB")
    rgb.convert("L").save(tmp / "gray.png")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(tmp / "rgba.png")
    a16 = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(a16).save(tmp / "gray16.png")
    rgb.convert("P").save(tmp / "palette.png")
    rgb.convert("CMYK").save(tmp / "cmyk.jpg")
    _save_rgb16_png(np.asarray(rgb, dtype=np.uint16) * 257, tmp / "rgb16.png")
    return {
        "gray.png": "grayscale",
        "rgba.png": "alpha",
        "gray16.png": "16-bit",
        "palette.png": "palette",
        "cmyk.jpg": "CMYK",
        "rgb16.png": "16-bit RGB PNG",
    }


def _save_rgb16_png(a: np.ndarray, path) -> None:
    """A 16-bit-per-channel RGB PNG (PIL cannot write one; PIL reads it as 8-bit RGB without a word)."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def test_bad_inputs_raise_one_line_errors_naming_the_file(tmp_path, faces):
    for name, frag in _bad_files(tmp_path, faces[0]).items():
        with pytest.raises(ImageError) as ei:
            load_rgb(tmp_path / name, min_size=16)
        msg = str(ei.value)
        assert msg.startswith(str(tmp_path / name) + ": ") and frag in msg and "\n" not in msg
        assert isinstance(ei.value, ValueError)
    with pytest.raises(ImageError, match="file not found"):
        load_rgb(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="too large"):
        load_rgb(faces[0], max_pixels=10_000)  # a decompression-bomb guard


def test_convertible_inputs_become_rgb_with_a_note(tmp_path, faces):
    for name, frag in _convertible_files(tmp_path, faces[0]).items():
        notes = []
        img = load_rgb(tmp_path / name, notes=notes)
        assert img.mode == "RGB" and img.size == Image.open(faces[0]).size
        assert len(notes) == 1 and notes[0].startswith(str(tmp_path / name)) and frag in notes[0], notes
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "rgb16.png")), np.asarray(Image.open(faces[0]).convert("RGB")))
    g16 = np.asarray(load_rgb(tmp_path / "gray16.png"))
    g8 = np.asarray(load_rgb(tmp_path / "gray.png"))
    assert np.abs(g16.astype(int) - g8.astype(int)).max() <= 1  # 16-bit scaled, not clipped
    rgba = np.asarray(load_rgb(tmp_path / "rgba.png"), dtype=int)
    assert rgba.mean() > np.asarray(Image.open(faces[0]).convert("RGB"), dtype=int).mean()  # onto white


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (8200, 8200)).save(p)  # 67 Mpx, a few kB on disk
    assert p.stat().st_size < 100_000
    with pytest.raises(ImageError, match="too large"):
        load_rgb(p)


def test_exif_orientation_is_applied(tmp_path, faces):
    img = Image.open(faces[0]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    out = load_rgb(tmp_path / "rot.jpg")
    assert out.size == (img.height, img.width)

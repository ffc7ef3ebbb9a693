"""Cutting framed HR faces from photos (:mod:`pkdn.data.faces_from_photos`) on real CelebA faces.

A CelebA crop enlarged x4 stands in for a full-resolution photo; its 5 points
come from the project's face detector. The standard framing must put the
eyes where the CelebA HR crops have them (the template), a varied framing
where its matrix says, and the resampling must not alias.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pkdn.data import faces_from_photos as ffp
from pkdn.faces.align import template
from pkdn.faces.detect import RetinaFaceDetector


@pytest.fixture(scope="module")
def det() -> RetinaFaceDetector:
    return RetinaFaceDetector(upscales=(2.0,))


def _best(det, img: Image.Image) -> np.ndarray:
    found = det(np.asarray(img.convert("RGB")))
    assert found, "no face detected"
    c = np.array(img.size) / 2
    return min(found, key=lambda d: float(np.linalg.norm(d.landmarks.mean(0) - c))).landmarks


@pytest.fixture(scope="module")
def photos(celeba, det) -> list[tuple[Image.Image, np.ndarray]]:
    """Three CelebA test crops enlarged x4 (eye distance ~140 px) with their detected 5 points."""
    out = []
    for f in sorted((celeba / "test").glob("*.jpg"))[:3]:
        im = Image.open(f).convert("RGB")
        big = im.resize((im.width * 4, im.height * 4), Image.Resampling.LANCZOS)
        out.append((big, _best(det, big)))
    return out


def test_standard_framing_puts_the_eyes_where_the_training_crops_have_them(photos, det):
    """Detected again on the crop, the eyes sit at the template's eyes (CelebA's HR framing)."""
    t = template()
    for photo, five in photos:
        m = ffp.crop_matrix(five)
        assert ffp.photo_pixels_per_output_pixel(m) > 3  # shrunk, never enlarged
        crop = ffp.render(photo, m)
        assert crop.size == (128, 128)
        found = _best(det, crop)
        # tolerance: the detector's own noise (~2 px here) plus the face's shape (the fit spans all 5 points)
        assert np.abs(found[:2] - t[:2]).max() < 3.0, (found[:2], t[:2])
        ratio = np.linalg.norm(found[1] - found[0]) / np.linalg.norm(t[1] - t[0])
        assert 0.92 < ratio < 1.08, ratio


def _mark_centres(marked: Image.Image, plain: Image.Image, near: np.ndarray, r: float = 8.0) -> np.ndarray:
    """Centroids of what the marks changed, within ``r`` px of each point of ``near``."""
    diff = np.abs(np.asarray(marked, np.float64) - np.asarray(plain, np.float64)).sum(-1)
    ys, xs = np.mgrid[: diff.shape[0], : diff.shape[1]] + 0.5
    out = []
    for x, y in near:
        w = diff * ((xs - x) ** 2 + (ys - y) ** 2 < r * r)
        out.append([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])
    return np.array(out)


@pytest.mark.parametrize(
    "framing", [ffp.Framing(), ffp.Framing(1.5, 20.0, (6.0, -4.0)), ffp.Framing(0.7, -25.0, (-8.0, 5.0))]
)
def test_marked_eyes_land_where_the_framing_says(photos, framing):
    """Red marks painted on the photo's eyes end up exactly where the crop's matrix sends the eyes."""
    photo, five = photos[0]
    marked = photo.copy()
    draw = ImageDraw.Draw(marked)
    for x, y in five[:2]:
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=(255, 0, 0))
    m = ffp.crop_matrix(five, framing)
    want = five[:2] @ m[:, :2].T + m[:, 2]
    got = _mark_centres(ffp.render(marked, m), ffp.render(photo, m), want)
    assert np.abs(got - want).max() < 0.3, (got, want)
    # the framing's zoom, tilt (counter-clockwise in the picture) and shift, relative to the standard one
    std = ffp.crop_matrix(five)
    base = five[:2] @ std[:, :2].T + std[:, 2]
    assert np.linalg.norm(want[1] - want[0]) / np.linalg.norm(base[1] - base[0]) == pytest.approx(framing.zoom)
    angle = lambda d: np.degrees(np.arctan2(-d[1], d[0]))  # noqa: E731
    assert angle(want[1] - want[0]) - angle(base[1] - base[0]) == pytest.approx(framing.tilt)
    assert np.abs(base - np.array([[49.2, 55.6], [78.3, 55.8]])).max() < 2.0  # near the template's eyes


def test_render_shrinks_without_aliasing():
    """1-px black/white stripes shrunk ~x8 must come out flat grey, not as moire."""
    stripes = np.zeros((1200, 1200, 3), np.uint8)
    stripes[:, ::2] = 255
    five = template() * 8  # a face 8x the template: every output pixel spans 8 photo pixels
    out = np.asarray(ffp.render(Image.fromarray(stripes), ffp.crop_matrix(five)), np.float64)
    assert abs(out.mean() - 127.5) < 3 and out.std() < 3, (out.mean(), out.std())


def test_plan_framings_is_seeded_and_keeps_to_the_photo():
    five = template() * 5 + 100  # eye distance ~145 px in a 1000 x 1000 photo
    size = (1000, 1000)
    plan = ffp.plan_framings("helen/123_1", five, size, n=4)
    assert plan == ffp.plan_framings("helen/123_1", five, size, n=4)
    assert plan != ffp.plan_framings("helen/124_1", five, size, n=4)
    assert len(plan) == 4 and plan[0] == ffp.Framing()
    for f in plan:
        m = ffp.crop_matrix(five, f)
        assert ffp.photo_pixels_per_output_pixel(m) >= 1.0
        assert ffp.outside_fraction(m, size) <= ffp.MAX_OUTSIDE
        assert ffp.ZOOM_RANGE[0] <= f.zoom <= ffp.ZOOM_RANGE[1] and abs(f.tilt) <= ffp.MAX_TILT
    # a face smaller than the training crops' (eye distance ~22 px) would need upscaling: no framing
    assert ffp.plan_framings("helen/125_1", template() * 0.75 + 100, size) == []


def test_read_pts_both_layouts(tmp_path):
    pts = np.arange(136, dtype=float).reshape(68, 2) + 1.0
    lines = "\n".join(f"{x:.3f} {y:.3f}" for x, y in pts)
    (tmp_path / "a.pts").write_text(f"version: 1\nn_points:  68\n{{\n{lines}\n}}\n")
    (tmp_path / "b.pts").write_text(lines + "\n")
    a, b = ffp.read_pts(tmp_path / "a.pts"), ffp.read_pts(tmp_path / "b.pts")
    np.testing.assert_allclose(a, pts - 0.5)  # 1-based pixel centres -> continuous coordinates
    np.testing.assert_allclose(a, b)
    (tmp_path / "c.pts").write_text("\n".join(lines.splitlines()[:60]))
    with pytest.raises(ValueError, match=r"c\.pts: expected 68 points"):
        ffp.read_pts(tmp_path / "c.pts")

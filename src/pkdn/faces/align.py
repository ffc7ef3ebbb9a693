"""Alignment: pkdn's landmark template, similarity transforms, crops and their inverse.

All transforms here are 2 x 3 affine matrices in *continuous* pixel
coordinates (pixel i covers [i, i+1), its centre is i + 0.5), so scaling a
frame by k is multiplying the matrix by k with no half-pixel bookkeeping;
:func:`cv2_matrix` converts to OpenCV's pixel-centre convention at the one
place we call ``cv2.warpAffine``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

#: side of the frame the template is measured in (the HR training crop).
FRAME = 128
TEMPLATE_FILE = Path(__file__).with_name("template.json")


@lru_cache(maxsize=1)
def template() -> np.ndarray:
    """(5, 2) mean landmarks of the training crops in the 128 x 128 frame (``scripts/measure_template.py``)."""
    return np.asarray(json.loads(TEMPLATE_FILE.read_text())["template"], dtype=np.float64)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``src`` points to ``dst``.

    Plain least squares over all 5 points (Umeyama without reflection): with
    landmarks of 8 px faces every point is noisy, and robust estimators that
    fit a subset (LMEDS) jump between subsets.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    a = (s * d).sum()  # sum x.x' + y.y'
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()
    k = np.hypot(a, b) / max((s**2).sum(), 1e-12)
    th = np.arctan2(b, a)
    r = k * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return np.hstack([r, (md - r @ ms)[:, None]])


def invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine ``a`` after ``b``."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def scale(m: np.ndarray, k: float) -> np.ndarray:
    """``m`` followed by scaling its output frame by ``k``."""
    return np.asarray(m, np.float64) * k


def cv2_matrix(m: np.ndarray) -> np.ndarray:
    """Continuous-coordinate affine -> OpenCV's (pixel centres at integers): x' + .5 = m(x + .5)."""
    m = np.asarray(m, np.float64)
    return np.hstack([m[:, :2], (m[:, 2] + m[:, :2] @ [0.5, 0.5] - 0.5)[:, None]])


def to_template(landmarks: np.ndarray) -> np.ndarray:
    """Photo -> 128 x 128 template frame, from a face's 5 landmarks."""
    return similarity(landmarks, template())


def crop_side(m_template: np.ndarray) -> float:
    """Side in photo pixels of the face's training-style square crop (the template frame's extent)."""
    return FRAME / float(np.sqrt(abs(np.linalg.det(m_template[:, :2]))))


def crop_center(m_template: np.ndarray) -> np.ndarray:
    inv = invert(m_template)
    return inv[:, :2] @ [FRAME / 2, FRAME / 2] + inv[:, 2]


def aligned_crop_matrix(m_template: np.ndarray, n: int) -> np.ndarray:
    """Photo -> an n x n grid holding the aligned face (the training crop's frame scaled by n / 128)."""
    return scale(m_template, n / FRAME)


def native_crop_matrix(m_template: np.ndarray, pad: float, fraction: float = 1.0) -> tuple[np.ndarray, int]:
    """Photo -> an axis-aligned square at the face's own scale, on whole photo pixels (no resampling).

    The square holds the central ``fraction`` of the face's crop plus ``pad``
    pixels of context on each side; its side is even (the network takes even
    sides). Cost grows with its area, so it is kept to what gets pasted.
    """
    side = crop_side(m_template) * fraction
    n = int(np.ceil((side + 2 * pad) / 2)) * 2
    cx, cy = crop_center(m_template)
    x0, y0 = int(round(cx - n / 2)), int(round(cy - n / 2))
    return np.array([[1.0, 0, -x0], [0, 1.0, -y0]]), n


def shrunk_crop_matrix(
    m_template: np.ndarray, side: float, pad: float, fraction: float = 1.0
) -> tuple[np.ndarray, int]:
    """Photo -> an axis-aligned square holding the face shrunk until its crop side is ``side`` px.

    The square is :func:`native_crop_matrix`'s for a face of crop side
    ``side`` (``fraction`` of the crop plus ``pad`` px of context, even
    side), centred on the face; fill it with :func:`shrink`.
    """
    k = side / crop_side(m_template)
    n = int(np.ceil((side * fraction + 2 * pad) / 2)) * 2
    cx, cy = crop_center(m_template)
    x0, y0 = cx - n / (2 * k), cy - n / (2 * k)
    return np.array([[k, 0, -k * x0], [0, k, -k * y0]]), n


def shrink(img: np.ndarray, m: np.ndarray, n: int) -> np.ndarray:
    """The n x n crop of ``img`` through the scale-and-shift ``m`` (photo -> crop, scale < 1), antialiased.

    PIL's bicubic resize of the crop's box (how training LR is made from HR),
    on only the photo pixels its filter reads, mirrored where the box leaves
    the photo (``BORDER_REFLECT_101``, as :func:`warp`).
    """
    k = float(m[0, 0])
    x0, y0 = -m[0, 2] / k, -m[1, 2] / k
    x1, y1 = x0 + n / k, y0 + n / k
    support = 2.0 / k + 2  # PIL's bicubic reads 2 output px (2 / k photo px) either side
    ix0, iy0 = int(np.floor(x0 - support)), int(np.floor(y0 - support))
    ix1, iy1 = int(np.ceil(x1 + support)), int(np.ceil(y1 + support))
    h, w = img.shape[:2]
    part = img[max(iy0, 0) : min(iy1, h), max(ix0, 0) : min(ix1, w)]
    pads = (max(-iy0, 0), max(iy1 - h, 0), max(-ix0, 0), max(ix1 - w, 0))
    if any(pads):
        part = cv2.copyMakeBorder(np.ascontiguousarray(part), *pads, cv2.BORDER_REFLECT_101)
    box = (x0 - ix0, y0 - iy0, x1 - ix0, y1 - iy0)
    return np.asarray(Image.fromarray(np.ascontiguousarray(part)).resize((n, n), Image.BICUBIC, box=box))


def warp(img: np.ndarray, m: np.ndarray, size: tuple[int, int], border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
    """Resample ``img`` through continuous-coordinate ``m`` (source -> target) into ``size`` = (w, h).

    Bicubic with mirrored borders: exactly the resampling the degradation model
    trains with (``cv2.INTER_CUBIC``, ``BORDER_REFLECT_101``; pkdn.data.degrade).
    """
    return cv2.warpAffine(img, cv2_matrix(m), size, flags=cv2.INTER_CUBIC, borderMode=border)

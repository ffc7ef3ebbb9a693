"""Synthetic group photos with known faces: the benchmark's and the tests' ground truth.

Real CelebA faces (the shared *test* split) of random size and tilt are
pasted onto a non-face background at 8x (or ``scale``); the LR photo is that
HR canvas shrunk x8 with PIL bicubic (how the training LR is made). Every
face's centre, crop side and tilt are known, so detection recall and PSNR
inside each face against the HR canvas can be measured. Each face touches
only its own box of the canvas, so photos of thousands of pixels a side are
built in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pkdn.data.degrade import hr_from_image

SCALE = 8
#: the PSNR region of a face: the central part of its square crop (CelebA crops hold hair and background
#: around the face), as a fraction of the side.
INNER = 0.7


@dataclass
class TrueFace:
    center: tuple[float, float]  # LR photo pixels (continuous coordinates)
    side: float  # crop side in the LR photo
    angle: float  # degrees, counter-clockwise
    source: str

    def corners(self, scale: float = 1.0, frac: float = 1.0) -> np.ndarray:
        """(4, 2) corners of the face's (``frac`` of its) square, at ``scale`` x the LR photo."""
        h = self.side * frac * scale / 2
        a = math.radians(self.angle)
        r = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # image y points down
        pts = np.array([[-h, -h], [h, -h], [h, h], [-h, h]]) @ r.T
        return pts + np.array(self.center) * scale

    def region(self, shape: tuple[int, int], scale: float = SCALE, frac: float = INNER) -> np.ndarray:
        """Boolean mask (``shape`` = (H, W)) of the face's inner region at ``scale``."""
        m = np.zeros(shape, np.uint8)
        cv2.fillConvexPoly(m, np.round((self.corners(scale, frac) - 0.5) * 16).astype(np.int32), 1, shift=4)
        return m.astype(bool)


def background_images() -> list[np.ndarray]:
    """Non-face photos from scikit-image's bundled samples (no people, no animals), RGB uint8."""
    from skimage import data

    out = []
    for name in ["coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "coins", "brick", "gravel"]:
        a = getattr(data, name)()
        out.append(np.ascontiguousarray(np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3]))
    return out


def _cover(bg: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Resize/crop ``bg`` to fill w x h (random crop of the scaled image)."""
    bh, bw = bg.shape[:2]
    k = max(w / bw, h / bh) * rng.uniform(1.0, 1.3)
    big = cv2.resize(bg, (math.ceil(bw * k), math.ceil(bh * k)), interpolation=cv2.INTER_CUBIC)
    y, x = rng.integers(0, big.shape[0] - h + 1), rng.integers(0, big.shape[1] - w + 1)
    return big[y : y + h, x : x + w].copy()


def make_photo(
    faces: Sequence[Path],
    background: np.ndarray,
    rng: np.random.Generator,
    size: tuple[int, int] = (160, 120),
    sides: tuple[float, float] = (12, 40),
    max_tilt: float = 15.0,
    count: int | None = None,
    side_list: Sequence[float] | None = None,
    scale: int = SCALE,
) -> tuple[Image.Image, Image.Image, list[TrueFace]]:
    """(HR canvas, LR photo, faces): ``count`` faces (default 4-7) from ``faces`` placed without overlap.

    ``side_list`` fixes the faces' crop sides (LR px) instead of drawing them from ``sides``. The HR
    canvas is ``scale`` x the LR photo (with ``scale`` 1 both are the same photo). A face's HR side
    is its LR side x ``scale``: above the CelebA crops' ~190 px it is an enlarged, softer face.
    """
    w, h = size
    canvas = _cover(background, w * scale, h * scale, rng).astype(np.float32)
    n = len(side_list) if side_list is not None else (count or int(rng.integers(4, 8)))
    placed: list[TrueFace] = []
    pool = list(faces)
    for i in range(n):
        s = float(side_list[i]) if side_list is not None else float(rng.uniform(*sides))
        ang = float(rng.uniform(-max_tilt, max_tilt))
        ext = s * (abs(math.cos(math.radians(ang))) + abs(math.sin(math.radians(ang)))) / 2
        for _ in range(200):
            c = (float(rng.uniform(ext + 1, w - ext - 1)), float(rng.uniform(ext + 1, h - ext - 1)))
            if all(math.dist(c, f.center) > 0.75 * (s + f.side) for f in placed):
                break
        else:
            continue  # no room left for this one
        src = pool[int(rng.integers(len(pool)))]
        f = TrueFace(c, s, ang, Path(src).name)
        hs = max(2, round(s * scale))
        hr_face = np.asarray(hr_from_image(Image.open(src), hr_size=hs), np.float32)
        # face pixel (continuous) -> canvas: rotate about the face centre, scale hs -> s * scale
        dst = f.corners(scale)
        x0, y0 = np.maximum(np.floor(dst.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(dst.max(0)).astype(int) + 2, [canvas.shape[1], canvas.shape[0]])
        m = cv2.getAffineTransform(np.float32([[0, 0], [hs, 0], [hs, hs]]), np.float32(dst[:3] - [x0, y0]))
        mc = np.hstack([m[:, :2], (m[:, 2] + m[:, :2] @ [0.5, 0.5] - 0.5)[:, None]])
        size_c = (int(x1 - x0), int(y1 - y0))
        warped = cv2.warpAffine(hr_face, mc, size_c, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(np.ones((hs, hs), np.float32), mc, size_c, flags=cv2.INTER_LINEAR)[..., None]
        roi = canvas[y0:y1, x0:x1]
        roi += alpha * (warped - roi)
        placed.append(f)
    hr = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))
    del canvas
    lr = hr if scale == 1 else hr.resize((w, h), Image.BICUBIC)
    return hr, lr, placed

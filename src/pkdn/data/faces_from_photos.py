"""HR training faces cut from full-resolution photos with 68-point landmarks (300-W style ``.pts``).

Why: CelebA's crops are one framing of one population. Photos that come with
landmarks (Helen, AFW in their 300-W copies) give other people, ages and
lighting at full resolution, so each face can be cut several times - at the
CelebA framing and zoomed, shifted and tilted around it - from real photo
context (no mirrored borders), and resampled *down* to 128 x 128 with an
antialiasing filter, never up.

The framing is the project's own: a face's 5 points (eye centres, nose tip,
mouth corners, derived from the 68) are mapped by a least-squares similarity
onto the template of ``pkdn.faces.template.json`` (mean landmarks of the
CelebA HR crops), the same fit the whole-photo pipeline uses
(:func:`pkdn.faces.align.similarity`). A :class:`Framing` then zooms
(``zoom`` > 1: face larger), tilts and shifts that frame about its centre.

Coordinates are continuous (pixel i covers [i, i+1)); 300-W ``.pts`` files are
1-based (pixel centres at 1, 2, ...), so :func:`read_pts` subtracts 0.5.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pkdn.faces.align import FRAME, compose, cv2_matrix, similarity, template

#: zoom range of the random framings (face size relative to the CelebA framing), sampled log-uniformly
ZOOM_RANGE = (0.6, 1.7)
#: largest tilt (degrees) and shift (output pixels, each axis) of a random framing
MAX_TILT = 30.0
MAX_SHIFT = 12.0
#: a framing may reach this fraction of its pixels outside the photo (filled by edge replication)
MAX_OUTSIDE = 0.02


def read_pts(path: str | Path) -> np.ndarray:
    """(68, 2) landmarks of a 300-W ``.pts`` file (with its ``version``/``n_points`` header and braces,
    or bare ``x y`` lines as some copies ship it), in continuous pixel coordinates."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
        body = text[text.index("{") + 1 : text.index("}")] if "{" in text else text
        pts = np.array([[float(v) for v in line.split()] for line in body.strip().splitlines()])
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable 300-W .pts file ({e})") from None
    if pts.shape != (68, 2):
        raise ValueError(f"{path}: expected 68 points, found {pts.shape[0] if pts.ndim else 0}")
    return pts - 0.5


def five_points(pts68: np.ndarray) -> np.ndarray:
    """(5, 2) points in the template's order (picture-left eye, picture-right eye, nose tip, mouth corners)."""
    p = np.asarray(pts68, np.float64)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def standard_matrix(five: np.ndarray) -> np.ndarray:
    """Photo -> 128 x 128 frame in which this face (its 5 points) sits where CelebA's training faces sit."""
    return similarity(five, template())


@dataclass(frozen=True)
class Framing:
    """A variation of the standard framing: ``zoom`` (face size factor), ``tilt`` (degrees, counter-
    clockwise in the picture), ``shift`` (output pixels the face moves by, x and y)."""

    zoom: float = 1.0
    tilt: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)

    def matrix(self, size: int = FRAME) -> np.ndarray:
        """The 128-frame -> ``size`` x ``size`` output affine: rotate and zoom about the centre, then shift."""
        t = math.radians(self.tilt)
        c = np.array([FRAME / 2, FRAME / 2])
        r = self.zoom * np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
        m = np.hstack([r, (c + np.asarray(self.shift) - r @ c)[:, None]])
        return m * (size / FRAME)

    @classmethod
    def of_matrix(cls, m: np.ndarray) -> Framing:
        """The framing whose :meth:`matrix` is the similarity ``m`` (128 frame -> 128 frame): how a measured
        framing (e.g. a test set's mean landmarks fitted to the template) becomes one to cut crops at."""
        m = np.asarray(m, np.float64)
        zoom = math.hypot(m[0, 0], m[1, 0])
        tilt = math.degrees(math.atan2(m[0, 1], m[0, 0]))
        c = np.array([FRAME / 2, FRAME / 2])
        shift = m[:, :2] @ c + m[:, 2] - c
        return cls(zoom, tilt, (float(shift[0]), float(shift[1])))


def crop_matrix(five: np.ndarray, framing: Framing = Framing(), size: int = FRAME) -> np.ndarray:
    """Photo -> ``size`` x ``size`` crop of the face with these 5 points at ``framing``."""
    return compose(framing.matrix(size), standard_matrix(five))


def photo_pixels_per_output_pixel(m: np.ndarray) -> float:
    """How many photo pixels one output pixel spans (< 1 means the crop would be upscaled)."""
    return 1.0 / math.sqrt(abs(np.linalg.det(np.asarray(m)[:, :2])))


def outside_fraction(m: np.ndarray, photo_size: tuple[int, int], size: int = FRAME, grid: int = 32) -> float:
    """Fraction of the output square whose source lies outside the photo (sampled on a grid)."""
    w, h = photo_size
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    g = (np.arange(grid) + 0.5) * size / grid
    xy = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    src = xy @ inv[:, :2].T + inv[:, 2]
    inside = (src[:, 0] >= 0) & (src[:, 0] <= w) & (src[:, 1] >= 0) & (src[:, 1] <= h)
    return float(1 - inside.mean())


def render(photo: Image.Image, m: np.ndarray, size: int = FRAME) -> Image.Image:
    """Resample ``photo`` through ``m`` (photo -> output) into ``size`` x ``size``, antialiased.

    The photo is first warped (bicubic) onto a canvas at about its own
    resolution (one canvas pixel per photo pixel, so the warp neither
    aliases nor blurs), then shrunk to ``size`` with PIL's Lanczos filter,
    whose kernel widens with the shrink factor.
    """
    import cv2

    k = photo_pixels_per_output_pixel(m)
    n = max(size, math.ceil(size * k))
    rgb = np.asarray(photo.convert("RGB"))
    canvas = cv2.warpAffine(
        rgb, cv2_matrix(np.asarray(m) * (n / size)), (n, n), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    out = Image.fromarray(canvas)
    return out if n == size else out.resize((size, size), Image.Resampling.LANCZOS)


def fits(five: np.ndarray, photo_size: tuple[int, int], framing: Framing, max_outside: float = MAX_OUTSIDE) -> bool:
    """Whether ``framing`` of this face needs no upscaling and lies (almost) inside the photo."""
    m = crop_matrix(five, framing)
    return photo_pixels_per_output_pixel(m) >= 1.0 and outside_fraction(m, photo_size) <= max_outside


def face_seed(face_id: str, seed: int = 0) -> int:
    """A stable per-face seed (independent of the order faces are processed in)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{face_id}".encode()).digest()[:8], "big")


def random_framing(rng: np.random.Generator) -> Framing:
    """Zoom log-uniform in :data:`ZOOM_RANGE`, tilt uniform in +-:data:`MAX_TILT`, shift uniform in
    +-:data:`MAX_SHIFT` per axis."""
    lo, hi = np.log(ZOOM_RANGE)
    zoom = float(np.exp(rng.uniform(lo, hi)))
    tilt = float(rng.uniform(-MAX_TILT, MAX_TILT))
    shift = (float(rng.uniform(-MAX_SHIFT, MAX_SHIFT)), float(rng.uniform(-MAX_SHIFT, MAX_SHIFT)))
    return Framing(zoom, tilt, shift)


def plan_framings(
    face_id: str,
    five: np.ndarray,
    photo_size: tuple[int, int],
    n: int = 4,
    seed: int = 0,
    tries: int = 40,
    max_outside: float = MAX_OUTSIDE,
) -> list[Framing]:
    """Up to ``n`` framings of one face that need no upscaling and stay (almost) inside the photo.

    The first is the standard framing (the CelebA one) when it fits; the rest
    are drawn by :func:`random_framing` from a generator seeded by
    ``face_id``, rejecting those that fail, at most ``tries`` draws. A face
    whose standard framing would need upscaling gets none; so does a close-up
    that no drawn framing fits inside its photo.
    """
    if photo_pixels_per_output_pixel(standard_matrix(five)) < 1.0:
        return []
    out = [Framing()] if fits(five, photo_size, Framing(), max_outside) else []
    rng = np.random.default_rng(face_seed(face_id, seed))
    for _ in range(tries):
        if len(out) >= n:
            break
        f = random_framing(rng)
        if fits(five, photo_size, f, max_outside):
            out.append(f)
    return out

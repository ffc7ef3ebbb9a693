"""HR -> LR: the literature's clean x8 degradation (PIL bicubic, as in DIC/KDFSRNet/PKDN) and a realistic one.

Images are read through :mod:`pkdn.imageio`; its reading names are
re-exported here for code written before it existed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pkdn.imageio import MAX_PIXELS, MIN_SIZE, ImageError, load_rgb, to_float_tensor  # noqa: F401 - re-exported

BICUBIC = Image.Resampling.BICUBIC


def center_square(img: Image.Image) -> Image.Image:
    """Crop the central square (the shorter side) of ``img``."""
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img if (w, h) == (s, s) else img.crop((left, top, left + s, top + s))


CROPS = ("center", "resize")
DEFAULT_CROP = "center"


def hr_from_image(img: Image.Image, hr_size: int = 128, crop: str = DEFAULT_CROP) -> Image.Image:
    """HR face: the crop PIL-bicubic resized to ``hr_size`` x ``hr_size``.

    ``center`` (default) first takes the central square, so faces keep their
    aspect ratio; on the shared CelebA test split it reproduces the data's
    bicubic reference (23.50 dB / 0.630). ``resize`` squeezes the whole crop
    into the square instead (23.45 dB / 0.628 there), for crops whose borders
    must not be cut.
    """
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, not {crop!r}")
    img = img.convert("RGB") if img.mode != "RGB" else img
    if crop == "center":
        img = center_square(img)
    return img if img.size == (hr_size, hr_size) else img.resize((hr_size, hr_size), BICUBIC)


def lr_from_hr(hr: Image.Image, scale: int = 8) -> Image.Image:
    """LR = HR downscaled by ``scale`` with PIL bicubic (antialiased: PIL widens the kernel)."""
    w, h = hr.size
    if w % scale or h % scale:
        raise ValueError(f"HR size {w}x{h} is not divisible by scale {scale}")
    return hr.resize((w // scale, h // scale), BICUBIC)


def upsample(lr: Image.Image, scale: int = 8) -> Image.Image:
    """Bicubic upsampling by ``scale`` (the networks' input; also the bicubic baseline)."""
    w, h = lr.size
    return lr.resize((w * scale, h * scale), BICUBIC)


# --------------------------------------------------------------------------- realistic degradation
#
# Real small faces are blurred, noisy, JPEG-compressed and shrunk by whatever resampler a camera or an app
# used; faces taken from whole photos are also warped onto the aligned 16 x 16 grid by the whole-photo
# pipeline (pkdn.faces), a second resampling. ``degrade`` synthesises such LR faces from HR ones so a model
# can learn them (docs/degradation.md cites where each range comes from). It is seeded per sample: the LR
# of sample i in epoch e is a function of (seed, e, i) alone.

INTERPOLATIONS = ("bicubic", "bilinear", "area")
#: shrinks without antialiasing (OpenCV's, and most quick thumbnailers'): they alias instead of blurring
ALIASED = ("cv2-linear", "cv2-cubic", "cv2-nearest")


@dataclass
class Degradation:
    """Ranges of the realistic HR -> LR degradation (YAML: ``data.degrade``; floats in 0-255 units for noise).

    Order per sample: [pose with p_pose] -> [clean with p_clean, else] blur -> capture (shrink to the capture
    size, or in the whole-photo branch: tilt, sub-pixel shift and shrink to the face's size in the photo) ->
    noise -> JPEG -> onto the LR grid (a resize, or the pipeline's aligning warp) -> [second round: blur, noise,
    JPEG].
    """

    enabled: bool = False  # False: LR is the clean bicubic shrink (prepared lr/)
    # pose: the face as --whole crops it from a photo at its own scale (never resampled onto the aligned grid):
    # tilted, larger or smaller than the training framing, off-centre. A similarity moves HR (and its parsing
    # map) before anything else, so LR and HR stay in register; 0 leaves the random stream of older configs.
    p_pose: float = 0.0
    pose_scale: tuple[float, float] = (0.7, 2.0)  # drawn log-uniformly; 0.75 = a 12 px crop seen at 16 px
    pose_tilt: float = 15.0  # degrees
    pose_shift: float = 8.0  # HR pixels
    p_clean: float = 0.1  # keep some clean LR so clean faces stay served
    # blur at HR resolution (sigmas in HR pixels; x8 target so 8 HR px = 1 LR px)
    p_blur: float = 0.8
    kernel_probs: tuple[float, float, float, float, float, float] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    #: order of kernel_probs: iso, aniso, generalised iso, generalised aniso, plateau iso, plateau aniso
    sigma: tuple[float, float] = (0.4, 10.0)
    beta_gaussian: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)
    p_motion: float = 0.05
    motion_length: tuple[float, float] = (4.0, 20.0)  # HR pixels
    # capture: the face is first shrunk to `capture` x the LR size, then brought to the LR grid
    capture: tuple[float, float] = (0.6, 1.5)
    p_capture_keep: float = 0.3  # capture exactly at the LR size (one resampling only)
    # share of shrinks done without antialiasing (ALIASED); 0 leaves the random stream of older configs
    p_alias: float = 0.0
    # whole-photo branch: face crop side in the photo (px), tilt (degrees), landmark jitter
    p_warp: float = 0.3
    warp_side: tuple[float, float] = (10.0, 24.0)
    warp_tilt: float = 15.0
    jitter_shift: float = 2.0  # HR pixels
    jitter_scale: float = 0.04
    jitter_tilt: float = 3.0  # degrees
    # noise (0-255 units) at capture resolution
    p_noise: float = 0.7
    p_poisson: float = 0.4  # share of noisy samples with Poisson instead of Gaussian noise
    noise_sigma: tuple[float, float] = (1.0, 15.0)
    poisson_scale: tuple[float, float] = (0.05, 1.5)
    # a sensor's read noise on top of its shot noise (Poisson-Gaussian): share of Poisson draws that get it
    p_read: float = 0.0
    read_sigma: tuple[float, float] = (0.5, 5.0)
    p_grey_noise: float = 0.4
    # JPEG at capture resolution, with a random 8x8 block phase
    p_jpeg: float = 0.7
    jpeg_quality: tuple[int, int] = (30, 95)
    # second round at the LR size
    p_second: float = 0.3
    second_sigma: tuple[float, float] = (0.2, 0.8)  # LR pixels
    second_noise_sigma: tuple[float, float] = (1.0, 12.0)
    second_jpeg_quality: tuple[int, int] = (40, 95)

    def validate(self) -> None:
        for name in (
            "p_pose",
            "p_clean",
            "p_blur",
            "p_motion",
            "p_capture_keep",
            "p_alias",
            "p_warp",
            "p_noise",
            "p_poisson",
            "p_read",
            "p_grey_noise",
            "p_jpeg",
            "p_second",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"data.degrade.{name} must be a probability in [0, 1], not {v}")
        if len(self.kernel_probs) != 6 or min(self.kernel_probs) < 0 or sum(self.kernel_probs) <= 0:
            raise ValueError("data.degrade.kernel_probs needs 6 non-negative weights")
        for name in (
            "sigma",
            "beta_gaussian",
            "beta_plateau",
            "motion_length",
            "pose_scale",
            "capture",
            "warp_side",
            "noise_sigma",
            "poisson_scale",
            "read_sigma",
            "jpeg_quality",
            "second_sigma",
            "second_noise_sigma",
            "second_jpeg_quality",
        ):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"data.degrade.{name} must be a range 0 < low <= high, not {[lo, hi]}")
        for name in ("jpeg_quality", "second_jpeg_quality"):
            if getattr(self, name)[1] > 100:
                raise ValueError(f"data.degrade.{name} must lie in 1..100")


#: one family at a time, for the per-family rows of the comparison (``pkdn degrade --family``); ``pose`` is
#: the clean bicubic LR of a face at a photo's pose (what ``--whole`` feeds a model natively), not a degradation
FAMILIES = ("full", "blur", "noise", "jpeg", "warp", "pose")


def family(name: str) -> Degradation:
    """The default degradation, or one family of it alone (always applied, nothing else)."""
    d = Degradation(enabled=True)
    if name == "full":
        return d
    if name not in FAMILIES:
        raise ValueError(f"unknown degradation family {name!r}; choose from {', '.join(FAMILIES)}")
    off = dict(p_clean=0.0, p_blur=0.0, p_warp=0.0, p_noise=0.0, p_jpeg=0.0, p_second=0.0, p_capture_keep=1.0)
    on = {
        "blur": dict(p_blur=1.0),
        "noise": dict(p_noise=1.0),
        "jpeg": dict(p_jpeg=1.0),
        "warp": dict(p_warp=1.0),
        "pose": dict(p_pose=1.0, p_clean=1.0),
    }[name]
    return Degradation(enabled=True, **{**off, **on})


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for sample ``index`` of ``epoch``: a function of (seed, epoch, index) alone."""
    return np.random.default_rng([seed, epoch, index, 0x9E3779B9])


def _cv2():
    try:
        import cv2
    except ImportError:  # OpenCV is a core dependency: only a broken install lacks it
        raise ImportError("realistic degradation needs OpenCV (opencv-contrib-python): reinstall pkdn") from None
    return cv2


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def blur_kernel(rng: np.random.Generator, d: Degradation) -> np.ndarray:
    """A normalised 2-D blur kernel: (an)isotropic Gaussian, generalised Gaussian or plateau (Real-ESRGAN's
    families), or a motion streak."""
    if rng.random() < d.p_motion:
        cv2 = _cv2()
        length = _uniform(rng, d.motion_length)
        size = int(np.ceil(length)) | 1
        k = np.zeros((size, size), np.float32)
        ang = rng.uniform(0, np.pi)
        half = 8 * length * np.array([np.cos(ang), np.sin(ang)])  # in 1/16 px (cv2's shift=4)
        c = 16 * (size // 2)
        p0, p1 = (np.array([c, c]) - half).round().astype(int), (np.array([c, c]) + half).round().astype(int)
        cv2.line(k, tuple(map(int, p0)), tuple(map(int, p1)), 1.0, thickness=1, lineType=cv2.LINE_AA, shift=4)
        return k / k.sum()
    probs = np.asarray(d.kernel_probs, dtype=np.float64)
    kind = int(rng.choice(6, p=probs / probs.sum()))
    aniso = kind % 2 == 1
    s1 = _uniform(rng, d.sigma)
    s2 = _uniform(rng, d.sigma) if aniso else s1
    theta = rng.uniform(0, np.pi) if aniso else 0.0
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    inv_cov = np.linalg.inv(rot @ np.diag([s1 * s1, s2 * s2]) @ rot.T)
    radius = int(min(np.ceil(3 * max(s1, s2)), 32))
    ax = np.arange(-radius, radius + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    pts = np.stack([xx, yy], -1)
    q = np.einsum("...i,ij,...j->...", pts, inv_cov, pts)  # x^T Sigma^-1 x
    if kind < 2:
        k = np.exp(-0.5 * q)
    elif kind < 4:
        k = np.exp(-0.5 * q ** _uniform(rng, d.beta_gaussian))
    else:
        k = 1.0 / (1.0 + q ** _uniform(rng, d.beta_plateau))
    return (k / k.sum()).astype(np.float32)


def _resampler(rng: np.random.Generator, d: Degradation) -> str:
    """One resampler name: antialiased (INTERPOLATIONS) or, with ``p_alias``, aliasing (ALIASED)."""
    if d.p_alias > 0 and rng.random() < d.p_alias:
        return ALIASED[int(rng.integers(len(ALIASED)))]
    return INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))]


def _filter(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT_101)


def _resize(img: np.ndarray, size: tuple[int, int], how: str) -> np.ndarray:
    """Float RGB (H, W, 3) in 0-255 -> ``size`` (w, h) with PIL's antialiased resamplers or, for the
    ``cv2-*`` names, OpenCV's plain interpolation (no antialiasing: a shrink samples, it does not average)."""
    if how.startswith("cv2-"):
        cv2 = _cv2()
        flag = {"cv2-linear": cv2.INTER_LINEAR, "cv2-cubic": cv2.INTER_CUBIC, "cv2-nearest": cv2.INTER_NEAREST}[how]
        return cv2.resize(np.ascontiguousarray(img, dtype=np.float32), size, interpolation=flag)
    res = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR, "area": Image.Resampling.BOX}[
        how
    ]
    chans = [Image.fromarray(img[..., c].astype(np.float32), "F").resize(size, res) for c in range(3)]
    return np.stack([np.asarray(c, dtype=np.float32) for c in chans], -1)


def _noise(
    img: np.ndarray,
    rng: np.random.Generator,
    d: Degradation,
    sigma_range: tuple[float, float],
    allow_poisson: bool = True,
) -> np.ndarray:
    grey = rng.random() < d.p_grey_noise
    shape = img.shape[:2] + ((1,) if grey else (3,))
    if allow_poisson and rng.random() < d.p_poisson:
        scale = _uniform(rng, d.poisson_scale)
        x = np.clip(img, 0, 255) / 255.0
        base = x.mean(-1, keepdims=True) if grey else x
        vals = 256.0  # Real-ESRGAN's 2**ceil(log2(#levels)) for 8-bit images
        noisy = rng.poisson(np.clip(base, 0, 1) * vals) / vals
        img = img + (noisy - base) * 255.0 * scale
        if d.p_read > 0 and rng.random() < d.p_read:
            img = img + rng.normal(0.0, _uniform(rng, d.read_sigma), img.shape).astype(np.float32)
        return img
    sigma = _uniform(rng, sigma_range)
    return img + rng.normal(0.0, sigma, shape).astype(np.float32)


def _jpeg(img: np.ndarray, rng: np.random.Generator, quality: tuple[int, int]) -> np.ndarray:
    """JPEG through Pillow at a random quality, with the 8 x 8 block grid at a random phase (a face in a
    photo does not start on a block boundary)."""
    import io

    q = int(rng.integers(quality[0], quality[1] + 1))
    oy, ox = (int(v) for v in rng.integers(0, 8, 2))
    u8 = np.clip(np.round(img), 0, 255).astype(np.uint8)
    padded = np.pad(u8, ((oy, 0), (ox, 0), (0, 0)), mode="reflect") if (oy or ox) else u8
    buf = io.BytesIO()
    Image.fromarray(padded, "RGB").save(buf, "JPEG", quality=q)
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"), dtype=np.float32)
    return out[oy:, ox:]


def _similarity(
    angle_deg: float, scale: float, center_from: tuple[float, float], center_to: tuple[float, float]
) -> np.ndarray:
    """2x3 matrix: rotate by ``angle_deg`` and scale about ``center_from``, moving it to ``center_to``."""
    a = np.deg2rad(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = np.asarray(center_to) - m[:, :2] @ np.asarray(center_from)
    return m


def _move(hr: np.ndarray, parsing: np.ndarray | None, angle: float, scale: float, shift: np.ndarray):
    """HR (cubic) and its parsing map (nearest) under one similarity about the centre, borders reflected."""
    cv2 = _cv2()
    h, w = hr.shape[:2]
    c = ((w - 1) / 2, (h - 1) / 2)
    m = _similarity(angle, scale, c, (c[0] + shift[0], c[1] + shift[1]))
    hr = cv2.warpAffine(hr, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    if parsing is not None:
        parsing = cv2.warpAffine(parsing, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)
    return hr, parsing


def jitter(hr: np.ndarray, parsing: np.ndarray | None, rng: np.random.Generator, d: Degradation):
    """The alignment error of the whole-photo pipeline (landmarks are a few pixels off): a small similarity
    applied to HR (and its parsing map), so LR and HR stay in register."""
    ang = rng.uniform(-d.jitter_tilt, d.jitter_tilt)
    sc = 1.0 + rng.uniform(-d.jitter_scale, d.jitter_scale)
    return _move(hr, parsing, ang, sc, rng.uniform(-d.jitter_shift, d.jitter_shift, 2))


def pose(hr: np.ndarray, parsing: np.ndarray | None, rng: np.random.Generator, d: Degradation):
    """The face at a photo's pose (tilt, scale, offset): HR and its parsing map moved together, so the network
    learns faces at the scale and tilt ``--whole`` feeds it natively."""
    sc = float(np.exp(rng.uniform(np.log(d.pose_scale[0]), np.log(d.pose_scale[1]))))
    ang = rng.uniform(-d.pose_tilt, d.pose_tilt)
    return _move(hr, parsing, ang, sc, rng.uniform(-d.pose_shift, d.pose_shift, 2))


def _warp_branch(img: np.ndarray, rng: np.random.Generator, d: Degradation, lr_size: int):
    """The face as it appears in a photo (tilted, at side S px, at a sub-pixel offset), then the function the
    pipeline applies to align it: returns (the tilted, shifted face at HR resolution, the photo patch side it
    shrinks to, the 2x3 matrix from that patch onto the LR grid)."""
    cv2 = _cv2()
    h = img.shape[0]
    side = _uniform(rng, d.warp_side)  # face crop side in photo pixels
    tilt = rng.uniform(-d.warp_tilt, d.warp_tilt)
    pad = h // 4
    big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    n = big.shape[0]
    patch = max(4, int(round(side * n / h)))  # photo patch holding the face with context
    s_eff = patch / n  # photo px per HR px
    # rotate and shift at HR resolution (sub-pixel offset of the photo grid), then shrink antialiased
    off = rng.uniform(0, 1, 2) / s_eff
    c = ((n - 1) / 2, (n - 1) / 2)
    rot = _similarity(tilt, 1.0, c, (c[0] + off[0], c[1] + off[1]))
    tilted = cv2.warpAffine(big, rot, (n, n), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    # the composite HR-frame -> LR-grid map the pipeline inverts: HR point p lands in the photo at
    # s_eff * (rot(p + pad) + 0.5) - 0.5; the aligning warp sends it to (p + 0.5) * lr/h - 0.5.
    a_photo = np.vstack([rot, [0, 0, 1]])
    a_photo[:2, 2] += rot[:, :2] @ np.array([pad, pad], dtype=np.float64)
    to_photo = np.array([[s_eff, 0, 0.5 * s_eff - 0.5], [0, s_eff, 0.5 * s_eff - 0.5], [0, 0, 1]]) @ a_photo
    k = lr_size / h
    to_lr = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]])
    align = (to_lr @ np.linalg.inv(to_photo))[:2]
    return tilted, patch, align


def degrade(
    hr: np.ndarray, rng: np.random.Generator, d: Degradation, scale: int = 8, parsing: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A realistic LR (uint8 (h/scale, w/scale, 3)) of an HR face (uint8 (h, w, 3)), drawn from ``rng``.

    Returns (lr, hr, parsing): the whole-photo branch moves HR (and its parsing map) by the alignment error
    it simulates, so the pair stays in register; otherwise they are returned as given.
    """
    cv2 = _cv2()
    h, w = hr.shape[:2]
    lr_w, lr_h = w // scale, h // scale
    if d.p_pose > 0 and rng.random() < d.p_pose:
        hr, parsing = pose(hr, parsing, rng, d)
    if rng.random() < d.p_clean:
        return np.array(Image.fromarray(hr, "RGB").resize((lr_w, lr_h), BICUBIC)), hr, parsing  # writable
    warp = rng.random() < d.p_warp and h == w
    if warp:
        hr, parsing = jitter(hr, parsing, rng, d)
    img = hr.astype(np.float32)
    if rng.random() < d.p_blur:
        img = _filter(img, blur_kernel(rng, d))
    how = _resampler(rng, d)
    if warp:
        tilted, patch, align = _warp_branch(img, rng, d, lr_w)
        img = _resize(tilted, (patch, patch), how)
    elif rng.random() < d.p_capture_keep:
        img = _resize(img, (lr_w, lr_h), how)
    else:
        f = _uniform(rng, d.capture)
        img = _resize(img, (max(2, round(lr_w * f)), max(2, round(lr_h * f))), how)
    if rng.random() < d.p_noise:
        img = _noise(img, rng, d, d.noise_sigma)
    if rng.random() < d.p_jpeg:
        img = _jpeg(img, rng, d.jpeg_quality)
    if warp:
        img = cv2.warpAffine(
            np.clip(img, 0, 255), align, (lr_w, lr_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101
        )
    elif img.shape[:2] != (lr_h, lr_w):
        img = _resize(np.clip(img, 0, 255), (lr_w, lr_h), _resampler(rng, d))
    if rng.random() < d.p_second:
        s = _uniform(rng, d.second_sigma)
        img = cv2.GaussianBlur(img, (0, 0), s, borderType=cv2.BORDER_REFLECT_101)
        if rng.random() < d.p_noise:
            img = _noise(img, rng, d, d.second_noise_sigma, allow_poisson=False)
        if rng.random() < d.p_jpeg:
            img = _jpeg(img, rng, d.second_jpeg_quality)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), hr, parsing

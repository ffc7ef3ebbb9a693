"""Paste super-resolved faces back into the upscaled photo with a feathered mask.

Why feathered and in the template frame: the mask is one soft-edged square
of the 128 x 128 training frame (the face's crop minus a margin), warped
with the face, so its blur scales with the face and the seam falls where SR
and background are both plain bicubic-like skin/hair/background. Each face
touches only its own bounding box of the output (memory stays bounded on
big photos); overlapping faces are composited in turn, the most confident
last (on top), each with its own soft edge, so no hard edge appears where
they meet.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from pkdn.faces.align import FRAME, cv2_matrix

#: the mask is 1 inside [MARGIN, FRAME - MARGIN] of the template frame, blurred by SIGMA (template px).
MARGIN = 12
SIGMA = 3.5


@lru_cache(maxsize=1)
def template_mask() -> np.ndarray:
    """(FRAME, FRAME) float32 feathered square in the template frame, at 4x for smooth warping."""
    k = 4
    m = np.zeros((FRAME * k, FRAME * k), np.float32)
    m[MARGIN * k : (FRAME - MARGIN) * k, MARGIN * k : (FRAME - MARGIN) * k] = 1.0
    return cv2.GaussianBlur(m, (0, 0), SIGMA * k)


def mask_for(m_sr_from_template: np.ndarray, size: int) -> np.ndarray:
    """The feathered template mask in a face's SR frame (``size`` x ``size``)."""
    up = np.asarray(m_sr_from_template, np.float64) / 4.0 * np.array([[1, 1, 4], [1, 1, 4]])  # mask is at 4x
    return cv2.warpAffine(
        template_mask(),
        cv2_matrix(up),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def paste_face(canvas: np.ndarray, sr: np.ndarray, mask: np.ndarray, m_out_from_sr: np.ndarray) -> None:
    """Blend ``sr`` (h, w, 3 uint8) into ``canvas`` (H, W, 3 uint8, in place) through ``m_out_from_sr``."""
    H, W = canvas.shape[:2]
    h, w = sr.shape[:2]
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) @ m_out_from_sr[:, :2].T + m_out_from_sr[:, 2]
    x0, y0 = np.floor(corners.min(0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x1 <= x0 or y1 <= y0:
        return
    m = np.asarray(m_out_from_sr, np.float64).copy()
    m[:, 2] -= [x0, y0]
    size = (x1 - x0, y1 - y0)
    face = cv2.warpAffine(sr, cv2_matrix(m), size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(
        mask, cv2_matrix(m), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )[..., None]
    roi = canvas[y0:y1, x0:x1].astype(np.float32)
    out = roi + alpha * (face.astype(np.float32) - roi)
    canvas[y0:y1, x0:x1] = np.clip(np.rint(out), 0, 255).astype(np.uint8)

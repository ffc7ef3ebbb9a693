"""The 19-class BiSeNet / CelebAMask-HQ label convention and its groupings.

Class ids are those of the widely used ``face-parsing.PyTorch`` BiSeNet
(``79999_iter.pth``), which is what the PKDN paper used. ``l_*`` / ``r_*``
name the classes on the image's left / right side (the subject's right /
left): the landmark parser follows that reading, and horizontal flips swap
them through :data:`FLIP_SWAP`.

Groupings ("schemes") turn a label map into network input channels:

``full``     19 one-hot channels, one per class.
``grouped``  11 channels: left/right merged, rare accessories merged into
             their host region (earring -> ears, necklace -> neck,
             hat -> hair), mouth and both lips merged.
``binary``   1 channel: face (skin and inner-face parts) vs everything else.
"""

from __future__ import annotations

import numpy as np
import torch

CLASSES: tuple[str, ...] = (
    "background",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eye_g",
    "l_ear",
    "r_ear",
    "ear_r",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "neck_l",
    "cloth",
    "hair",
    "hat",
)
NUM_CLASSES = len(CLASSES)
CLASS_ID: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}

#: left <-> right class pairs (ids); a horizontal flip swaps each pair.
LR_PAIRS: tuple[tuple[int, int], ...] = ((2, 3), (4, 5), (7, 8))

#: lookup table: FLIP_SWAP[label] is the label after a horizontal flip.
FLIP_SWAP = np.arange(256, dtype=np.uint8)
for _a, _b in LR_PAIRS:
    FLIP_SWAP[_a], FLIP_SWAP[_b] = _b, _a
FLIP_SWAP.setflags(write=False)

#: RGB colour per class (the CelebAMask-HQ visualisation colours).
PALETTE: np.ndarray = np.array(
    [
        (0, 0, 0),  # background
        (204, 0, 0),  # skin
        (0, 255, 255),  # l_brow
        (255, 204, 204),  # r_brow
        (51, 51, 255),  # l_eye
        (204, 0, 204),  # r_eye
        (204, 204, 0),  # eye_g
        (255, 102, 178),  # l_ear
        (255, 51, 51),  # r_ear
        (0, 204, 204),  # ear_r
        (76, 153, 0),  # nose
        (255, 255, 0),  # mouth
        (255, 0, 127),  # u_lip
        (153, 0, 76),  # l_lip
        (255, 153, 51),  # neck
        (0, 204, 0),  # neck_l
        (0, 51, 153),  # cloth
        (139, 69, 19),  # hair
        (102, 153, 255),  # hat
    ],
    dtype=np.uint8,
)

#: named groupings: scheme -> list of channels, each a list of class ids.
SCHEMES: dict[str, list[list[int]]] = {
    "full": [[i] for i in range(NUM_CLASSES)],
    "grouped": [
        [0],  # background
        [1],  # skin
        [2, 3],  # brows
        [4, 5],  # eyes
        [6],  # eyeglasses
        [7, 8, 9],  # ears (+ earring)
        [10],  # nose
        [11, 12, 13],  # mouth and lips
        [14, 15],  # neck (+ necklace)
        [16],  # cloth
        [17, 18],  # hair (+ hat)
    ],
    "binary": [[1, 2, 3, 4, 5, 6, 10, 11, 12, 13]],
}
GROUP_NAMES: dict[str, list[str]] = {
    "full": list(CLASSES),
    "grouped": ["background", "skin", "brows", "eyes", "eye_g", "ears", "nose", "mouth", "neck", "cloth", "hair"],
    "binary": ["face"],
}


def num_channels(scheme: str) -> int:
    """Number of input channels the scheme produces."""
    return len(_scheme(scheme))


def _scheme(scheme: str) -> list[list[int]]:
    try:
        return SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unknown parsing scheme {scheme!r}; choose from {sorted(SCHEMES)}") from None


def _lut(scheme: str) -> np.ndarray:
    """class id -> channel index (-1 where the class has no channel)."""
    lut = np.full(256, -1, dtype=np.int64)
    for ch, ids in enumerate(_scheme(scheme)):
        lut[ids] = ch
    return lut


def to_tensor(label_map: np.ndarray, scheme: str = "full") -> torch.FloatTensor:
    """uint8 (H, W) label map -> float (C, H, W) one-hot (grouped) tensor."""
    lm = np.asarray(label_map)
    if lm.ndim != 2:
        raise ValueError(f"label map must be 2-D (H, W), got shape {lm.shape}")
    if lm.size and int(lm.max()) >= NUM_CLASSES:
        raise ValueError(f"label map holds id {int(lm.max())}; valid ids are 0..{NUM_CLASSES - 1}")
    chans = _lut(scheme)[lm.astype(np.int64)]
    c = num_channels(scheme)
    idx = torch.from_numpy(chans)
    out = torch.zeros((c, *lm.shape), dtype=torch.float32)
    valid = idx >= 0
    out.scatter_(0, idx.clamp(min=0).unsqueeze(0), valid.unsqueeze(0).float())
    return out


def flip_labels(label_map: np.ndarray) -> np.ndarray:
    """Mirror a label map left-right, swapping the left/right classes."""
    return FLIP_SWAP[np.ascontiguousarray(np.asarray(label_map)[:, ::-1])]


def colorize(label_map: np.ndarray) -> np.ndarray:
    """(H, W) labels -> (H, W, 3) uint8 RGB using :data:`PALETTE`."""
    return PALETTE[np.clip(np.asarray(label_map), 0, NUM_CLASSES - 1)]

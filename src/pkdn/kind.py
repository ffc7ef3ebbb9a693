"""Crop or whole photo: the one place that decides what an input is when the user does not say.

The network learned faces of about 16 x 16 pixels (12-40 px at most). An input much larger than that is not a
face crop to enlarge x8 as a whole (a 200 x 142 photo in crop mode would become 1600 x 1136 pixels of one
smeared "face" and take seconds); it is a photo whose faces must be found first. The CLI, the Python API and the
web page all ask :func:`input_kind`, so the same image is treated the same way everywhere.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["crop", "photo"]

#: longest side (px) of an input still taken as a face crop; x8 makes it at most 512 px. Past this the input
#: is a photo. 64 px leaves room for loosely framed or large crops (4x the trained 16 px face) while every
#: ordinary photo, even a thumbnail, is far larger.
MAX_CROP_SIDE = 64


def input_kind(width: int, height: int) -> Kind:
    """``"crop"`` for an image small enough to be one face crop, ``"photo"`` for anything larger."""
    if width < 1 or height < 1:
        raise ValueError(f"an image needs a positive size, not {width} x {height}")
    return "crop" if max(width, height) <= MAX_CROP_SIDE else "photo"

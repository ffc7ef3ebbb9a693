"""The short Python API over :class:`pkdn.restore.Restorer`, kept for scripts written against it::

    from pkdn.inference import load, super_resolve
    model = load()                       # the shipped student (or load("lite"), load("my.safetensors"))
    big = super_resolve(model, pil_img)  # PIL in, PIL out (x8)
    t = super_resolve(model, lr_tensor)  # (3, h, w) or (B, 3, h, w) in [0, 1] -> x8, clamped to [0, 1]

New code can hold a ``Restorer`` directly (it also picks the precision and handles files).
"""

from __future__ import annotations

import os

import torch
from PIL import Image
from torch import nn

from pkdn.restore import (  # noqa: F401 - re-exported: the names this module has always offered
    DEFAULT_BATCH_SIZE,
    MAX_SIDE,
    MIN_SIDE,
    Restorer,
    SrReport,
    TeacherModelError,
    check_student,
)


def load(path_or_name: str | os.PathLike | None = None, device: str | torch.device | None = "cpu") -> nn.Module:
    """A student network (shipped name, file, or None: the default shipped one) in eval mode on ``device``.

    Teacher files are refused with :class:`TeacherModelError`.
    """
    return Restorer(path_or_name, device=device, precision="fp32").model


def super_resolve(
    model: nn.Module, image: Image.Image | torch.Tensor, batch_size: int = DEFAULT_BATCH_SIZE, precision: str = "fp32"
) -> Image.Image | torch.Tensor:
    """Super-resolve a PIL image (-> PIL image) or a tensor ``(3, h, w)`` / ``(B, 3, h, w)`` (-> same rank).

    float32 by default, so results do not depend on the host; ``precision="auto"`` takes the fastest path.
    """
    r = Restorer(model, precision=precision, batch_size=batch_size)
    if isinstance(image, Image.Image):
        return r.image(image)
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"expected a PIL image or a tensor, got {type(image).__name__}")
    return r.tensor(image)

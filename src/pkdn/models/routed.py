"""Two students and a gate: degradation-aware super-resolution from the LR face alone.

Why: a student trained on clean bicubic LR is the best on clean faces and
sharpens noise and blocks on degraded ones; a student trained on degraded LR
is the reverse (docs/degradation.md). A small gate looks at the LR face,
estimates how degraded it is, and blends the two outputs per image:
``sr = p * clean(lr) + (1 - p) * degraded(lr)``. The gate is fitted on
frozen students (``pkdn.train.gate``), so each student stays what it was
trained to be.

Optionally the clean half is two students by input size (``small``,
``small_max_side``): ``pkdn sr --whole`` crops each face in a window about its
own size, so an input's side tells the scale of the face in it, and the
smallest faces are served by a clean student tuned at those scales
(docs/whole-photos.md measures why).
"""

from __future__ import annotations

import torch
from torch import nn

from .student import Student


class Gate(nn.Module):
    """LR image (any size) -> logit that it is clean enough for the clean student.

    Three 3x3 convolutions see the fine structure degradations change (noise
    raises it, blur removes it, JPEG adds 8 x 8 edges); global average and max
    pooling make the decision one per image, whatever the LR size.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.width = width
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(2 * width, 1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        # Subtracting the local mean leaves the residual detail and noise, not the face's colours.
        detail = lr - nn.functional.avg_pool2d(lr, 3, stride=1, padding=1, count_include_pad=False)
        h = self.features(detail * 10.0)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.head(pooled).view(-1, 1, 1, 1)


class Routed(nn.Module):
    """``clean`` and ``degraded`` students of the same scale, blended per image by ``gate``.

    With ``small``, inputs of at most ``small_max_side`` px a side take
    ``small`` as their clean student instead of ``clean``. Behaves as a
    student to every caller: ``config`` is the clean student's (kind
    ``student``, its scale and size rules), and ``forward`` returns
    ``(sr, [])`` (no features: a routed model is not distilled into).
    """

    def __init__(
        self, clean: Student, degraded: Student, gate: Gate, small: Student | None = None, small_max_side: int = 0
    ) -> None:
        super().__init__()
        for other in (degraded, small):
            if other is not None and (
                other.config.scale != clean.config.scale or other.config.levels != clean.config.levels
            ):
                raise ValueError("routed model: all students need the same scale and levels")
        if (small is None) != (small_max_side <= 0):
            raise ValueError("routed model: a small-face student needs small_max_side > 0, and the reverse")
        self.config = clean.config
        self.clean, self.degraded, self.gate = clean, degraded, gate
        self.small, self.small_max_side = small, int(small_max_side)

    def clean_student(self, lr: torch.Tensor) -> Student:
        """The clean student for inputs of this size."""
        if self.small is not None and max(lr.shape[-2:]) <= self.small_max_side:
            return self.small
        return self.clean

    def p_clean(self, lr: torch.Tensor) -> torch.Tensor:
        """(B, 1, 1, 1): the weight of the clean student's output for each image."""
        return torch.sigmoid(self.gate(lr))

    def forward(self, lr: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        a, _ = self.clean_student(lr)(lr)
        b, _ = self.degraded(lr)
        return b + self.p_clean(lr).to(a.dtype) * (a - b), []

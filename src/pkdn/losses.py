"""PKDN's losses (paper eqs. 1-5) and the distillation weights' schedule.

Tensors in, tensors out: nothing here knows about networks or files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pkdn.metrics import Y_WEIGHTS

#: The reconstruction losses a run may use (``loss:`` in its config).
SR_LOSSES = ("l1", "psnr_y")


def sr_loss(sr: torch.Tensor, hr: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """The reconstruction term: the paper's L1, or ``psnr_y``, minus the batch's mean Y-channel PSNR (dB).

    Why ``psnr_y``: where the LR face leaves the HR face uncertain (blur, noise, JPEG), L1 is minimised by the
    per-pixel median of the plausible faces, PSNR by their mean; and the mean of per-image PSNRs, which the
    literature reports, weighs each face by its own error. ``psnr_y`` is that score on the luma the evaluation
    measures (up to its border crop and 8-bit rounding), for fine-tuning a trained network towards it.
    """
    if kind == "l1":
        return F.l1_loss(sr, hr)
    if kind == "psnr_y":
        w = sr.new_tensor(Y_WEIGHTS)[None, :, None, None] / 255.0  # the evaluation's luma, on a 0..1 scale
        mse = ((sr - hr) * w).sum(dim=1).pow(2).flatten(1).mean(dim=1)
        return 10.0 * torch.log10(mse + 1e-10).mean()
    raise ValueError(f"unknown loss {kind!r}; choose from {list(SR_LOSSES)}")


def teacher_loss(sr: torch.Tensor, hr: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Eq. 1: L_T = || SR_T - HR ||_1 (mean absolute error), or ``kind`` (:func:`sr_loss`)."""
    return sr_loss(sr, hr, kind)


def feature_loss(feats_t: Sequence[torch.Tensor], feats_s: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 5: L_FS = mean_i || F_i^T - F_i^S ||_1 over aligned features."""
    if len(feats_t) != len(feats_s):
        raise ValueError(f"teacher has {len(feats_t)} features, student {len(feats_s)}")
    terms = []
    for i, (ft, fs) in enumerate(zip(feats_t, feats_s)):
        if ft.shape != fs.shape:
            raise ValueError(f"feature {i}: teacher {tuple(ft.shape)} vs student {tuple(fs.shape)}")
        terms.append(F.l1_loss(fs, ft))
    return torch.stack(terms).mean()


@dataclass(frozen=True)
class DistillSchedule:
    """lambda_TS and lambda_FS over training progress (in epochs, fractional).

    ``constant``: the lambdas throughout. ``kdfsr`` (KDFSRNet's code): lambda_FS
    decays linearly from its value to 0 over ``decay_epochs`` while lambda_TS
    holds; after that both are 0 and the student trains on L_SR alone.
    """

    lambda_ts: float = 0.1
    lambda_fs: float = 10.0
    schedule: str = "kdfsr"
    decay_epochs: float = 10.0

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "kdfsr"):
            raise ValueError(f"distillation schedule must be 'constant' or 'kdfsr', not {self.schedule!r}")
        if self.decay_epochs <= 0:
            raise ValueError("decay_epochs must be > 0")

    def weights(self, epoch: float) -> tuple[float, float]:
        """(lambda_TS, lambda_FS) at ``epoch``."""
        if self.schedule == "constant":
            return self.lambda_ts, self.lambda_fs
        if epoch >= self.decay_epochs:
            return 0.0, 0.0
        return self.lambda_ts, self.lambda_fs * (1.0 - epoch / self.decay_epochs)


def student_loss(
    sr_s: torch.Tensor,
    feats_s: Sequence[torch.Tensor],
    hr: torch.Tensor,
    sr_t: torch.Tensor | None = None,
    feats_t: Sequence[torch.Tensor] | None = None,
    lambda_ts: float = 0.0,
    lambda_fs: float = 0.0,
    kind: str = "l1",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 2: L_S = L_SR + lambda_TS L_TS + lambda_FS L_FS; teacher terms skipped when their weight is 0.

    ``kind`` picks L_SR (:func:`sr_loss`); the distillation terms stay L1, as in the paper.

    Returns the total and its parts as detached 0-d tensors: reading them (``.item()``) waits for
    the device, so the training loop sums them on the device and reads them once per log line.
    """
    l_sr = sr_loss(sr_s, hr, kind)
    total = l_sr
    parts = {"l_sr": l_sr.detach()}
    if lambda_ts:
        if sr_t is None:
            raise ValueError("lambda_TS > 0 needs the teacher's SR output")
        l_ts = F.l1_loss(sr_s, sr_t.detach())  # eq. 4
        total = total + lambda_ts * l_ts
        parts["l_ts"] = l_ts.detach()
    if lambda_fs:
        if feats_t is None:
            raise ValueError("lambda_FS > 0 needs the teacher's features")
        l_fs = feature_loss([f.detach() for f in feats_t], feats_s)
        total = total + lambda_fs * l_fs
        parts["l_fs"] = l_fs.detach()
    parts["total"] = total.detach()
    return total, parts

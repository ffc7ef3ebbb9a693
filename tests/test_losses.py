"""Losses (paper eqs. 1-5), the lambda schedule, and gradient flow through both networks."""

from __future__ import annotations

import pytest
import torch

from pkdn.losses import DistillSchedule, feature_loss, student_loss, teacher_loss
from pkdn.models import build_model


def test_loss_values_by_hand():
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert teacher_loss(a, b).item() == pytest.approx(0.5)
    feats_t = [torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 1, 1)]
    feats_s = [torch.zeros(1, 2, 2, 2), torch.full((1, 2, 1, 1), 3.0)]
    assert feature_loss(feats_t, feats_s).item() == pytest.approx((1.0 + 3.0) / 2)
    total, parts = student_loss(a, feats_s, b, sr_t=torch.ones_like(a), feats_t=feats_t, lambda_ts=0.1, lambda_fs=10)
    assert parts["l_sr"].item() == pytest.approx(0.5) and parts["l_ts"].item() == pytest.approx(1.0)
    assert all(not p.requires_grad for p in parts.values())  # for logging: no graph kept alive
    assert total.item() == pytest.approx(0.5 + 0.1 * 1.0 + 10 * 2.0)
    total, parts = student_loss(a, feats_s, b)  # no teacher: L_SR alone
    assert total.item() == pytest.approx(0.5) and set(parts) == {"l_sr", "total"}


def test_feature_mismatch_is_an_error():
    with pytest.raises(ValueError, match="feature 0"):
        feature_loss([torch.zeros(1, 2, 2, 2)], [torch.zeros(1, 3, 2, 2)])
    with pytest.raises(ValueError, match="needs the teacher"):
        student_loss(torch.zeros(1), [], torch.zeros(1), lambda_ts=0.1)


def test_kdfsr_schedule():
    s = DistillSchedule(lambda_ts=0.1, lambda_fs=10.0, schedule="kdfsr", decay_epochs=10)
    assert s.weights(0) == (0.1, 10.0)
    assert s.weights(5) == (0.1, pytest.approx(5.0))
    assert s.weights(10) == (0.0, 0.0) and s.weights(50) == (0.0, 0.0)
    assert DistillSchedule(schedule="constant").weights(1e6) == (0.1, 10.0)
    with pytest.raises(ValueError, match="schedule"):
        DistillSchedule(schedule="cosine")


def _nonzero_grads(model: torch.nn.Module) -> dict[str, bool]:
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in model.named_parameters()}


# 16 channels with 8 attention units: with the tiny preset's 4 units a unit's ReLU can be
# dead for a whole random batch, which stops its gradient for real, not through a wiring fault.
SIZE = dict(channels=16, blocks=1, reduction=2)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    teacher, student = build_model("teacher", "tiny", **SIZE), build_model("student", "tiny", **SIZE)
    lr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 128, 128)
    parsing = torch.nn.functional.one_hot(torch.randint(0, 19, (2, 128, 128)), 19).permute(0, 3, 1, 2).float()

    # Stage 1: the teacher's own loss trains all of the teacher.
    sr_t, _ = teacher(lr, parsing)
    teacher_loss(sr_t, hr).backward()
    assert all(_nonzero_grads(teacher).values()), [n for n, ok in _nonzero_grads(teacher).items() if not ok]

    # Stage 2: teacher frozen and in eval mode; the full student loss trains all of the student.
    teacher.zero_grad(set_to_none=True)
    teacher.eval().requires_grad_(False)
    sr_t, feats_t = teacher(lr, parsing)
    sr_s, feats_s = student(lr)
    total, parts = student_loss(sr_s, feats_s, hr, sr_t, feats_t, lambda_ts=0.1, lambda_fs=10.0)
    total.backward()
    assert all(_nonzero_grads(student).values()), [n for n, ok in _nonzero_grads(student).items() if not ok]
    assert all(p.grad is None for p in teacher.parameters())
    assert parts["l_fs"] > 0 and parts["l_ts"] > 0


def test_psnr_y_loss_is_minus_the_mean_psnr_the_evaluation_reports():
    """`loss: psnr_y` is the protocol's score (pkdn.metrics, without its border crop and rounding), negated."""
    from pkdn.losses import sr_loss
    from pkdn.metrics import psnr_y

    torch.manual_seed(0)
    hr = (torch.rand(3, 3, 32, 32) * 255).round() / 255
    sr = (hr + 0.05 * torch.randn_like(hr) * torch.tensor([0.5, 1.0, 2.0]).view(3, 1, 1, 1)).double()
    sr = (sr * 255).round() / 255  # on the 8-bit grid, where the protocol's rounding changes nothing
    sr.requires_grad_(True)
    expected = psnr_y(sr.clamp(0, 1), hr.double(), border=0).mean()
    loss = sr_loss(sr.clamp(0, 1), hr.double(), "psnr_y")
    assert loss.item() == pytest.approx(-expected.item(), abs=1e-5)
    loss.backward()  # differentiable, and lowering it raises the score
    better = (sr - 0.1 * sr.grad / sr.grad.abs().max()).detach()
    assert psnr_y(better.clamp(0, 1), hr, border=0).mean() > expected
    assert sr_loss(sr, hr.double(), "l1").item() == pytest.approx(teacher_loss(sr, hr.double()).item())
    with pytest.raises(ValueError, match="unknown loss 'l2'"):
        sr_loss(sr, hr, "l2")

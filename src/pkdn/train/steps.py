"""One training step per stage (the paper's losses on one batch) and the optimiser step around them.

``teacher_step`` is eq. 1; ``student_step`` is eqs. 2-5, the student's step of
PKDN: the frozen teacher sees the LR face and the HR face's parsing map, the
student the LR face alone, and the student learns from the HR face (L_SR), the
teacher's output (L_TS) and the teacher's features (L_FS). Both return the
loss and its parts as device tensors and never wait for the device, so the
loop (:mod:`pkdn.train.loop`) and the speed benchmark time the same code.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
from torch import nn

from pkdn.config import TrainConfig
from pkdn.losses import student_loss, teacher_loss

Parts = dict[str, torch.Tensor]


def teacher_step(net: nn.Module, batch: dict[str, torch.Tensor], kind: str = "l1") -> tuple[torch.Tensor, Parts]:
    """Eq. 1: L_T = ||T(LR, parsing) - HR||_1 (or the config's ``loss``, ``kind``)."""
    sr, _ = net(batch["lr"], batch["parsing"])
    loss = teacher_loss(sr.float(), batch["hr"], kind)
    return loss, {"l_sr": loss.detach(), "total": loss.detach()}


def student_step(
    net: nn.Module,
    batch: dict[str, torch.Tensor],
    teacher: nn.Module | None = None,
    lambda_ts: float = 0.0,
    lambda_fs: float = 0.0,
    kind: str = "l1",
) -> tuple[torch.Tensor, Parts]:
    """Eqs. 2-5: L_S = L_SR + lambda_TS L1(SR_T, SR_S) + lambda_FS mean_i L1(F_i^T, F_i^S).

    The teacher runs (without gradients) only while one of its weights is non-zero.
    """
    sr_t = feats_t = None
    if teacher is not None and (lambda_ts or lambda_fs):
        with torch.no_grad():
            sr_t, feats_t = teacher(batch["lr"], batch["parsing"])
    sr, feats = net(batch["lr"])
    feats = [f.float() for f in feats]
    return student_loss(sr.float(), feats, batch["hr"], sr_t, feats_t, lambda_ts, lambda_fs, kind)


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """The learning-rate factor at a step: linear warm-up, then constant or cosine down to ``min_lr``."""
    o = cfg.optim

    def f(step: int) -> float:
        if o.warmup_steps and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "constant":
            return 1.0
        t = min(1.0, (step - o.warmup_steps) / max(1, cfg.steps - o.warmup_steps))
        floor = o.min_lr / o.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    return f


class Optimizer:
    """Adam, its learning-rate schedule, mixed precision (autocast, fp16 loss scaling) and clipping."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, device_type: str) -> None:
        o = cfg.optim
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(cfg))
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16" and device_type == "cuda")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        self.device_type, self.grad_clip = device_type, o.grad_clip

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.amp_dtype)

    def step(self, loss: torch.Tensor) -> None:
        """Backward, (clip), Adam, schedule."""
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()

    @property
    def lr(self) -> float:
        return self.sched.get_last_lr()[0]

    def state_dict(self) -> dict:
        return {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])

"""Fit the gate of a routed model (:mod:`pkdn.models.routed`) on two frozen students.

Why a fit and not the training loop: the students are fixed, so for each
training face the squared error of any blend ``p * a + (1 - p) * b`` against
the HR face ``h`` is a quadratic in ``p``:
``|p (a - b) + (b - h)|^2 = p^2 A + 2 p B + C``. Three numbers per face,
computed once, stand for both students' outputs; the gate (a few thousand
parameters) then minimises the mean log of that error over the faces, which
is the mean PSNR that evaluation reports, in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pkdn.data.dataset import FaceSRDataset
from pkdn.data.degrade import Degradation
from pkdn.models.routed import Gate
from pkdn.models.student import Student


@dataclass
class GateData:
    """LR faces and the three blend-error terms per face (A, B, C: mean over pixels)."""

    lr: torch.Tensor  # (N, 3, h, w)
    terms: torch.Tensor  # (N, 3)
    degraded: torch.Tensor  # (N,) bool: drawn from the degradation (else the clean LR)

    def best_p(self) -> torch.Tensor:
        """The per-face optimal weight of the clean student (the oracle a gate approximates)."""
        a, b = self.terms[:, 0], self.terms[:, 1]
        return (-b / a.clamp_min(1e-12)).clamp(0.0, 1.0)

    def mse(self, p: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Each face's error of the blend with clean-student weight ``p`` (faces ``idx``, or all)."""
        a, b, c = (self.terms if idx is None else self.terms[idx]).unbind(1)
        return (p * p * a + 2 * p * b + c).clamp_min(1e-10)


@torch.no_grad()
def gate_data(
    clean: Student,
    degraded: Student,
    root: str,
    split: str = "train",
    limit: int | None = None,
    degradation: Degradation | None = None,
    seed: int = 1,
    batch_size: int = 64,
) -> GateData:
    """Each face of ``split`` twice: its clean LR and one degraded draw (seeded), with the blend terms."""
    d = degradation or Degradation(enabled=True)
    sets = [
        FaceSRDataset(root, split, with_parsing=False),
        FaceSRDataset(root, split, with_parsing=False, seed=seed, degradation=d),
    ]
    n = len(sets[0]) if limit is None else min(limit, len(sets[0]))
    lrs, terms, flags = [], [], []
    for is_degraded, data in enumerate(sets):
        for start in range(0, n, batch_size):
            items = [data[i] for i in range(start, min(n, start + batch_size))]
            lr = torch.stack([it["lr"] for it in items])
            hr = torch.stack([it["hr"] for it in items])
            a, _ = clean(lr)
            b, _ = degraded(lr)
            diff, res = (a - b).flatten(1), (b - hr).flatten(1)
            terms.append(torch.stack([(diff * diff).mean(1), (diff * res).mean(1), (res * res).mean(1)], 1))
            lrs.append(lr)
            flags.append(torch.full((len(items),), bool(is_degraded)))
    return GateData(torch.cat(lrs), torch.cat(terms).double(), torch.cat(flags))


def fit_gate(
    data: GateData, width: int = 16, steps: int = 1500, lr: float = 2e-3, batch_size: int = 256, seed: int = 0
) -> Gate:
    """Minimise the mean log blend error (= maximise mean PSNR) over ``data``; flips and rotations augment."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    gate = Gate(width)
    opt = torch.optim.Adam(gate.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    n = len(data.lr)
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=g)
        x = data.lr[idx]
        k = int(torch.randint(0, 4, (), generator=g))
        x = torch.rot90(x, k, (2, 3))
        if torch.rand((), generator=g) < 0.5:
            x = x.flip(3)
        p = torch.sigmoid(gate(x)).view(-1).double()
        loss = torch.log(data.mse(p, idx)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return gate.eval()


@torch.no_grad()
def gate_report(gate: nn.Module, data: GateData) -> dict[str, float]:
    """Mean PSNR (RGB, over faces) of the clean student, the degraded one, the gate's blend and the oracle."""
    p = torch.sigmoid(gate(data.lr)).view(-1).double()
    out = {}
    for key, mask in (("clean", ~data.degraded), ("degraded", data.degraded)):
        for name, w in (
            ("clean_student", torch.ones_like(p)),
            ("degraded_student", torch.zeros_like(p)),
            ("routed", p),
            ("oracle", data.best_p()),
        ):
            out[f"{key}/{name}"] = float((-10 * torch.log10(data.mse(w)[mask])).mean())
        out[f"{key}/mean_p"] = float(p[mask].mean())
    return out


def split_data(data: GateData, holdout: float, seed: int = 0) -> tuple[GateData, GateData]:
    """A seeded split into fit and held-out faces (the same face's clean and degraded draw stay together)."""
    n = len(data.lr) // 2
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = max(1, math.floor(n * holdout))
    held, fit = perm[:k], perm[k:]

    def take(ids: Sequence[int] | torch.Tensor) -> GateData:
        ids = torch.as_tensor(ids)
        both = torch.cat([ids, ids + n])
        return GateData(data.lr[both], data.terms[both], data.degraded[both])

    return take(fit), take(held)

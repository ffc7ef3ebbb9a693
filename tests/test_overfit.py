"""Both networks can fit a handful of real faces: the optimisation path works end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pkdn.losses import teacher_loss
from pkdn.models import build_model


def _faces(celeba, n: int, hr_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    hrs, lrs = [], []
    for path in sorted((celeba / "train").glob("*.jpg"))[:n]:
        hr = Image.open(path).convert("RGB").resize((hr_size, hr_size), Image.BICUBIC)
        lr = hr.resize((hr_size // 8, hr_size // 8), Image.BICUBIC)
        hrs.append(torch.from_numpy(np.array(hr)).permute(2, 0, 1).float() / 255)
        lrs.append(torch.from_numpy(np.array(lr)).permute(2, 0, 1).float() / 255)
    return torch.stack(lrs), torch.stack(hrs)


@pytest.mark.parametrize("kind", ["teacher", "student"])
def test_tiny_network_overfits_four_faces(celeba, kind):
    # 64 x 64 HR (8 x 8 LR) keeps this quick on 2 cores; the architecture is the same as at 128.
    lr, hr = _faces(celeba, 4, 64)
    # The teacher's prior: a 19-class map of the HR face (brightness bands stand in for a parser here).
    labels = (hr.mean(1) * 18.999).long()
    parsing = torch.nn.functional.one_hot(labels, 19).permute(0, 3, 1, 2).float()
    torch.manual_seed(0)
    net = build_model(kind, "tiny")
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(400):
        sr, _ = net(lr, parsing) if kind == "teacher" else net(lr)
        loss = teacher_loss(sr, hr)
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < first / 5:
            break
    assert loss.item() < first / 5, f"{kind}: L1 {first:.4f} -> {loss.item():.4f}"

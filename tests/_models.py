"""A trained student for the tests: the shipped one when it exists, else a quickly trained ``tiny`` one.

The fallback trains a ``tiny`` student with plain Adam + L1 on 64 real train
faces for a bounded time (at most ``TRAIN_SECONDS``), starting from a
zero-initialised tail so that it starts exactly at bicubic (the network adds
its output to the bicubic-upsampled input) and can only improve on it. It is
enough to beat bicubic measurably on test faces, which is all the tests need.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

TRAIN_SECONDS = 35.0
N_TRAIN = 64


def _tensor(img) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255.0


def faces(folder: Path, n: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) float tensors of ``n`` real faces from ``folder`` (the project's degradation)."""
    from pkdn.data.degrade import hr_from_image, load_rgb, lr_from_hr

    files = sorted(folder.glob("*.jpg"))[offset : offset + n]
    hrs = [hr_from_image(load_rgb(f)) for f in files]
    return torch.stack([_tensor(lr_from_hr(h)) for h in hrs]), torch.stack([_tensor(h) for h in hrs])


def train_tiny_student(celeba: Path, out: Path, seconds: float = TRAIN_SECONDS) -> Path:
    from pkdn.checkpoint import save_model
    from pkdn.models import build_model

    torch.manual_seed(0)
    lr, hr = faces(celeba / "train", N_TRAIN)
    net = build_model("student", "tiny").to(memory_format=torch.channels_last)
    torch.nn.init.zeros_(net.tail.weight)
    torch.nn.init.zeros_(net.tail.bias)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, betas=(0.9, 0.99))
    net.train()
    g = torch.Generator().manual_seed(0)
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        # random 8 x 8 LR crops and their 64 x 64 HR crops: 4x cheaper steps than whole faces
        idx = torch.randperm(N_TRAIN, generator=g)[:16]
        y, x = (int(v) for v in torch.randint(0, 9, (2,), generator=g))
        lr_b = lr[idx, :, y : y + 8, x : x + 8].contiguous(memory_format=torch.channels_last)
        hr_b = hr[idx, :, 8 * y : 8 * y + 64, 8 * x : 8 * x + 64]
        sr, _ = net(lr_b)
        loss = (sr - hr_b).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    net.eval()
    save_model(out, net, extra={"trained_by": "tests/_models.py", "steps": steps, "seconds": seconds})
    return out


def student_path(celeba: Path, tmp_dir: Path) -> Path:
    """The shipped student's file when the package has one, else a freshly trained tiny student's."""
    from pkdn import checkpoint

    try:
        checkpoint.load_model(None)
        return checkpoint.SHIPPED
    except FileNotFoundError:
        return train_tiny_student(celeba, tmp_dir / "tiny_student.safetensors")

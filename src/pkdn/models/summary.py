"""Parameter counts and FLOPs of every network and preset (the README's table)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .presets import PRESETS, build_model


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def gflops(model: torch.nn.Module, lr_size: int = 16) -> float:
    """GFLOPs for one image (2 FLOPs per multiply-add; convolutions and matmuls, as torch counts them)."""
    c = model.config
    lr = torch.rand(1, 3, lr_size, lr_size)
    args = (
        (lr,) if c.kind == "student" else (lr, torch.rand(1, c.parsing_channels, lr_size * c.scale, lr_size * c.scale))
    )
    with FlopCounterMode(display=False) as counter:
        model.eval()(*args)
    return counter.get_total_flops() / 1e9


def summary_table(lr_size: int = 16) -> str:
    hr = lr_size * 8
    rows = [f"| preset | network | parameters | GFLOPs / {hr}x{hr} image |", "| --- | --- | ---: | ---: |"]
    variants = [
        ("teacher", {}),
        ("teacher", {"use_ffb": False}),
        ("teacher", {"use_pfb": False, "use_ffb": False}),
        ("student", {}),
    ]
    for preset in PRESETS:
        for kind, ov in variants:
            model = build_model(kind, preset, **ov)
            name = kind + {0: "", 1: " (no FFB)", 2: " (no PFB, no FFB)"}[len(ov)]
            rows.append(f"| {preset} | {name} | {count_params(model) / 1e6:.3f} M | {gflops(model, lr_size):.2f} |")
    return "\n".join(rows)

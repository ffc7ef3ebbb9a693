"""Deepen a trained network: append identity RCABs to every residual group.

Why: a trained ``lite`` student can gain capacity without starting over. An
RCAB whose second conv is zero adds nothing (``x + CA(0) * 0 = x``), so the
grown network computes exactly what the trained one did on its first step,
and training only has to learn what the new blocks add.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from .blocks import RCAB, RCAG
from .config import ModelConfig
from .presets import from_config


def can_grow(src: nn.Module, dst_config: ModelConfig) -> bool:
    """True when ``dst_config`` is student ``src``'s network with at least as many blocks per group, nothing else changed."""
    c = src.config
    return (
        c.kind == dst_config.kind == "student"
        and dst_config.blocks >= c.blocks
        and replace(c, blocks=dst_config.blocks) == dst_config
    )


@torch.no_grad()
def grow(src: nn.Module, dst: nn.Module) -> nn.Module:
    """Copy ``src`` into the deeper ``dst``: old RCABs first in each group, new ones as identities, then the group's closing conv."""
    if not can_grow(src, dst.config):
        raise ValueError(f"cannot grow {src.config} into {dst.config}: only 'blocks' may differ, and only upwards")
    src_groups = {n: m for n, m in src.named_modules() if isinstance(m, RCAG)}
    dst_groups = {n: m for n, m in dst.named_modules() if isinstance(m, RCAG)}  # the same names: can_grow held
    for name, s in src_groups.items():
        d = dst_groups[name]
        old, new = len(s.body) - 1, len(d.body) - 1
        for i in range(old):
            d.body[i].load_state_dict(s.body[i].state_dict())
        for i in range(old, new):
            block: RCAB = d.body[i]
            nn.init.zeros_(block.body[2].weight)
            nn.init.zeros_(block.body[2].bias)
        d.body[new].load_state_dict(s.body[old].state_dict())
    inside = tuple(f"{n}." for n in src_groups)
    rest = {k: v for k, v in src.state_dict().items() if not k.startswith(inside)}
    missing, unexpected = dst.load_state_dict(rest, strict=False)
    if unexpected or any(not k.startswith(inside) for k in missing):
        raise ValueError(f"grow: parameters outside the residual groups do not match ({missing}, {unexpected})")
    return dst


def grown(src: nn.Module, blocks: int) -> nn.Module:
    """A new network like ``src`` with ``blocks`` RCABs per group, computing what ``src`` computes."""
    return grow(src, from_config(replace(src.config, blocks=blocks)))

"""Which device runs the networks, and what the host CPU offers: one answer for training and inference."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """``auto``/None -> cuda when available, else cpu; ``cuda`` -> ``cuda:<local_rank>``.

    A CUDA request without a usable GPU is a ``RuntimeError`` (not a silent CPU run); any name
    other than auto, cpu, cuda or cuda:N is a ``ValueError``.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name in (None, "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (isinstance(name, str) and name.startswith("cuda:")):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} requested but no CUDA device is available to this PyTorch build")
        return torch.device(name) if ":" in name else torch.device("cuda", local_rank)
    raise ValueError(f"device must be auto, cpu or cuda (cuda:N), not {name!r}")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere, which means 'assume nothing')."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_bf16_kind() -> str | None:
    """'AMX' or 'AVX-512 BF16' when the CPU computes bfloat16 natively, else None.

    Without these, bf16 convolutions are emulated and slower than float32, so
    they are never the fast path.
    """
    flags = cpu_flags()
    if "amx_bf16" in flags and "amx_tile" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16"
    return None


def cpu_name() -> str:
    """The CPU model as the OS names it (for reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

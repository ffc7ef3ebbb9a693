"""Named network sizes.

``paper``: 64 channels, KDFSRNet's student depth (6 RCABs per stage, about
5.5 M parameters with the group convs), a teacher with 2 PFBs per stage.
``lite``: sized to train on a 2-core CPU in hours (about 0.9 M student
parameters). ``tiny``: for tests only.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .config import ModelConfig
from .student import Student
from .teacher import Teacher

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "teacher": dict(channels=64, blocks=2, reduction=16),
        "student": dict(channels=64, blocks=6, reduction=16),
    },
    "lite": {
        "teacher": dict(channels=32, blocks=2, reduction=8),
        "student": dict(channels=32, blocks=3, reduction=8),
    },
    "tiny": {
        "teacher": dict(channels=8, blocks=1, reduction=2),
        "student": dict(channels=8, blocks=1, reduction=2),
    },
}


def preset_config(kind: str, preset: str = "lite", **overrides: Any) -> ModelConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    if kind not in PRESETS[preset]:
        raise ValueError(f"model kind must be 'teacher' or 'student', not {kind!r}")
    return ModelConfig(kind=kind, **{**PRESETS[preset][kind], **overrides})


def from_config(config: ModelConfig) -> nn.Module:
    return Teacher(config) if config.kind == "teacher" else Student(config)


def build_model(kind: str, preset: str = "lite", **overrides: Any) -> nn.Module:
    """A teacher or student of a named size; keyword overrides change single fields."""
    return from_config(preset_config(kind, preset, **overrides))

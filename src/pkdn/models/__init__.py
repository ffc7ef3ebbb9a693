"""PKDN networks: pure torch.nn, no file I/O or configuration files."""

from .config import ModelConfig
from .presets import PRESETS, build_model, from_config, preset_config
from .student import Student
from .teacher import Teacher

__all__ = ["ModelConfig", "PRESETS", "Student", "Teacher", "build_model", "from_config", "preset_config"]

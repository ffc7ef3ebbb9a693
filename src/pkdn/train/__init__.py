"""Training: the one loop for teacher and student, DDP set-up, deterministic batching."""

from pkdn.train.loop import train, validate

__all__ = ["train", "validate"]

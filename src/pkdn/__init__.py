"""pkdn: Prior Knowledge Distillation Network for x8 face super-resolution."""

__version__ = "0.1.0"

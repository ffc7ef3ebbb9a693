"""Facial parsing priors: the label convention, the parsers, one interface."""

from pkdn.priors.base import Parser, available_parsers, get_parser
from pkdn.priors.labels import CLASSES, NUM_CLASSES, num_channels, to_tensor

__all__ = ["CLASSES", "NUM_CLASSES", "Parser", "available_parsers", "get_parser", "num_channels", "to_tensor"]

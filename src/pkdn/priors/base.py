"""The one small interface every parser satisfies, and the factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image


@runtime_checkable
class Parser(Protocol):
    """A face parser: RGB image in, 19-class label map out.

    ``parse`` returns a ``uint8`` ``(H, W)`` map at the image's size with the
    ids of :data:`pkdn.priors.labels.CLASSES`, or ``None`` when it finds no face.
    """

    name: str

    def parse(self, image: Image.Image) -> np.ndarray | None: ...


def _landmarks(**kw: Any) -> Parser:
    from pkdn.priors.landmarks import LandmarkParser

    return LandmarkParser(**kw)


def _bisenet(**kw: Any) -> Parser:
    from pkdn.priors.bisenet import BiSeNetParser

    return BiSeNetParser(**kw)


_FACTORIES: dict[str, Callable[..., Parser]] = {"landmarks": _landmarks, "bisenet": _bisenet}
DEFAULT_PARSER = "landmarks"


def available_parsers() -> list[str]:
    return sorted(_FACTORIES)


def register_parser(name: str, factory: Callable[..., Parser]) -> None:
    """Plug in another parser under ``name`` (used by ``get_parser``)."""
    _FACTORIES[name] = factory


def get_parser(name: str = DEFAULT_PARSER, **kw: Any) -> Parser:
    """``get_parser("landmarks")`` (default) or ``get_parser("bisenet", checkpoint=PATH)``."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown parser {name!r}; choose from {available_parsers()}") from None
    return factory(**kw)

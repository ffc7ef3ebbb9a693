"""Whole photos: find every face, align it, super-resolve it, paste it back.

``detect`` (detectors), ``align`` (template, similarity, crops), ``paste``
(feathered blending), ``photo`` (the pipeline, :class:`WholePhotoSR`).
Nothing here knows about network internals.
"""

from pkdn.faces.photo import (
    Face,
    PhotoError,
    WholePhotoSR,
    WholeResult,
)

__all__ = ["Face", "PhotoError", "WholePhotoSR", "WholeResult"]

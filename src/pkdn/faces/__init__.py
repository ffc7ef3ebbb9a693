"""Whole photos: find every face, align it, super-resolve it, paste it back.

``detect`` (detectors), ``align`` (template, similarity, crops), ``paste``
(feathered blending), ``photo`` (the pipeline, :class:`WholePhotoSR`).
Nothing here knows about network internals.
"""

from pkdn.faces.photo import (
    WHOLE_DEFAULT_MODEL,
    Face,
    PhotoError,
    WholePhotoSR,
    WholeResult,
)

__all__ = ["WHOLE_DEFAULT_MODEL", "Face", "PhotoError", "WholePhotoSR", "WholeResult"]

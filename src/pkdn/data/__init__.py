"""Data: degradation (HR -> LR), dataset preparation, the training Dataset.

``degrade``: ``load_rgb`` (the one place images are read and validated),
``hr_from_image``, ``lr_from_hr``, ``upsample``. ``prepare``: ``pkdn prepare``.
``dataset``: ``FaceSRDataset``. ``show``: ``pkdn show``'s grid.
"""

from pkdn.data.degrade import ImageError, hr_from_image, load_rgb, lr_from_hr, upsample

__all__ = ["ImageError", "hr_from_image", "load_rgb", "lr_from_hr", "upsample"]

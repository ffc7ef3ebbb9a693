"""The values super-resolution options take, shared by the CLI, the Python API and the web app.

Kept free of torch (and of every other heavy import) so that ``pkdn --help`` can show them and start at once;
:mod:`pkdn.restore` re-exports them beside the :class:`~pkdn.restore.Restorer` that uses them.
"""

from __future__ import annotations

#: faces per forward pass (CLI and API share it).
DEFAULT_BATCH_SIZE = 32
#: smallest input side accepted from files in crop mode.
MIN_SIDE = 2
#: crop-mode inputs with a longer side are refused (the x8 output of 512 px is 4096 px).
MAX_SIDE = 512
#: precisions a Restorer runs in; ``auto`` picks with :func:`pkdn.restore.choose_precision`.
PRECISIONS = ("auto", "fp32", "bf16")
#: self-ensemble sizes: 1 (off), 2 (the face and its mirror), 8 (the mirror x the four 90-degree rotations).
ENSEMBLES = (1, 2, 8)
#: how an input file is taken: ``auto`` asks :func:`pkdn.kind.input_kind` per input; ``crop`` and ``photo`` force.
FILE_KINDS = ("auto", "crop", "photo")

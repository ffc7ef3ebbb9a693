"""Model files: weights in safetensors with the model config in its metadata.

One loader serves training, evaluation and inference, so a model file means
the same network everywhere. ``load_model(None)`` gives the student shipped in
the package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from pkdn.fileio import atomic_write
from pkdn.models import ModelConfig, from_config

WEIGHTS = Path(__file__).parent / "weights"
#: the models shipped in the package, by the name users give ``--model`` / ``load(name)``.
#: "robust" is the default everywhere (crops, whole photos, the API, the web page): a PKDN student distilled from
#: a parsing-prior teacher on broad data (faces of several sources at random framing and tilt, clean and
#: degraded LR in one mix; MODEL_CARD_robust.md). "lite" is the paper's setting: clean bicubic CelebA crops.
SHIPPED_MODELS: dict[str, Path] = {
    "robust": WEIGHTS / "pkdn_student_robust.safetensors",
    "lite": WEIGHTS / "pkdn_student_lite.safetensors",
}
DEFAULT_MODEL = "robust"
SHIPPED = SHIPPED_MODELS[DEFAULT_MODEL]
#: names of models no longer shipped -> the model that replaces them (a one-line error points users there)
RETIRED_MODELS: dict[str, str] = {"real": "robust", "auto": "robust", "photo": "robust"}


def resolve_model(model: str | os.PathLike | None) -> Path:
    """A shipped model's name (or None: the default) or a file path -> the model file's path."""
    if model is None:
        model = DEFAULT_MODEL
    if isinstance(model, str) and model in RETIRED_MODELS and not Path(model).is_file():
        new = RETIRED_MODELS[model]
        raise FileNotFoundError(f"model {model!r} is retired: use {new!r} (the default), which replaces it")
    if isinstance(model, str) and model in SHIPPED_MODELS:
        path = SHIPPED_MODELS[model]
        if not path.exists():
            raise FileNotFoundError(f"{path}: shipped model {model!r} is missing from this installation")
        return path
    path = Path(model)
    if not path.is_file():
        names = ", ".join(SHIPPED_MODELS)
        raise FileNotFoundError(f"{path}: no such model file (shipped models: {names})")
    return path


#: key of a model file's "extra" metadata: true when the network learned from upright faces only (``data.rotate``
#: false, or no augmentation at all). Such a network is not equivariant to quarter turns, so the 8-view
#: self-ensemble, six of whose views are turned, lowers its PSNR (docs/cli.md); :class:`pkdn.restore.Restorer`
#: says so when asked for it.
UPRIGHT_ONLY = "upright_only"


def save_model(path: str | os.PathLike, model: nn.Module, extra: dict | None = None) -> None:
    """Write ``model``'s weights and config (plus optional JSON-able ``extra`` metadata) atomically."""
    meta = {"format": "pkdn", "model_config": json.dumps(model.config.to_dict())}
    if extra:
        meta["extra"] = json.dumps(extra)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(Path(path), lambda tmp: save_file(state, tmp, metadata=meta))


def read_metadata(path: str | os.PathLike) -> dict:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises several types for bad files
        raise ValueError(f"{path}: not a pkdn model file ({e})") from None
    if meta.get("format") != "pkdn" or "model_config" not in meta:
        raise ValueError(f"{path}: not a pkdn model file (no model config in its metadata)")
    out = {"model_config": json.loads(meta["model_config"])}
    if "extra" in meta:
        out["extra"] = json.loads(meta["extra"])
    return out


def upright_only(model: str | os.PathLike | None) -> bool:
    """Whether a model file (or shipped name) says its network learned from upright faces only (:data:`UPRIGHT_ONLY`)."""
    return bool(read_metadata(resolve_model(model)).get("extra", {}).get(UPRIGHT_ONLY, False))


def update_extra(path: str | os.PathLike, **fields: object) -> None:
    """Merge ``fields`` into a model file's "extra" metadata, rewriting it atomically (weights unchanged).

    Why: a file written before a metadata key existed (a shipped model's run) can be given it when shipped.
    """
    path = Path(path)
    read_metadata(path)  # refuses a file that is not a pkdn model, in one line
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    meta["extra"] = json.dumps({**json.loads(meta.get("extra", "{}")), **fields})
    state = load_file(str(path))
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


def load_model(path: str | os.PathLike | None = None, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the network stored at ``path`` (a file, a shipped model's name, or None: the default), in eval mode."""
    path = resolve_model(path)
    meta = read_metadata(path)
    model = from_config(ModelConfig.from_dict(meta["model_config"]))
    model.load_state_dict(load_file(str(path), device=str(map_location)))
    return model.to(map_location).eval()

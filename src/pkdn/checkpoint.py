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
from pkdn.models.routed import Gate, Routed

WEIGHTS = Path(__file__).parent / "weights"
#: the models shipped in the package, by the name users give ``--model`` / ``load(name)``.
#: "lite" learned from clean bicubic LR; "real" from realistically degraded LR (docs/degradation.md);
#: "auto" is both, blended per face by a gate that judges how degraded the LR face is (pkdn.models.routed);
#: "photo" is "auto" with both students fine-tuned on faces at the tilt and scale --whole crops them, plus a clean
#: student for small inputs (the windows of faces under 18 px) tuned at those faces' scales.
SHIPPED_MODELS: dict[str, Path] = {
    "lite": WEIGHTS / "pkdn_student_lite.safetensors",
    "real": WEIGHTS / "pkdn_student_real.safetensors",
    "auto": WEIGHTS / "pkdn_student_auto.safetensors",
    "photo": WEIGHTS / "pkdn_student_photo.safetensors",
}
DEFAULT_MODEL = "lite"
#: the model of whole-photo mode (``pkdn sr --whole``, ``WholePhotoSR``, the web page's photo mode) when none
#: is named: docs/whole-photos.md measures why.
WHOLE_DEFAULT_MODEL = "photo"
SHIPPED = SHIPPED_MODELS[DEFAULT_MODEL]


def resolve_model(model: str | os.PathLike | None) -> Path:
    """A shipped model's name (or None: the default) or a file path -> the model file's path."""
    if model is None:
        model = DEFAULT_MODEL
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
    if isinstance(model, Routed):  # students and a gate in one file: the other students' configs and the gate's
        routed = {"degraded": model.degraded.config.to_dict(), "gate_width": model.gate.width}
        if model.small is not None:
            routed.update(small=model.small.config.to_dict(), small_max_side=model.small_max_side)
        meta["routed"] = json.dumps(routed)
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
    if "routed" in meta:
        out["routed"] = json.loads(meta["routed"])
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
    if "routed" in meta:
        r = meta["routed"]
        second = from_config(ModelConfig.from_dict(r["degraded"]))
        small = from_config(ModelConfig.from_dict(r["small"])) if "small" in r else None
        model = Routed(model, second, Gate(r["gate_width"]), small, r.get("small_max_side", 0))
    model.load_state_dict(load_file(str(path), device=str(map_location)))
    return model.to(map_location).eval()

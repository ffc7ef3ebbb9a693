"""Training configuration: plain YAML mapped onto dataclasses.

Every run writes the exact config it used (``config.yaml``) next to its
checkpoints; ``load_config`` reads it back, so a run can be repeated or
resumed from its own folder.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from pkdn.data.degrade import Degradation
from pkdn.losses import DistillSchedule


@dataclass
class ModelSection:
    preset: str = "lite"
    overrides: dict[str, Any] = field(default_factory=dict)  # single ModelConfig fields, e.g. use_ffb: false


@dataclass
class DataSection:
    root: str = "prepared/celeba"  # a folder made by `pkdn prepare`
    parsing: str = "full"  # grouping scheme of the parsing map (teacher input channels follow it)
    augment: bool = True  # joint flips (left/right classes swapped) and 90-degree rotations
    num_workers: int = 0
    val_limit: int | None = None  # validate on the first N val images only (None: all)
    # realistic LR synthesised on the fly from HR (train and val; val with a fixed draw); see docs/degradation.md
    degrade: Degradation = field(default_factory=Degradation)


@dataclass
class OptimSection:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    schedule: str = "cosine"  # "constant" or "cosine" (to min_lr over the run)
    min_lr: float = 1e-6
    warmup_steps: int = 0
    grad_clip: float | None = None


@dataclass
class DistillSection:
    enabled: bool = True  # False: L_SR only (the --no-distill baseline)
    lambda_ts: float = 0.1
    lambda_fs: float = 10.0
    schedule: str = "kdfsr"
    decay_epochs: float = 10.0

    def to_schedule(self) -> DistillSchedule:
        return DistillSchedule(self.lambda_ts, self.lambda_fs, self.schedule, self.decay_epochs)


@dataclass
class TrainConfig:
    stage: str = "teacher"  # "teacher" or "student"
    out_dir: str = "runs/teacher"
    teacher: str | None = None  # the teacher's model file (student stage with distillation)
    init: str | None = None  # start from these weights (a model file of the same network), e.g. to fine-tune
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    distill: DistillSection = field(default_factory=DistillSection)
    batch_size: int = 8  # global: split across DDP ranks
    steps: int = 10000
    val_every: int = 500
    ckpt_every: int = 100
    log_every: int = 50
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda"
    amp: str = "none"  # "none", "bf16", "fp16" (CUDA)
    channels_last: bool = False
    threads: int | None = None  # torch CPU threads per process (None: torch's default)

    def validate(self) -> None:
        if self.stage not in ("teacher", "student"):
            raise ValueError(f"config: stage must be 'teacher' or 'student', not {self.stage!r}")
        if self.stage == "student" and self.distill.enabled and not self.teacher:
            raise ValueError("config: a distilled student needs `teacher: MODEL_FILE` (or distill.enabled: false)")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"config: amp must be none, bf16 or fp16, not {self.amp!r}")
        if self.optim.schedule not in ("constant", "cosine"):
            raise ValueError(f"config: optim.schedule must be constant or cosine, not {self.optim.schedule!r}")
        for name in ("batch_size", "steps", "val_every", "ckpt_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"config: {name} must be >= 1")
        self.distill.to_schedule()
        self.data.degrade.validate()


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Dataclass from a dict, refusing unknown keys (a typo must not be silently ignored)."""
    if not isinstance(data, dict):
        raise ValueError(f"config: {where or 'top level'} must be a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"config: unknown key(s) {unknown} in {where or 'top level'}; known: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value or {}, f"{where}.{key}".lstrip("."))
        elif get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        elif hint is float or (get_origin(hint) is not None and float in get_args(hint) and isinstance(value, int)):
            value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        kwargs[key] = value
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    cfg = _build(TrainConfig, data, "")
    cfg.validate()
    return cfg


def set_dotted(data: dict[str, Any], dotted: str) -> None:
    """Apply one ``key.sub=value`` override (value parsed as YAML) to a config dict."""
    if "=" not in dotted:
        raise ValueError(f"override {dotted!r}: expected KEY=VALUE, e.g. optim.lr=2e-4")
    key, raw = dotted.split("=", 1)
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = yaml.safe_load(raw)


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read the config ({e})") from None
    for o in overrides or []:
        set_dotted(data, o)
    try:
        return config_from_dict(data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None


def dump_config(cfg: TrainConfig) -> str:
    def plain(x: Any) -> Any:
        if isinstance(x, tuple):
            return list(x)
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x

    return yaml.safe_dump(plain(asdict(cfg)), sort_keys=False)

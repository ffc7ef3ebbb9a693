"""Training configuration: plain YAML mapped onto dataclasses.

Every run writes the exact config it used (``config.yaml``) next to its
checkpoints; ``load_config`` reads it back, so a run can be repeated or
resumed from its own folder.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from pkdn.data.degrade import Degradation
from pkdn.losses import SR_LOSSES, DistillSchedule

T = TypeVar("T")


@dataclass
class ModelSection:
    preset: str = "lite"
    overrides: dict[str, Any] = field(default_factory=dict)  # single ModelConfig fields, e.g. use_ffb: false


@dataclass
class DataSection:
    root: str = "prepared/celeba"  # a folder made by `pkdn prepare`
    # more prepared folders whose train split joins root's (faces of other sources); val comes from root alone
    extra_roots: list[str] = field(default_factory=list)
    parsing: str = "full"  # grouping scheme of the parsing map (teacher input channels follow it)
    augment: bool = True  # joint flips (left/right classes swapped) and 90-degree rotations
    # the rotations of `augment` (the lineage's recipe); off, a network spends no capacity on sideways faces,
    # which aligned crops and `--whole` never give it (docs/training.md)
    rotate: bool = True
    num_workers: int = 0
    val_limit: int | None = None  # validate on the first N val images only (None: all)
    # realistic LR synthesised on the fly from HR (train and val; val with a fixed draw); see docs/degradation.md
    degrade: Degradation = field(default_factory=Degradation)

    @property
    def upright_only(self) -> bool:
        """Whether training shows the network upright faces only (no quarter turns): checkpoint.UPRIGHT_ONLY."""
        return not (self.augment and self.rotate)


@dataclass
class OptimSection:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    schedule: str = "cosine"  # "constant" or "cosine" (to min_lr over the run)
    min_lr: float = 1e-6
    warmup_steps: int = 0
    grad_clip: float | None = None


@dataclass(frozen=True)
class DistillSection(DistillSchedule):
    """The distillation schedule (lambda_TS, lambda_FS, schedule, decay_epochs) and whether it is on."""

    enabled: bool = True  # False: L_SR only (the --no-distill baseline)


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
    loss: str = "l1"  # L_SR: "l1" (the paper) or "psnr_y" (the mean Y PSNR itself; pkdn.losses.sr_loss)
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
        if self.loss not in SR_LOSSES:
            raise ValueError(f"config: loss must be one of {list(SR_LOSSES)}, not {self.loss!r}")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"config: amp must be none, bf16 or fp16, not {self.amp!r}")
        if self.optim.schedule not in ("constant", "cosine"):
            raise ValueError(f"config: optim.schedule must be constant or cosine, not {self.optim.schedule!r}")
        for name in ("batch_size", "steps", "val_every", "ckpt_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"config: {name} must be >= 1")
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
        hint, here = hints[key], f"{where}.{key}".lstrip(".")
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, here)
        else:
            kwargs[key] = _coerce(value, hint, here)
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ValueError(f"config: {where or 'top level'}: {e}") from None


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the field's declared type (YAML 1.1 reads "2e-4" as a string; the field says float)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where) if len(inner) == 1 else value
    if hint is Any:
        return value
    bad = ValueError(f"config: {where}: expected {_type_name(hint)}, got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad
    if hint in (int, float):
        if isinstance(value, bool):
            raise bad
        try:
            number = float(value) if isinstance(value, str) else value
            if not isinstance(number, (int, float)):
                raise TypeError
        except (TypeError, ValueError):
            raise bad from None
        if hint is int:
            if float(number) != int(number):
                raise bad
            return int(number)
        return float(number)
    if hint is str:
        if isinstance(value, (dict, list)) or value is None:
            raise bad
        return str(value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or (Ellipsis not in args and len(value) != len(args)):
            raise bad
        kinds = [args[0]] * len(value) if Ellipsis in args else args
        return tuple(_coerce(v, k, f"{where}[{i}]") for i, (v, k) in enumerate(zip(value, kinds)))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return value
    return value


def _type_name(hint: Any) -> str:
    if get_origin(hint) is tuple:
        return f"a list of {len(get_args(hint))} numbers"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}.get(
        get_origin(hint) or hint, str(hint)
    )


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    cfg = _build(TrainConfig, data, "")
    cfg.validate()
    return cfg


def set_dotted(data: dict[str, Any], dotted: str) -> None:
    """Apply one ``key.sub=value`` override to a config dict (value read as YAML, then typed by the field)."""
    if "=" not in dotted:
        raise ValueError(f"override {dotted!r}: expected KEY=VALUE, e.g. optim.lr=2e-4")
    key, raw = dotted.split("=", 1)
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = yaml.safe_load(raw)


def load_yaml(
    path: str | os.PathLike,
    build: Callable[[dict[str, Any]], T],
    overrides: list[str] | None = None,
    what: str = "config",
) -> T:
    """Read a YAML file, apply ``KEY=VALUE`` overrides, build it with ``build``; errors name the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read the {what} ({e})") from None
    for o in overrides or []:
        set_dotted(data, o)
    try:
        return build(data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
    return load_yaml(path, config_from_dict, overrides)


def dump_config(cfg: TrainConfig) -> str:
    def plain(x: Any) -> Any:
        if isinstance(x, tuple):
            return list(x)
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x

    return yaml.safe_dump(plain(asdict(cfg)), sort_keys=False)

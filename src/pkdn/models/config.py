"""The hyper-parameters that define a network: what a checkpoint must carry to be rebuilt."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    kind: str  # "teacher" or "student"
    channels: int = 64
    blocks: int = 6  # RCABs (or PFBs, in the teacher) per stage
    reduction: int = 16  # channel-attention reduction r (hidden = channels // r)
    scale: int = 8
    levels: int = 4  # down/up-sampling steps (128 -> 8 and back)
    parsing_channels: int = 19  # teacher only: channels of the parsing input
    use_pfb: bool = True  # teacher only: PFB stages (False: RCAG stages, parsing joins the input)
    use_ffb: bool = True  # teacher only: FFBs fuse retained encoder features in the decoder
    global_residual: bool = True  # add the bicubic-upsampled input to the output (KDFSRNet had none)

    def __post_init__(self) -> None:
        if self.kind not in ("teacher", "student"):
            raise ValueError(f"model kind must be 'teacher' or 'student', not {self.kind!r}")
        for name in ("channels", "blocks", "reduction", "scale", "levels", "parsing_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"model config: {name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"model config: unknown keys {sorted(unknown)}")
        return cls(**d)

"""Everything a training run needs, as one serialisable record (stored in checkpoints)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    model: str = "geossm-nano"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None
    data: str = "synthetic"
    polar: bool = False
    out: str = "runs/train"
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.03
    optimizer: str = "adamw"
    rho: float = 0.5
    warmup_steps: int = 100
    loss: str = "ddal"
    loss_params: dict[str, Any] = field(default_factory=dict)
    clip_norm: float = 1.0
    amp: bool = True
    augment: bool = True
    eval_every: int = 0
    save_every: int = 200
    log_every: int = 10
    eval_batch_size: int = 64
    workers: int = 0
    seed: int = 0
    device: str = "auto"
    show_progress: bool = True
    # batches of neighbours (train/hard_negatives.py): off | gps | similarity | gps+similarity
    hard_negatives: str = "off"
    neighbours: int = 16
    # set by `cvgl-edge distil`: teacher path + sha256 and the distillation weights (train/distil.py)
    distil: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)

"""Everything a training run needs, as one serialisable record (stored in checkpoints)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cvgl_edge.errors import CvglError

# (field, lowest allowed value, whether that value itself is allowed): the CLI and the Python API
# meet these checks in one place, when the config is made, before any work
_NUMBERS: tuple[tuple[str, float, bool], ...] = (
    ("lr", 0.0, False), ("weight_decay", 0.0, True), ("rho", 0.0, False), ("clip_norm", 0.0, True),
)
_INTEGERS: tuple[tuple[str, int], ...] = (
    ("epochs", 1), ("batch_size", 2), ("warmup_steps", 0), ("eval_every", 0), ("save_every", 0),
    ("log_every", 1), ("eval_batch_size", 1), ("workers", 0), ("neighbours", 1),
)
_DISTIL_NUMBERS: tuple[tuple[str, float, bool], ...] = (
    ("temperature", 0.0, False), ("relational_weight", 0.0, True), ("align_weight", 0.0, True),
)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_number(name: str, value: Any, low: float, inclusive: bool) -> None:
    """A finite real number above ``low`` (or equal to it when ``inclusive``); else one line."""
    bound = f">= {low:g}" if inclusive else f"> {low:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CvglError(f"{_option(name)} must be a finite number {bound}, got {value!r}")
    if value < low or (value == low and not inclusive):
        raise CvglError(f"{_option(name)} must be {bound}, got {value!r}")


def check_integer(name: str, value: Any, low: int) -> None:
    """An integer >= ``low``; else one line."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CvglError(f"{_option(name)} must be an integer, got {value!r}")
    if value < low:
        raise CvglError(f"{_option(name)} must be >= {low}, got {value}")


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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject numbers no run can use (a negative or NaN --lr, ...) with a one-line reason,
        before any work; torch would otherwise fail deep inside with a traceback, or train on."""
        for name, low, inclusive in _NUMBERS:
            check_number(name, getattr(self, name), low, inclusive)
        for name, low in _INTEGERS:
            check_integer(name, getattr(self, name), low)
        if self.max_steps is not None:
            check_integer("max_steps", self.max_steps, 1)
        for name, low, inclusive in _DISTIL_NUMBERS:
            if self.distil and name in self.distil:
                check_number(name, self.distil[name], low, inclusive)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)

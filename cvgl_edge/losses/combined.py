"""Weighted sums of registered losses: ``infonce+dice+kl`` (VimGeo's ablation rows) and the like.

Spec: loss names joined by ``+``; parameters ``name.param=value`` go to one component and
``name.weight=value`` sets its weight (default 1). Example (CLI)::

    --loss infonce+dice+kl --loss-param dice.weight=0.5 --loss-param infonce.label_smoothing=0

The combination is an ``nn.Module`` whose components live in a ``ModuleDict`` keyed by name,
so learnable parts (InfoNCE's temperature) are optimised and their state_dict round-trips
through checkpoints (keys ``parts.infonce.log_scale``). ``last_terms`` holds the unweighted
value of every component from the latest call (floats, for logging).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from cvgl_edge.errors import CvglError


def parse_combination(spec: str, params: Mapping[str, Any]) -> tuple[list[str], dict[str, dict[str, Any]],
                                                                    dict[str, float]]:
    """'a+b' and {'a.x': 1, 'b.weight': 0.5} -> (['a', 'b'], {'a': {'x': 1}, 'b': {}}, {'a': 1.0, 'b': 0.5})."""
    names = [n.strip() for n in spec.split("+")]
    if any(not n for n in names):
        raise CvglError(f"loss {spec!r}: empty component name (write e.g. infonce+dice+kl)")
    if len(set(names)) != len(names):
        raise CvglError(f"loss {spec!r} names a component twice")
    per: dict[str, dict[str, Any]] = {n: {} for n in names}
    weights = {n: 1.0 for n in names}
    for key, value in params.items():
        name, dot, param = key.partition(".")
        if not dot:
            raise CvglError(f"loss parameter {key!r}: in a combined loss write COMPONENT.PARAM, "
                            f"e.g. {names[0]}.weight=0.5")
        if name not in per:
            raise CvglError(f"loss parameter {key!r}: {name!r} is not a component of {spec!r}")
        if param == "weight":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise CvglError(f"loss parameter {key}: the weight must be a number >= 0, got {value!r}")
            weights[name] = float(value)
        else:
            per[name][param] = value
    return names, per, weights


class CombinedLoss(nn.Module):
    """sum_k weight_k * loss_k(a, b) over named component losses."""

    def __init__(self, parts: Mapping[str, nn.Module], weights: Mapping[str, float]) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(dict(parts))
        self.weights = {name: float(weights.get(name, 1.0)) for name in parts}
        self.last_terms: dict[str, float] = {}

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = a.new_zeros((), dtype=torch.float32)
        terms = {}
        for name, part in self.parts.items():
            value = part(a, b)
            terms[name] = value.detach()
            total = total + self.weights[name] * value
        self.last_terms = {k: float(v) for k, v in terms.items()}
        return total

    def extra_repr(self) -> str:
        return "weights=" + ", ".join(f"{k}:{v:g}" for k, v in self.weights.items())


def build_combined(spec: str, params: Mapping[str, Any], build_one: Callable[..., nn.Module]) -> CombinedLoss:
    """The CombinedLoss for ``spec``; ``build_one(name, **kw)`` builds (and checks) each component."""
    names, per, weights = parse_combination(spec, params)
    return CombinedLoss({name: build_one(name, **per[name]) for name in names}, weights)

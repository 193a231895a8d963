"""Loss registry: ``build_loss(name, **kw)`` for configs and the CLI.

A name is one registered loss (``ddal``, ``infonce``, ``triplet``, ``triplet-semihard``,
``dice``, ``kl``) or several joined by ``+`` (a weighted sum, ``combined.py``), whose
parameters are prefixed by the component: ``build_loss("infonce+dice", **{"dice.weight": 0.5})``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

from torch import nn

from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.losses.combined import build_combined
from cvgl_edge.losses.ddal import DDALoss
from cvgl_edge.losses.dice import DiceLoss
from cvgl_edge.losses.infonce import InfoNCELoss
from cvgl_edge.losses.kl import KLLoss
from cvgl_edge.losses.triplet import SemiHardTripletLoss, SoftTripletLoss

LOSSES: dict[str, Callable[..., nn.Module]] = {
    "ddal": DDALoss,
    "dice": DiceLoss,
    "infonce": InfoNCELoss,
    "kl": KLLoss,
    "triplet": SoftTripletLoss,
    "triplet-semihard": SemiHardTripletLoss,
}


def list_losses() -> list[str]:
    return sorted(LOSSES)


def _build_one(name: str, **kwargs: Any) -> nn.Module:
    if name not in LOSSES:
        raise CvglError(f"unknown loss {name!r}; available: {', '.join(list_losses())} "
                        "(or several joined by +, e.g. infonce+dice+kl)")
    cls = LOSSES[name]
    params = {k: p for k, p in inspect.signature(cls).parameters.items() if k != "self"}
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise CvglError(f"unknown option(s) for loss {name}: {', '.join(unknown)}; "
                        f"valid: {', '.join(params)}")
    for key, value in kwargs.items():
        _check_kind(name, key, value, params[key].default)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, ArithmeticError) as exc:  # a value the loss cannot use
        raise CvglError(f"loss {name}: {first_line(exc)}") from None


def _check_kind(loss: str, key: str, value: Any, default: Any) -> None:
    """A value of the kind the parameter's default has: a flag stays a flag, a number a finite
    number (``--loss-param gamma=abc`` arrives as the string 'abc')."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise CvglError(f"loss {loss}: {key} must be true or false, got {value!r}")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CvglError(f"loss {loss}: {key} must be a finite number, got {value!r}")


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """A loss module ``loss(a, b) -> scalar`` for aligned L2-normalised batches."""
    if "+" in name:
        return build_combined(name, kwargs, _build_one)
    return _build_one(name, **kwargs)

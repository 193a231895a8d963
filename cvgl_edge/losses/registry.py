"""Loss registry: ``build_loss(name, **kw)`` for configs and the CLI.

A name is one registered loss (``ddal``, ``infonce``, ``triplet``, ``triplet-semihard``,
``dice``, ``kl``) or several joined by ``+`` (a weighted sum, ``combined.py``), whose
parameters are prefixed by the component: ``build_loss("infonce+dice", **{"dice.weight": 0.5})``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from cvgl_edge.errors import CvglError
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
    valid = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise CvglError(f"unknown option(s) for loss {name}: {', '.join(unknown)}; "
                        f"valid: {', '.join(valid)}")
    return cls(**kwargs)


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """A loss module ``loss(a, b) -> scalar`` for aligned L2-normalised batches."""
    if "+" in name:
        return build_combined(name, kwargs, _build_one)
    return _build_one(name, **kwargs)

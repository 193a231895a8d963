"""Loss registry: ``build_loss(name, **kw)`` for configs and the CLI."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.losses.ddal import DDALoss
from cvgl_edge.losses.infonce import InfoNCELoss
from cvgl_edge.losses.triplet import SoftTripletLoss

LOSSES: dict[str, Callable[..., nn.Module]] = {
    "ddal": DDALoss,
    "infonce": InfoNCELoss,
    "triplet": SoftTripletLoss,
}


def list_losses() -> list[str]:
    return sorted(LOSSES)


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """A loss module ``loss(a, b) -> scalar`` for aligned L2-normalised batches."""
    if name not in LOSSES:
        raise CvglError(f"unknown loss {name!r}; available: {', '.join(list_losses())}")
    cls = LOSSES[name]
    valid = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise CvglError(f"unknown option(s) for loss {name}: {', '.join(unknown)}; "
                        f"valid: {', '.join(valid)}")
    return cls(**kwargs)

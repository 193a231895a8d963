"""Which torch device model code runs on: ``auto`` or a name the user typed, checked before work."""

from __future__ import annotations

import torch

from cvgl_edge.errors import CvglError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; an unavailable explicit device is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CvglError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CvglError(f"device {name!r} requested but no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CvglError(f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) exist")
    return device

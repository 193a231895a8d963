"""The cvgl-edge checkpoint format, shared by training, eval and export.

A ``torch.save`` dict with at least::

    {"format": "cvgl-edge", "format_version": 1, "model_name": str,
     "model_config": dict, "state_dict": dict}

Training may add keys (optimizer, epoch, ...). The model is rebuilt from the file alone:
``build_model(model_name, model_config)`` followed by a strict ``load_state_dict``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.io import atomic_torch_save
from cvgl_edge.models.registry import build_model, model_config

FORMAT = "cvgl-edge"
FORMAT_VERSION = 1


def checkpoint_payload(model: nn.Module) -> dict[str, Any]:
    """The minimal checkpoint dict for ``model`` (built via ``build_model``)."""
    name = getattr(model, "model_name", None)
    config = getattr(model, "config", None)
    if not isinstance(name, str) or config is None or not hasattr(config, "to_dict"):
        raise CvglError("model has no model_name/config: build it with build_model(name)")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": name,
        "model_config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def save_checkpoint(model: nn.Module, path: str | Path, **extra: Any) -> Path:
    """Write ``checkpoint_payload(model)`` plus ``extra`` keys to ``path``, atomically (a full
    disk is a one-line error and leaves the previous file, see ``cvgl_edge.io.atomic_write``)."""
    return atomic_torch_save({**checkpoint_payload(model), **extra}, path)


def _numpy_safe_globals() -> list[Any]:
    """numpy array/scalar rebuilders: training checkpoints carry numpy RNG state."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray

    dtypes = [type(np.dtype(t)) for t in (np.uint32, np.int64, np.float32, np.float64, np.bool_)]
    return [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar, *dtypes]


def load_weights_only(path: str | Path, map_location: Any = "cpu", extra_globals: Sequence[Any] = ()) -> Any:
    """``torch.load`` that cannot run code: weights-only unpickling, allowing just the numpy
    types cvgl-edge's own checkpoints hold (the RNG state) plus ``extra_globals`` (plain-data
    types a foreign format carries). Every checkpoint and weights read goes through here."""
    with torch.serialization.safe_globals([*_numpy_safe_globals(), *extra_globals]):
        return torch.load(path, map_location=map_location, weights_only=True)


_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def load_failure_reason(exc: BaseException) -> str:
    """One line on why a load failed; for a weights-only refusal, the refused object rather
    than torch's advice to load the file with weights_only=False."""
    text = _ANSI.sub("", str(exc))
    if not text.startswith("Weights only load failed"):
        return first_line(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if not line.startswith(_BOILERPLATE)), "")
    detail = detail.removeprefix("WeightsUnpickler error:").strip() or "not tensors and plain data"
    return f"refused by the weights-only loader, which never runs code from a file ({detail})"


def read_checkpoint(
    path: str | Path, map_location: Any = "cpu", trusted: bool = False
) -> dict[str, Any]:
    """Load and validate the checkpoint dict.

    Unpickling is weights-only (``load_weights_only``) so a checkpoint cannot run code;
    ``trusted=True`` (Python API only, never the CLI or ``--resume``) lifts that for
    files the user vouches for.
    """
    path = Path(path)
    if not path.is_file():
        raise CvglError(f"checkpoint not found: {path}")
    try:
        if trusted:
            payload = torch.load(path, map_location=map_location, weights_only=False)
        else:
            payload = load_weights_only(path, map_location)
    except Exception as exc:  # noqa: BLE001 - unreadable file is a user problem
        raise CvglError(f"cannot read checkpoint {path}: {load_failure_reason(exc)}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CvglError(f"{path} is not a cvgl-edge checkpoint (no 'format': '{FORMAT}' entry)")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CvglError(
            f"{path} has checkpoint format_version {version!r}; "
            f"this cvgl-edge reads <= {FORMAT_VERSION}"
        )
    for key in ("model_name", "model_config", "state_dict"):
        if key not in payload:
            raise CvglError(f"{path} is missing the checkpoint entry {key!r}")
    return payload


def load_state_dict_strict(
    model: nn.Module, state_dict: dict[str, torch.Tensor], source: str,
    against: str = "its model config",
) -> None:
    """Strict load with a one-line CvglError naming a few offending keys (``source`` does
    not match ``against``)."""
    target = model.state_dict()
    missing = [k for k in target if k not in state_dict]
    unexpected = [k for k in state_dict if k not in target]
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(target[k].shape)}" for k, v in state_dict.items()
             if k in target and tuple(v.shape) != tuple(target[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches ({'; '.join(wrong[:3])})")
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])})")
        raise CvglError(f"{source} does not match {against}: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)


def load_checkpoint(
    path: str | Path, map_location: Any = "cpu", trusted: bool = False
) -> nn.Module:
    """Rebuild the model a checkpoint describes and load its weights (returned in eval mode)."""
    return model_from_payload(read_checkpoint(path, map_location, trusted=trusted), str(path))


#: options added with a new default; a checkpoint written before one existed was built with the
#: old behaviour, which it keeps (the SALAD flatten order changes its descriptors; the Vim
#: backward dt bias only its initialisation, recorded truthfully)
LEGACY_OPTIONS: dict[str, Any] = {"salad_order": "cluster-major", "backward_dt_bias": "dt-range"}


def saved_model_config(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` of a checkpoint's ``name`` model with the options it predates set to their old values."""
    options = model_config(name)
    return {**{k: v for k, v in LEGACY_OPTIONS.items() if k in options and k not in config}, **config}


def model_from_payload(payload: dict[str, Any], source: str) -> nn.Module:
    """Model described by an already-read checkpoint dict, weights loaded, in eval mode."""
    model = build_model(payload["model_name"], saved_model_config(payload["model_name"], payload["model_config"]))
    load_state_dict_strict(model, payload["state_dict"], f"checkpoint {source}")
    return model.eval()

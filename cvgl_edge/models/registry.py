"""Model registry: names -> (builder, default options), so CLI, training and checkpoints
can rebuild any model from a name plus a plain dict of options.

A builder takes every option as a keyword argument and returns an ``nn.Module`` that
exposes ``config`` (with ``to_dict()``); ``build_model`` stamps ``model_name`` on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import nn

from cvgl_edge.errors import CvglError

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    defaults: dict[str, Any]
    description: str = ""


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    name: str, defaults: Mapping[str, Any] | None = None, description: str = ""
) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder(**options)`` under ``name`` with its default options.

    Every option a user may override must appear in ``defaults``; anything else is
    rejected by ``build_model`` with the list of valid options.
    """

    def decorate(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = ModelEntry(name, builder, dict(defaults or {}), description)
        return builder

    return decorate


def list_models() -> list[str]:
    return sorted(_MODELS)


def _entry(name: str) -> ModelEntry:
    if name not in _MODELS:
        raise CvglError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name]


def model_config(name: str) -> dict[str, Any]:
    """Default options of a registered model (a fresh copy)."""
    return dict(_entry(name).defaults)


def model_description(name: str) -> str:
    return _entry(name).description


def build_model(
    name: str, config: Mapping[str, Any] | None = None, **overrides: Any
) -> nn.Module:
    """Build a registered model; ``config`` (e.g. a checkpoint's ``model_config``) and
    keyword ``overrides`` replace the preset's defaults."""
    entry = _entry(name)
    options = dict(entry.defaults)
    given = {**dict(config or {}), **overrides}
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise CvglError(
            f"unknown option(s) for {name}: {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(options))}"
        )
    options.update(given)
    model = entry.builder(**options)
    model.model_name = name
    return model

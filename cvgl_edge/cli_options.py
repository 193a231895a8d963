"""Parsing of command-line values that typer cannot parse by itself."""

from __future__ import annotations

import ast
from typing import Any

from cvgl_edge.errors import CvglError


def parse_size(text: str, option: str) -> tuple[int, int]:
    """'128x512' -> (128, 512) (height x width)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise CvglError(f"{option} expects HEIGHTxWIDTH such as 128x512, got {text!r}") from None
    if height <= 0 or width <= 0:
        raise CvglError(f"{option} must be positive, got {text!r}")
    return height, width


def parse_assignments(items: list[str], option: str) -> dict[str, Any]:
    """['depth=6', 'readout="mean"'] -> {'depth': 6, 'readout': 'mean'}; bare words stay strings."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise CvglError(f"{option} expects KEY=VALUE, got {item!r}")
        words = {"true": True, "yes": True, "false": False, "no": False}
        if raw.strip().lower() in words:
            value: Any = words[raw.strip().lower()]
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
        values[key.strip().replace("-", "_")] = value
    return values

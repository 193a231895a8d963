"""Range checks of the localisation options, one line each, shared by the CLI and the library.

Why one module: ``index build``, ``index set`` and ``localize`` take some of the same values
(the best-match floor), and the loop, the sources and the mission take numbers a typo can make
NaN, infinite or negative (NaN fails every comparison, so ``if x <= 0: refuse`` lets it
through). Each check raises :class:`~cvgl_edge.errors.CvglError` naming the option.
"""

from __future__ import annotations

import math

from cvgl_edge.errors import CvglError


def known(value: float | None) -> float | None:
    """``value`` as a float when it is a finite number, else None (telemetry: NaN or inf means unknown)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def positive(value: float, name: str, unit: str = "") -> float:
    """A finite number > 0."""
    if known(value) is None or float(value) <= 0:
        raise CvglError(f"{name} {value}: must be a finite number above 0{unit}")
    return float(value)


def between(value: float, name: str, low: float, high: float, unit: str = "") -> float:
    """A finite number strictly between ``low`` and ``high``."""
    if known(value) is None or not low < float(value) < high:
        raise CvglError(f"{name} {value}: must be between {low:g} and {high:g}{unit} (exclusive)")
    return float(value)


def min_similarity(value: float, name: str = "--min-similarity") -> float:
    """The best-match floor: a cosine, -1..1 (-1 disables it); rounded as the index stores it."""
    if known(value) is None or not -1.0 <= float(value) <= 1.0:
        raise CvglError(f"{name} {value} is not a cosine (-1..1)")
    return round(float(value), 6)


def timeout(value: float, name: str) -> float:
    """Seconds to wait, where 0 (or inf) means for ever; returned as ``math.inf`` then."""
    if value is None or math.isnan(float(value)) or float(value) < 0:
        raise CvglError(f"{name} {value}: must be seconds >= 0 (0: wait for ever)")
    return math.inf if float(value) == 0 else float(value)

"""Wall-clock timing of a callable: warm-up, repeats, and the usual summaries (ms)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def time_ms(fn: Callable[[], Any], warmup: int, repeats: int) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; durations in ms."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize_ms(times: list[float], digits: int = 2) -> dict[str, float]:
    """median / p90 / min / max of a list of durations."""
    return {
        "median_ms": round(percentile(times, 50), digits),
        "p90_ms": round(percentile(times, 90), digits),
        "min_ms": round(min(times), digits),
        "max_ms": round(max(times), digits),
    }

"""Wall-clock timing of a callable: warm-up, repeats, and the usual summaries (ms)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


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
    """Linear-interpolated percentile, q in [0, 100] (numpy's default method)."""
    return float(np.percentile(values, q))


def summarize_ms(times: list[float], digits: int = 2) -> dict[str, float]:
    """median / p90 / min / max of a list of durations."""
    return {
        "median_ms": round(percentile(times, 50), digits),
        "p90_ms": round(percentile(times, 90), digits),
        "min_ms": round(min(times), digits),
        "max_ms": round(max(times), digits),
    }


def summarize_runs(times: list[float], digits: int = 3) -> dict[str, float | int]:
    """What a benchmark row reports about one cell's timed runs (ms): n, p50/p90/p99,
    mean, std (population) and min/max. Percentiles are linear-interpolated, so with few
    runs p99 sits close to the maximum: ``n`` is reported so a reader can judge that."""
    if not times:
        raise ValueError("no timed runs to summarise")
    mean, std = float(np.mean(times)), float(np.std(times))  # population std (ddof=0)
    return {
        "n": len(times),
        "p50_ms": round(percentile(times, 50), digits),
        "p90_ms": round(percentile(times, 90), digits),
        "p99_ms": round(percentile(times, 99), digits),
        "mean_ms": round(mean, digits),
        "std_ms": round(std, digits),
        "min_ms": round(min(times), digits),
        "max_ms": round(max(times), digits),
    }


def throughput_per_s(batch: int, p50_ms: float) -> float:
    """Items per second at the median latency of one batch (batch / p50)."""
    return batch / (p50_ms / 1e3) if p50_ms > 0 else float("inf")

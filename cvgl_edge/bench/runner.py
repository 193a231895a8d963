"""Interleaved timing of benchmark cells (variant x branch x batch size) in one process.

Why interleave: on a shared or thermally throttling machine, timing variant A for a
minute and then variant B compares two different machines. Here every round runs each
unfinished cell once, in an order rotated from round to round, so slow drifts (other
processes, clocks, caches) spread over all variants alike and ratios against the first
variant stay meaningful.

One timed run of a cell is three steps, each ended by the encoder's ``synchronize()``
and timed with the same clock: ``h2d`` (``to_device``), ``encoder`` (``forward``) and
``d2h`` (``to_host``); ``total`` is their sum. Warm-up runs (untimed) come first, also
round-robin. A cell is finished after exactly ``runs`` timed runs when ``runs`` is
given, else once it has ``min_runs`` runs and ``min_seconds`` of encoder time (capped at
``max_runs``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cvgl_edge.bench.clocks import Clock
from cvgl_edge.bench.memory import MemoryProbe, merge_peaks
from cvgl_edge.errors import CvglError
from cvgl_edge.runtime.base import Encoder
from cvgl_edge.timing import summarize_runs, throughput_per_s

STAGES = ("h2d", "encoder", "d2h", "total")


@dataclass
class Cell:
    """One (variant, branch, batch size): its encoder, its input batch and its measurements."""

    variant: str
    branch: str
    batch: int
    encoder: Encoder
    images: np.ndarray
    times: dict[str, list[float]] = field(default_factory=lambda: {stage: [] for stage in STAGES})
    memory: dict[str, float] = field(default_factory=dict)
    nonfinite_runs: int = 0

    @property
    def runs(self) -> int:
        return len(self.times["encoder"])

    @property
    def encoder_seconds(self) -> float:
        return sum(self.times["encoder"]) / 1e3

    def summary(self) -> dict[str, Any]:
        """The cell's JSON row: stage summaries, per-item latency, throughput, memory."""
        stages = {stage: summarize_runs(values) for stage, values in self.times.items()}
        p50 = stages["encoder"]["p50_ms"]
        return {
            "variant": self.variant, "branch": self.branch, "batch": self.batch, "runs": self.runs,
            **{f"{stage}_ms": stages[stage] for stage in STAGES},
            "per_item_p50_ms": round(p50 / self.batch, 3),
            "throughput_per_s": round(throughput_per_s(self.batch, p50), 2),
            "memory": dict(self.memory), "nonfinite_runs": self.nonfinite_runs,
        }


@dataclass
class RunPolicy:
    """How many runs each cell gets (see the module docstring)."""

    warmup: int = 2
    runs: int | None = None
    min_seconds: float = 2.0
    min_runs: int = 5
    max_runs: int = 200

    def check(self) -> None:
        if self.warmup < 0:
            raise CvglError("--warmup must be >= 0")
        if self.runs is not None and self.runs < 1:
            raise CvglError("--runs must be >= 1")
        if self.min_seconds < 0:
            raise CvglError("--min-seconds must be >= 0")
        if self.min_runs < 1 or self.max_runs < self.min_runs:
            raise CvglError("need 1 <= --min-runs <= --max-runs")

    def finished(self, cell: Cell) -> bool:
        if self.runs is not None:
            return cell.runs >= self.runs
        if cell.runs >= self.max_runs:
            return True
        return cell.runs >= self.min_runs and cell.encoder_seconds >= self.min_seconds

    def expected_runs(self, cell: Cell) -> int:
        """Runs this cell will probably take (for the progress bar), from its timings so far."""
        if self.runs is not None:
            return self.runs
        if not cell.runs or cell.encoder_seconds <= 0:
            return self.min_runs
        per_run = cell.encoder_seconds / cell.runs
        return min(self.max_runs, max(self.min_runs, cell.runs, math.ceil(self.min_seconds / per_run)))


def _staged(encoder: Encoder, images: np.ndarray) -> Any:
    staged = encoder.to_device(images)
    encoder.synchronize()
    return staged


def _forward(encoder: Encoder, staged: Any) -> Any:
    result = encoder.forward(staged)
    encoder.synchronize()
    return result


def run_once(cell: Cell, clock: Clock, probe: MemoryProbe | None = None, timed: bool = True) -> None:
    """One run of a cell: h2d, encoder and d2h, each synchronised and timed."""
    encoder = cell.encoder
    encoder.synchronize()
    if probe is not None and timed:
        probe.begin()
    staged, h2d = clock.measure(lambda: _staged(encoder, cell.images))
    result, forward = clock.measure(lambda: _forward(encoder, staged))
    host, d2h = clock.measure(lambda: encoder.to_host(result))
    if not timed:
        return
    if probe is not None:
        merge_peaks(cell.memory, probe.end())
    host = np.asarray(host)
    if host.shape[0] != cell.batch or not np.isfinite(host).all():
        cell.nonfinite_runs += 1
    for stage, ms in zip(STAGES, (h2d, forward, d2h, h2d + forward + d2h)):
        cell.times[stage].append(ms)


def rotated(items: list[Cell], offset: int) -> list[Cell]:
    """``items`` starting at ``offset`` (mod len), so no cell always runs first."""
    if not items:
        return items
    k = offset % len(items)
    return items[k:] + items[:k]


def run_interleaved(cells: list[Cell], policy: RunPolicy, clock: Clock, probe: MemoryProbe | None = None,
                    on_run: Callable[[Cell, bool], None] | None = None) -> int:
    """Warm up, then time all cells round-robin until each is finished; returns the round count.
    ``on_run(cell, timed)`` is called after every run (progress display)."""
    for _ in range(policy.warmup):
        for cell in cells:
            run_once(cell, clock, timed=False)
            if on_run is not None:
                on_run(cell, False)
    rounds = 0
    while True:
        pending = [cell for cell in cells if not policy.finished(cell)]
        if not pending:
            return rounds
        for cell in rotated(pending, rounds):
            run_once(cell, clock, probe)
            if on_run is not None:
                on_run(cell, True)
        rounds += 1

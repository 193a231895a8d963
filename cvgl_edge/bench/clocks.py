"""Stopwatches for one benchmark step: host ``perf_counter_ns`` on the CPU, CUDA events on a GPU.

Why two: on the CPU a call returns when its work is done, so a host clock is exact. On a
GPU a call only queues work; the step being timed ends with the encoder's
``synchronize()``, and the CUDA clock records its end event *after* that
synchronisation, then reads the elapsed time between the two events on the device
timeline. (Nothing in this module was run on a GPU here; the CUDA clock is tested with
fake event objects.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol


class Clock(Protocol):
    """Times one call: ``measure(fn) -> (fn's result, milliseconds)``."""

    name: str

    def measure(self, fn: Callable[[], Any]) -> tuple[Any, float]: ...


class HostClock:
    """Wall time with ``time.perf_counter_ns`` (monotonic, ns resolution)."""

    name = "time.perf_counter_ns"

    def measure(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        start = time.perf_counter_ns()
        result = fn()
        return result, (time.perf_counter_ns() - start) / 1e6


class CudaEventClock:
    """Elapsed time between two CUDA events around ``fn`` (which must end synchronised).

    ``event_factory`` makes an object with ``record()``, ``synchronize()`` and
    ``elapsed_time(other) -> ms`` (``torch.cuda.Event(enable_timing=True)`` by default).
    """

    name = "torch.cuda.Event(enable_timing=True)"

    def __init__(self, event_factory: Callable[[], Any] | None = None) -> None:
        if event_factory is None:
            import torch

            def event_factory() -> Any:
                return torch.cuda.Event(enable_timing=True)

        self._event = event_factory

    def measure(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        start, end = self._event(), self._event()
        start.record()
        result = fn()
        end.record()
        end.synchronize()
        return result, float(start.elapsed_time(end))


def clock_for(device: str) -> Clock:
    """CUDA events for ``cuda``/``jetson`` runs, the host clock otherwise."""
    return CudaEventClock() if device in ("cuda", "jetson") else HostClock()

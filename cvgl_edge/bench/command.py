"""``cvgl-edge bench``: placeholder until the benchmark command lands."""

from __future__ import annotations

from cvgl_edge.errors import CvglError


def bench_command() -> None:
    """Benchmark a model: Params, FLOPs, latency, throughput, memory and R@1."""
    raise CvglError("bench is not implemented yet")

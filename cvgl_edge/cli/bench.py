"""``cvgl-edge bench``: Params, FLOPs, latency, throughput, memory and R@1 of a model's
backends and precisions, measured interleaved in one process (see benchmarks/README.md).

The measuring is cvgl_edge.bench's (:func:`cvgl_edge.bench.session.run_bench`), which imports no
PyTorch until a checkpoint or a preset needs it: an export folder (or one of its .onnx / .engine
files) is benchmarked on the deployment install, without PyTorch."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from cvgl_edge.bench.plot import plot_record
from cvgl_edge.bench.report import markdown, rich_tables
from cvgl_edge.bench.runner import RunPolicy
from cvgl_edge.bench.session import BenchRequest, run_bench
from cvgl_edge.cli_options import parse_assignments
from cvgl_edge.io import atomic_write, atomic_write_json, check_outputs
from cvgl_edge.precisions import ARTIFACT_PRECISIONS
from cvgl_edge.progress import console
from cvgl_edge.runtime.backends import BACKENDS

BACKEND_HELP = f"Backends, comma-separated: {', '.join(BACKENDS)}. Each backend x precision is a variant."
PRECISION_HELP = (f"Precisions, comma-separated: {', '.join(ARTIFACT_PRECISIONS)}. Missing ONNX/INT8/engine files are "
                  "exported first.")


def bench_command(
    checkpoint: Optional[Path] = typer.Argument(None, help="Checkpoint to benchmark (or use --model PRESET), or an export folder / one of its .onnx or .engine files: its files as they are (nothing exported, no PyTorch needed)."),
    model: Optional[str] = typer.Option(None, "--model",
                                        help="Model preset with seeded random weights (no checkpoint)."),
    set_: list[str] = typer.Option([], "--set", help="Preset override KEY=VALUE, e.g. depth=6 (repeatable)."),
    backend: Optional[str] = typer.Option(None, help=BACKEND_HELP + " Default: torch; for an export, its files' backend (a folder: onnxruntime)."),
    device: str = typer.Option("cpu", help="cpu, cuda or jetson (CUDA on a Jetson, plus tegrastats power)."),
    precision: str = typer.Option("fp32", help=PRECISION_HELP),
    branch: str = typer.Option("both", help="Branches to time: ground (per query), satellite (per tile) or both."),
    batch_sizes: Optional[str] = typer.Option(None, help="Batch sweep, e.g. 1,8,32 (default 1,4 on cpu, 1,8,32 on GPUs)."),
    warmup: int = typer.Option(2, help="Untimed warm-up runs per cell (variant x branch x batch)."),
    runs: Optional[int] = typer.Option(None, help="Exactly this many timed runs per cell (overrides --min-seconds)."),
    min_seconds: float = typer.Option(2.0, help="Time budget: run each cell until it has this much encoder time..."),
    min_runs: int = typer.Option(5, help="...and at least this many timed runs..."),
    max_runs: int = typer.Option(200, help="...but never more than this many."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch and onnxruntime (default: their own)."),
    torch_mode: str = typer.Option("eager", help="torch backend: eager, compile or cudagraph (CUDA)."),
    eval_data: Optional[str] = typer.Option(
        None, help="Data for R@1 (default: the checkpoint's training data, else synthetic)."),
    eval_pairs: int = typer.Option(100, help="Val pairs for R@1 of every variant (0 skips the accuracy check)."),
    artifacts: Optional[Path] = typer.Option(
        None, help="Folder for exported files (default ~/.cache/cvgl-edge/bench/<weights sha>)."),
    estimate: Optional[str] = typer.Option(
        None, help="Also print roofline ESTIMATES for devices, e.g. orin-nano,agx-orin."),
    power_seconds: float = typer.Option(5.0, help="Jetson: seconds of sustained runs per variant and branch."),
    seed: int = typer.Option(0, help="Seed of a preset's random weights."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the full record as JSON ('-' for stdout)."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Write a markdown report (plot beside it)."),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="Write the latency/throughput PNG here."),
    wide: bool = typer.Option(False, "--wide", help="Print every column (p99, mean±std, copies, memory, ...), "
                              "as the markdown report has them; needs about 150 columns. Default: tables that "
                              "fit 80 columns."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Benchmark latency, throughput, memory and R@1.

    Params, FLOPs, latency percentiles, throughput, memory and R@1 of every backend x precision
    (a variant), measured interleaved in one process. The screen tables fit 80 columns; --wide,
    --markdown and --json have every figure.
    """
    check_outputs({"--json": json_out, "--markdown": markdown_out, "--plot": plot_out}, {"CHECKPOINT": checkpoint})
    request = BenchRequest(
        checkpoint=checkpoint, model=model, overrides=parse_assignments(set_, "--set"), backend=backend,
        device=device, precision=precision, branch=branch, batch_sizes=batch_sizes,
        policy=RunPolicy(warmup=warmup, runs=runs, min_seconds=min_seconds, min_runs=min_runs, max_runs=max_runs),
        threads=threads, torch_mode=torch_mode, eval_data=eval_data, eval_pairs=eval_pairs, artifacts=artifacts,
        estimate=estimate, power_seconds=power_seconds, seed=seed, show_progress=progress,
        command="cvgl-edge " + shlex.join(sys.argv[1:]),
    )
    record = run_bench(request)
    write_outputs(record, json_out, markdown_out, plot_out)
    if json_out is not None and str(json_out) == "-":
        typer.echo(json.dumps(record, indent=2))
    else:
        for table in rich_tables(record, wide=wide):
            console.print(table)


def write_outputs(record: dict, json_out: Optional[Path], markdown_out: Optional[Path],
                  plot_out: Optional[Path]) -> None:
    """JSON, markdown and PNG, each written atomically; the plot goes beside the markdown by default."""
    if plot_out is None and markdown_out is not None:
        plot_out = markdown_out.with_suffix(".png")
    if plot_out is not None:
        plot_record(record, plot_out)
        console.print(f"plot written to {plot_out}")
    if markdown_out is not None:
        link = os.path.relpath(plot_out, markdown_out.parent) if plot_out is not None else None
        text = markdown(record, link)
        atomic_write(markdown_out, lambda tmp: tmp.write_text(text))
        console.print(f"markdown written to {markdown_out}")
    if json_out is not None and str(json_out) != "-":
        atomic_write_json(record, json_out)
        console.print(f"JSON written to {json_out}")

"""``cvgl-edge eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cvgl_edge.cli.common import BACKENDS_HELP, DATA_HELP, SUFFIXES_HELP, write_json
from cvgl_edge.eval.evaluate import evaluate_source
from cvgl_edge.eval.report import metrics_table
from cvgl_edge.io import check_outputs
from cvgl_edge.progress import console

# no PyTorch here: exported files are evaluated without it, a checkpoint imports it when read
# (the optional `train` extra)


def eval_command(
    source: Path = typer.Argument(..., help="Checkpoint written by `cvgl-edge train` (torch), or an export folder / one of its .onnx or .engine files."),
    backend: Optional[str] = typer.Option(None, help=f"{BACKENDS_HELP}. Default: from SOURCE's suffix ({SUFFIXES_HELP}; a folder: onnxruntime)."),
    precision: Optional[str] = typer.Option(None, help="Exported files to pick: fp32 (default), fp16 or int8. torch: fp16/bf16 autocast on CUDA."),
    data: Optional[str] = typer.Option(None, help=DATA_HELP + " Default: the data a checkpoint was trained on; synthetic for exported files."),
    split: str = typer.Option("val", help="Split to evaluate: val, or test where the dataset has one."),
    batch_size: int = typer.Option(64, min=1, help="Images per forward pass (engines: at most their maximum batch)."),
    polar: Optional[bool] = typer.Option(None, "--polar/--no-polar", help="Polar-transform satellite images. Default: as in training (exported files: no)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N (tensorrt: a CUDA GPU)."),
    workers: int = typer.Option(0, min=0, help="Data-loading workers: DataLoader processes where PyTorch is installed, else threads."),
    protocol: str = typer.Option("official", help="Whose evaluation code the numbers follow: official (the dataset authors': University1652-Baseline, VIGOR, CVACT/SAFA) or sample4geo (Sample4Geo's: R@1% K = G//100; University-1652 distractors removed as junk). Formulas: docs/metrics.md. VIGOR's area comes from --data (vigor: same-area, vigor-cross: cross-area)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the metrics to this JSON file."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Retrieval metrics of a checkpoint or exported files.

    R@1, R@5, R@10, R@1% and mAP in both directions (paired data), or with the dataset's official
    protocol (University-1652: AP; VIGOR: hit rate)."""
    check_outputs({"--json": json_out}, {"SOURCE": source})
    record = evaluate_source(
        source, backend, data, split=split, batch_size=batch_size, device=device,
        polar=polar, workers=workers, show_progress=progress, precision=precision, variant=protocol,
    )
    ran = record.get("runtime") or record["backend"]
    if "protocol" in record:
        label, size = record["protocol"]["label"], f"{sum(record['queries'].values())} queries"
    else:
        label, size = "paired (query i matches reference i), both directions", f"{record['pairs']} pairs"
    typer.echo(f"protocol: {label}")  # plain echo: one unwrapped line
    console.print(metrics_table(record["directions"], f"{source} on {record['data']} ({split}, {size}) with {ran}"))
    write_json(record, json_out)


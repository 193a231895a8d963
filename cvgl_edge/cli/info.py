"""``cvgl-edge models`` and ``cvgl-edge doctor``: deployment commands, no PyTorch needed."""

from __future__ import annotations

import json

import typer

from cvgl_edge.doctor import environment_report, environment_table
from cvgl_edge.model_catalog import preset_rows
from cvgl_edge.progress import console


def models(
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the model presets: input sizes, descriptor, params."""

    rows = preset_rows()  # the torch-free catalogue: nothing is built, no PyTorch needed
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    console.print(models_table(rows))


def models_table(rows: list[dict]):
    """The `models` table (fits 80 columns): one row per preset, sizes as HxW."""
    from rich.table import Table

    table = Table(title="model presets (input sizes HxW; descriptor dimensions; parameters in millions)")
    table.add_column("name", no_wrap=True)
    for column in ("ground", "satellite", "descriptor", "params M"):
        table.add_column(column, justify="right", overflow="fold")
    for row in rows:
        table.add_row(row["name"], "x".join(map(str, row["ground_size"])), "x".join(map(str, row["satellite_size"])),
                      str(row["descriptor_dim"]), f"{row['params_m']:.2f}")
    return table


def doctor(
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Check the environment: versions, GPU, scan backends.

    Which selective-scan backend runs where, and the TensorRT plugins built."""

    report = environment_report()
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(environment_table(report))


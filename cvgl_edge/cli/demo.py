"""``cvgl-edge demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cvgl_edge.cli.common import write_json
from cvgl_edge.demo import DemoSettings, run_demo
from cvgl_edge.eval.report import metrics_table
from cvgl_edge.progress import console

# torch-side modules (the optional `train` extra) are imported inside the commands: the
# deployment install has no PyTorch, and `cvgl-edge --help` stays fast


def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Folder for checkpoints, exports, the mission, fixes and metrics.json."),
    steps: int = typer.Option(300, min=1, help="Training steps of the ground->satellite model."),
    train_pairs: int = typer.Option(2000, min=64, help="Synthetic training pairs (200 held-out pairs are evaluated)."),
    drone_steps: int = typer.Option(600, min=1, help="Training steps of the drone-view model the localisation loop uses (600 localise the default flight to tens of metres; 300 do not)."),
    drone_pairs: int = typer.Option(2000, min=64, help="Mission-like drone frame/tile training pairs."),
    seed: int = typer.Option(0, help="Seed for data and initialisation."),
    polar: bool = typer.Option(True, help="Polar-transform the satellite tiles (SAFA). --no-polar is the harder raw-tile setting, which needs far more steps."),
    export: bool = typer.Option(True, "--export/--no-export", help="Export to ONNX and verify (without it the loop runs the PyTorch checkpoint)."),
    localize: bool = typer.Option(True, "--localize/--no-localize", help="Train the drone-view model and run the localisation loop over a synthetic flight (--no-localize: the ground model only)."),
    frames: int = typer.Option(150, min=1, help="Frames of the synthetic flight (5 per second)."),
    verify_pairs: int = typer.Option(200, min=1, help="Held-out pairs each exported file is verified on."),
    threads: Optional[int] = typer.Option(None, min=1, help="CPU threads of the ONNX Runtime encoder (index and loop)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted demo: finished stages are skipped, training resumes from its last.pt."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full record (as OUT/metrics.json) to this file."),
) -> None:
    """The whole toolkit in about 10 minutes on a CPU.

    Train, export + verify, localise a synthetic drone flight."""
    import torch  # noqa: F401 - the demo trains first: without PyTorch, one line says so before any work


    settings = DemoSettings(out=str(out), steps=steps, train_pairs=train_pairs, seed=seed, polar=polar,
                            drone_steps=drone_steps, drone_pairs=drone_pairs, export=export, localize=localize,
                            mission_frames=frames, verify_pairs=verify_pairs, threads=threads,
                            show_progress=progress)
    record = run_demo(settings, resume=resume)
    if record.get("interrupted"):
        console.print(f"{record.get('interrupted_stage', 'training')} training stopped at step {record['steps']}; "
                      "continue with `cvgl-edge demo --resume`")
        raise typer.Exit(130)
    if record.get("untrained"):
        console.print(metrics_table(record["untrained"], "ground->satellite model, untrained (held-out pairs)"))
    console.print(metrics_table(record["directions"], f"ground->satellite model after {record['steps']} steps"))
    if "drone" in record:
        console.print(metrics_table(record["drone"]["directions"],
                                    f"drone-view model after {record['drone']['steps']} steps (drone frame -> tile)"))
    console.rule("summary")
    for line in record["summary"]:
        console.print(line, highlight=False, markup=False)
    write_json(record, json_out)


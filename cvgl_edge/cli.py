"""The `cvgl-edge` command line (typer). User errors end as one line and exit code 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from cvgl_edge.errors import CvglError
from cvgl_edge.extras import missing_train_package, needs
from cvgl_edge.io import check_output_folder, check_outputs
from cvgl_edge.progress import console

app = typer.Typer(
    name="cvgl-edge",
    help=(
        "Cross-view geo-localisation on the edge: match drone or street images to satellite tiles.\n\n"
        "Train or distil a dual encoder (GeoSSM, VimGeo, LRFR), evaluate retrieval, export to ONNX "
        "or TensorRT and verify the files, benchmark backends, index a map and localise frames "
        "against it (MAVLink output), and build the TensorRT scan plugin.\n\n"
        "Start with `cvgl-edge demo`; `cvgl-edge doctor` checks the environment."
    ),
    # plain click layout: typer's rich panels leave options ~20 columns of help at 80 columns and
    # cut long words with '…'; click's wraps the help in 46 columns and never truncates
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DATA_HELP = ("Dataset: 'synthetic' (built in), 'synthetic:N' (N training pairs), 'synthetic-drone[:N]' "
             "(north-up nadir drone frames vs tiles, both through the aerial branch, as `localize` uses "
             "them), 'cvusa:PATH', 'cvact:PATH', 'university1652:PATH' (drone <-> satellite), "
             "'vigor:PATH' (same-area) or 'vigor-cross:PATH' (cross-area); a bare PATH is recognised "
             "by its layout. University-1652 and VIGOR have train and test splits (val = test).")

HARD_NEGATIVES_HELP = ("Hard-negative batches (Sample4Geo): off, gps (geographic neighbours), similarity (descriptor "
                       "neighbours after each evaluation; set --eval-every) or gps+similarity (gps until the first "
                       "evaluation).")


def check_run_outputs(out: Path, json_out: Optional[Path], inputs: dict[str, Optional[Path]]) -> None:
    """Before any work: ``--out`` is a folder (or new), and neither the files a training run
    writes there nor ``--json`` is one of its inputs (a teacher at OUT/last.pt would be overwritten)."""
    from cvgl_edge.train.loop import BEST_CHECKPOINT, LAST_CHECKPOINT, METRICS_LOG

    check_output_folder(out, "--out")
    files = {f"--out's {name}": Path(out) / name for name in (LAST_CHECKPOINT, BEST_CHECKPOINT, METRICS_LOG)}
    check_outputs({**files, "--json": json_out}, inputs)


def _write_json(record: dict, path: Optional[Path]) -> None:
    if path is None:
        return
    from cvgl_edge.io import atomic_write_json

    atomic_write_json(record, path)
    console.print(f"metrics written to {path}")


@app.command()
def train(
    model: str = typer.Option("geossm-nano", help="Model preset; see `cvgl-edge models`."),
    data: str = typer.Option("synthetic", help=DATA_HELP),
    out: Path = typer.Option(Path("runs/train"), help="Run folder: checkpoints (last.pt, best.pt) and metrics.jsonl."),
    epochs: int = typer.Option(10, min=1, help="Passes over the training split."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Stop after this many optimiser steps (overrides --epochs)."),
    batch_size: int = typer.Option(32, min=2, help="Pairs per step per process (in-batch negatives = batch-1)."),
    lr: float = typer.Option(1e-4, help="Peak learning rate (paper: 1e-4)."),
    weight_decay: float = typer.Option(0.03, help="AdamW weight decay (paper: 0.03)."),
    optimizer: str = typer.Option("adamw", help="adamw, asam (the paper's) or sam. ASAM/SAM cost two passes per step."),
    rho: float = typer.Option(0.5, help="Neighbourhood size for asam (0.5) / sam (use ~0.05)."),
    warmup_steps: int = typer.Option(100, min=0, help="Linear warm-up steps before the cosine decay."),
    loss: str = typer.Option("ddal", help="ddal (GeoSSM), infonce, triplet, triplet-semihard (LRFR), dice, kl, or a weighted sum joined by + (VimGeo: infonce+dice+kl; weights and parameters per part via --loss-param dice.weight=0.5)."),
    loss_param: list[str] = typer.Option([], "--loss-param", help="Loss hyper-parameter KEY=VALUE, e.g. gamma=10 (repeatable)."),
    clip_norm: float = typer.Option(1.0, help="Gradient clipping max norm (0 disables)."),
    amp: bool = typer.Option(True, help="Mixed precision on CUDA (bf16 where supported). Ignored on CPU."),
    augment: bool = typer.Option(True, help="Pair-consistent flips, 90-degree rotations and colour jitter."),
    polar: bool = typer.Option(False, help="Polar-transform satellite images to panorama shape (SAFA)."),
    ground_size: Optional[str] = typer.Option(None, help="Ground input HxW, e.g. 128x512 (preset default otherwise)."),
    satellite_size: Optional[str] = typer.Option(None, help="Satellite input HxW, e.g. 256x256."),
    share_weights: Optional[bool] = typer.Option(None, "--share-weights/--separate-weights", help="Share one backbone between views."),
    readout: Optional[str] = typer.Option(None, help="Descriptor readout: cga (GeoSSM), cls or mean (ablations)."),
    set_: list[str] = typer.Option([], "--set", help="Any other model override KEY=VALUE, e.g. depth=6 (repeatable)."),
    pretrained: Optional[Path] = typer.Option(None, help="Local ImageNet weights for the backbone: an official Vim checkpoint (geossm-*, vimgeo-*) or a torchvision ConvNeXt-Tiny .pth (lrfr)."),
    eval_every: int = typer.Option(0, min=0, help="Evaluate on the val split every N steps (0: only at the end)."),
    save_every: int = typer.Option(200, min=0, help="Write last.pt every N steps (also at eval and at the end)."),
    log_every: int = typer.Option(10, min=1, help="Append a line to metrics.jsonl every N steps."),
    workers: int = typer.Option(0, min=0, help="DataLoader worker processes."),
    seed: int = typer.Option(0, help="Seed for data order, augmentation and initialisation."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT/last.pt exactly (optimizer, schedule, RNG, step)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the final val metrics to this JSON file."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    hard_negatives: str = typer.Option("off", help=HARD_NEGATIVES_HELP),
    neighbours: int = typer.Option(16, min=1, help="Hard negatives: neighbours listed per sample (batch fill after its seed)."),
) -> None:
    """Train a dual encoder. Multi-GPU: `torchrun --nproc-per-node N -m cvgl_edge.cli train ...`."""
    from cvgl_edge.cli_options import parse_assignments, parse_size
    from cvgl_edge.eval.evaluate import metrics_record
    from cvgl_edge.eval.report import metrics_table
    from cvgl_edge.train.config import TrainConfig
    from cvgl_edge.train.hard_negatives import check_mode
    from cvgl_edge.train.loop import train as run_training
    from cvgl_edge.train.optim import OPTIMIZERS

    check_run_outputs(out, json_out, {"--pretrained": pretrained})

    if optimizer not in OPTIMIZERS:
        raise CvglError(f"unknown --optimizer {optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    overrides = parse_assignments(set_, "--set")
    if ground_size:
        overrides["ground_size"] = parse_size(ground_size, "--ground-size")
    if satellite_size:
        overrides["satellite_size"] = parse_size(satellite_size, "--satellite-size")
    if share_weights is not None:
        overrides["share_weights"] = share_weights
    if readout:
        overrides["readout"] = readout
    cfg = TrainConfig(
        model=model, model_overrides=overrides, pretrained=str(pretrained) if pretrained else None,
        data=data, polar=polar, out=str(out), epochs=epochs, max_steps=max_steps,
        batch_size=batch_size, lr=lr, weight_decay=weight_decay, optimizer=optimizer, rho=rho,
        warmup_steps=warmup_steps, loss=loss, loss_params=parse_assignments(loss_param, "--loss-param"),
        clip_norm=clip_norm, amp=amp, augment=augment, eval_every=eval_every, save_every=save_every,
        log_every=log_every, workers=workers, seed=seed, device=device, show_progress=progress,
        hard_negatives=check_mode(hard_negatives), neighbours=neighbours,
    )
    result = run_training(cfg, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 reports
        return
    if result.interrupted:
        console.print(f"stopped at step {result.steps}; continue with the same command plus --resume")
        raise typer.Exit(130)
    if result.final_metrics:
        queries = "" if result.query_view == "ground" else f", {result.query_view} queries"
        console.print(metrics_table(result.final_metrics, f"{model} after {result.steps} steps (val{queries})"))
        _write_json(
            metrics_record(result.final_metrics, model=model, data=data, steps=result.steps,
                           **({"query_view": result.query_view} if queries else {}),
                           train_seconds=round(result.seconds, 1), checkpoint=str(result.last_checkpoint)),
            json_out,
        )
    console.print(f"{result.steps} steps in {result.seconds:.0f} s; checkpoint: {result.last_checkpoint}")


@app.command("distil")
def distil_command(
    teacher: Path = typer.Option(..., help="Trained teacher checkpoint (from `cvgl-edge train`); frozen during distillation."),
    student: str = typer.Option("geossm-nano", help="Student model preset; see `cvgl-edge models`. Shape it with --set."),
    set_: list[str] = typer.Option([], "--set", help="Student model override KEY=VALUE, e.g. depth=2 (repeatable)."),
    data: Optional[str] = typer.Option(None, help=DATA_HELP + " Default: the teacher's training data."),
    polar: Optional[bool] = typer.Option(None, "--polar/--no-polar", help="Polar-transform satellite images. Default: as the teacher was trained."),
    out: Path = typer.Option(Path("runs/distil"), help="Run folder: the student's checkpoints (last.pt, best.pt) and metrics.jsonl."),
    epochs: int = typer.Option(10, min=1, help="Passes over the training split."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Stop after this many optimiser steps (overrides --epochs)."),
    batch_size: int = typer.Option(32, min=2, help="Pairs per step per process (the relational term compares them all)."),
    lr: float = typer.Option(1e-4, help="Peak learning rate of the student."),
    warmup_steps: int = typer.Option(100, min=0, help="Linear warm-up steps before the cosine decay."),
    loss: str = typer.Option("ddal", help="The student's task loss: any `train --loss` value (ddal, infonce, triplet, triplet-semihard, dice, kl, or a sum joined by +)."),
    loss_param: list[str] = typer.Option([], "--loss-param", help="Task-loss hyper-parameter KEY=VALUE (repeatable)."),
    temperature: float = typer.Option(0.1, help="Softmax temperature of the relational term (cosine similarities / T)."),
    relational_weight: float = typer.Option(1.0, help="Weight of the relational term (KL of in-batch similarity distributions)."),
    align_weight: float = typer.Option(1.0, help="Weight of descriptor alignment (1 - cosine, through a learned projection when dims differ)."),
    hard_negatives: str = typer.Option("off", help=HARD_NEGATIVES_HELP),
    neighbours: int = typer.Option(16, min=1, help="Hard negatives: neighbours listed per sample."),
    eval_every: int = typer.Option(0, min=0, help="Evaluate the student on the val split every N steps (0: only at the end)."),
    save_every: int = typer.Option(200, min=0, help="Write last.pt every N steps (also at the end)."),
    workers: int = typer.Option(0, min=0, help="DataLoader worker processes."),
    seed: int = typer.Option(0, help="Seed for data order, augmentation and initialisation."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT/last.pt exactly (same teacher and settings)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the teacher-vs-student report to this JSON file."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Distil a trained teacher into a smaller student.

    Reports teacher vs student accuracy, size, FLOPs and CPU latency."""
    from cvgl_edge.cli_options import parse_assignments
    from cvgl_edge.eval.evaluate import metrics_record
    from cvgl_edge.models import list_models
    from cvgl_edge.models.checkpoint import read_checkpoint
    from cvgl_edge.train.config import TrainConfig
    from cvgl_edge.train.distil import distil, distil_settings
    from cvgl_edge.train.distil_report import comparison_table, distil_report
    from cvgl_edge.train.hard_negatives import check_mode

    check_run_outputs(out, json_out, {"--teacher": teacher})
    if student not in list_models():
        raise CvglError(f"unknown student preset {student!r}; available: {', '.join(list_models())}")
    try:
        trained = read_checkpoint(teacher).get("train_config") or {}
    except CvglError as error:
        raise CvglError(f"teacher: {error}") from None
    cfg = TrainConfig(
        model=student, model_overrides=parse_assignments(set_, "--set"),
        data=data or trained.get("data") or "synthetic",
        polar=bool(trained.get("polar", False)) if polar is None else polar,
        out=str(out), epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr,
        warmup_steps=warmup_steps, loss=loss, loss_params=parse_assignments(loss_param, "--loss-param"),
        eval_every=eval_every, save_every=save_every, workers=workers, seed=seed, device=device,
        show_progress=progress, hard_negatives=check_mode(hard_negatives), neighbours=neighbours,
        distil=distil_settings(teacher, temperature=temperature, relational_weight=relational_weight,
                               align_weight=align_weight),
    )
    trainer, result = distil(cfg, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 reports
        return
    if result.interrupted:
        console.print(f"stopped at step {result.steps}; continue with the same command plus --resume")
        raise typer.Exit(130)
    if result.final_metrics:
        report = distil_report(trainer, result.final_metrics)
        console.print(comparison_table(report["rows"], f"teacher vs distilled student after {result.steps} steps "
                                                       f"(val, {report['val_pairs']} pairs)"))
        console.print(f"latency: {report['latency']}")
        _write_json(
            metrics_record(result.final_metrics, model=student, model_config=trainer.model.config.to_dict(),
                           data=cfg.data, polar=cfg.polar, steps=result.steps, distil=cfg.distil, report=report,
                           train_seconds=round(result.seconds, 1), checkpoint=str(result.last_checkpoint)),
            json_out,
        )
    console.print(f"{result.steps} steps in {result.seconds:.0f} s; student checkpoint: {result.last_checkpoint}")


@app.command("eval")
def eval_command(
    source: Path = typer.Argument(..., help="Checkpoint written by `cvgl-edge train` (torch), or an export folder / one of its .onnx or .engine files."),
    backend: Optional[str] = typer.Option(None, help="torch, onnxruntime or tensorrt. Default: from SOURCE's suffix (.pt torch, .onnx or a folder onnxruntime, .engine tensorrt)."),
    precision: Optional[str] = typer.Option(None, help="Exported files to pick: fp32 (default), fp16 or int8. torch: fp16/bf16 autocast on CUDA."),
    data: Optional[str] = typer.Option(None, help=DATA_HELP + " Default: the data a checkpoint was trained on; synthetic for exported files."),
    split: str = typer.Option("val", help="Split to evaluate: val, or test where the dataset has one."),
    batch_size: int = typer.Option(64, min=1, help="Images per forward pass (engines: at most their maximum batch)."),
    polar: Optional[bool] = typer.Option(None, "--polar/--no-polar", help="Polar-transform satellite images. Default: as in training (exported files: no)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N (tensorrt: a CUDA GPU)."),
    workers: int = typer.Option(0, min=0, help="DataLoader worker processes."),
    protocol: str = typer.Option("official", help="Whose evaluation code the numbers follow: official (the dataset authors': University1652-Baseline, VIGOR, CVACT/SAFA) or sample4geo (Sample4Geo's: R@1% K = G//100; University-1652 distractors removed as junk). Formulas: docs/metrics.md. VIGOR's area comes from --data (vigor: same-area, vigor-cross: cross-area)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the metrics to this JSON file."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Retrieval metrics of a checkpoint or exported files.

    R@1, R@5, R@10, R@1% and mAP in both directions (paired data), or with the dataset's official
    protocol (University-1652: AP; VIGOR: hit rate)."""
    from cvgl_edge.eval.evaluate import evaluate_source
    from cvgl_edge.eval.report import metrics_table

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
    _write_json(record, json_out)


@app.command()
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
    from cvgl_edge.demo import DemoSettings, run_demo
    from cvgl_edge.eval.report import metrics_table

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
    _write_json(record, json_out)


@app.command("export")
def export_command(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `cvgl-edge train` (last.pt or best.pt)."),
    branch: str = typer.Option("both", help="Encoder to export: ground, satellite or both."),
    format_: str = typer.Option("onnx", "--format", help="Output format: onnx, or engine (the ONNX file, then a TensorRT engine built with tensorrt or tensorrt-rtx)."),
    precision: str = typer.Option("fp32", help="Numeric precision: fp32, fp16 (strongly typed FP16 graph, norms/scan/pooling in FP32) or int8 (QDQ, calibrated)."),
    out: Path = typer.Option(Path("exports"), help="Folder for <model>-<branch>[.fp16|.int8].onnx, its .report.json and .verify.json."),
    opset: int = typer.Option(18, help="ONNX opset of the standard-op graph (18-21)."),
    check_images: int = typer.Option(4, min=1, help="Synthetic images for the onnxruntime-vs-PyTorch check."),
    calibration: Path = typer.Option(None, help="INT8: calibration recipe JSON (default: the built-in synthetic-default, see calibration/)."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Verify every written file against the checkpoint (as `cvgl-edge verify`) and write <file>.verify.json; a file that fails is removed."),
    verify_pairs: int = typer.Option(200, min=1, help="Verification: val pairs embedded per file."),
    eval_data: Optional[str] = typer.Option(None, help="Verification: dataset whose val split is used (default: the data the checkpoint was trained on). " + DATA_HELP),
    max_r1_drop: Optional[float] = typer.Option(None, help="Verification: largest allowed R@1 drop in points (default per precision: fp16 0.5, int8 2.0; fp32 is held to cosine >= 0.9999)."),
    eval_pairs: Optional[int] = typer.Option(None, hidden=True, help="Old name of --verify-pairs (0: --no-verify)."),
    plugin_lib: Path = typer.Option(None, help="Engine: cvgl_trt_plugins library serving SelectiveScan (default: the one `cvgl-edge plugin build` made for this TensorRT and GPU, else the standard-op scan; not with TensorRT-RTX)."),
    use_plugin: bool = typer.Option(True, "--plugin/--no-plugin", help="Engine: --no-plugin builds the scan from standard ops (a TensorRT loop) even when a plugin was built."),
    max_batch: int = typer.Option(8, help="Engine: largest batch of the optimisation profile."),
    opt_batch: int = typer.Option(1, help="Engine: batch the profile is tuned for."),
    workspace_mb: int = typer.Option(1024, help="Engine: builder workspace memory pool limit (MiB)."),
    int8_mode: str = typer.Option("explicit", help="Engine, INT8: explicit (from the QDQ file) or implicit (TensorRT 10.x calibrates the FP32 file)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the export reports (with the verification outcome) to this JSON file."),
) -> None:
    """Export encoder branches to ONNX or TensorRT engines.

    ONNX with one SelectiveScan node per scan, checked against PyTorch, then verified."""
    from cvgl_edge.export.pipeline import ExportRequest, run_export

    check_output_folder(out, "--out")
    check_outputs({"--json": json_out}, {"CHECKPOINT": checkpoint, "--calibration": calibration,
                                         "--plugin-lib": plugin_lib})
    request = ExportRequest(checkpoint=checkpoint, out=out, branch=branch, format=format_,
                            precision=precision, opset=opset, check_images=check_images,
                            calibration=calibration, verify=verify, verify_pairs=verify_pairs,
                            eval_data=eval_data, eval_pairs=eval_pairs, max_r1_drop=max_r1_drop,
                            plugin_lib=plugin_lib, use_plugin=use_plugin, max_batch=max_batch, opt_batch=opt_batch,
                            workspace_mb=workspace_mb, int8_mode=int8_mode)
    reports = run_export(request)
    _write_json({"reports": reports}, json_out)


@app.command("verify")
def verify_command(
    artifact: Path = typer.Argument(..., help="Exported file: <model>-<branch>[.int8].onnx, or a TensorRT .engine with its .engine.json sidecar (runs on a GPU)."),
    against: Path = typer.Option(..., "--against", help="The checkpoint the artifact was exported from."),
    backend: Optional[str] = typer.Option(None, help="onnxruntime (CPU) or tensorrt (GPU). Default: from the suffix (.onnx, .engine)."),
    data: Optional[str] = typer.Option(None, help=DATA_HELP + " Default: the data the checkpoint was trained on."),
    split: str = typer.Option("val", help="Split whose pairs are embedded: val, or test where the dataset has one."),
    pairs: int = typer.Option(200, min=1, help="Pairs of the split to use (the first N)."),
    min_cosine: Optional[float] = typer.Option(None, help="Override the minimum descriptor cosine (fp32 0.9999, int8 0.98)."),
    max_r1_drop: Optional[float] = typer.Option(None, help="Override the largest allowed R@1 drop in points (int8 2.0, fp16 0.5)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the verification record to this JSON file."),
) -> None:
    """Check an exported file against its PyTorch checkpoint.

    Runs both on the same pairs; exit 1 past the thresholds."""
    from cvgl_edge.export.verify import summary_line, verify, verify_table

    check_outputs({"--json": json_out}, {"ARTIFACT": artifact, "--against": against})
    with console.status(f"verifying {artifact.name} against {against.name}"):
        record = verify(artifact, against, data=data, split=split, pairs=pairs,
                        min_cosine=min_cosine, max_r1_drop=max_r1_drop, backend=backend)
    console.print(verify_table(record))
    _write_json(record, json_out)
    print(summary_line(record))
    if not record["passed"]:
        raise typer.Exit(1)


@app.command()
def models(
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the model presets: input sizes, descriptor, params."""
    from cvgl_edge.model_catalog import preset_rows

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


@app.command()
def doctor(
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Check the environment: versions, GPU, scan backends.

    Which selective-scan backend runs where, and the TensorRT plugins built."""
    from cvgl_edge.doctor import environment_report, environment_table

    report = environment_report()
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(environment_table(report))


def _register_subsystem_commands() -> None:
    """Commands whose modules live with their subsystem (bench/, localize/, export/)."""
    from cvgl_edge.bench.command import bench_command
    from cvgl_edge.export.plugin_command import plugin_app
    from cvgl_edge.localize.command import autopilot_params_command, index_app, localize_command

    app.command("bench")(bench_command)
    app.command("localize")(localize_command)
    app.command("autopilot-params")(autopilot_params_command)
    app.add_typer(index_app, name="index")
    app.add_typer(plugin_app, name="plugin")


_register_subsystem_commands()


def one_line(error: CvglError) -> str:
    """The user-facing line of an error; DataLoader workers re-raise it wrapped in a
    traceback whose last line is ``...CvglError: <message>``."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    marker = "CvglError: "
    return last.split(marker, 1)[1] if marker in last else last


def click_error(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit code) of a command-line usage error (unknown option or command, a value out of
    range, a missing argument), whichever click typer brings (typer 0.29 vendors its own); None otherwise."""
    if callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int):
        return " ".join(str(exc.format_message()).split()), exc.exit_code
    return None


def invoked_command(argv: list[str]) -> str:
    """The command words of a command line (``["index", "build", "--map", ...]`` -> "index build")."""
    import typer.main

    command, words = typer.main.get_command(app), []
    for arg in argv:
        if arg.startswith("-"):
            continue
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            break
        command = sub
        words.append(arg)
    return " ".join(words) or "cvgl-edge"


def main() -> None:
    """Entry point: run the typer app, turning user errors into one line and exit code 2.

    Why ``standalone_mode=False``: click would print usage errors as a boxed panel of several
    lines; here they end like every other user error, as one ``error:`` line (exit 2).

    The deployment install (``pip install cvgl-edge``) has no PyTorch (nor the other packages of
    the ``train`` extra). The commands that need it (train, distil, export, verify, demo; eval
    and bench for now) import it first thing, so its absence surfaces here, before any work,
    as the one shared check: ``error: <command> needs PyTorch: pip install "cvgl-edge[train]"``.
    """
    try:
        code = app(standalone_mode=False)
    except CvglError as error:
        # plain print: rich would wrap a long message over several lines
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(2)
    except ImportError as error:
        package = missing_train_package(error)
        if package is None:
            raise
        print(f"error: {needs(invoked_command(sys.argv[1:]), package)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - only click's usage errors are handled; the rest re-raised
        usage = click_error(exc)
        if usage is None:
            raise
        message, exit_code = usage
        if message:  # a bare command group prints its help and says nothing more
            print(f"error: {message}", file=sys.stderr)
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

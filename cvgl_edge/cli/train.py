"""``cvgl-edge train`` and ``cvgl-edge distil``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from cvgl_edge.cli.common import DATA_HELP, HARD_NEGATIVES_HELP, write_json
from cvgl_edge.cli_options import parse_assignments, parse_size
from cvgl_edge.errors import CvglError
from cvgl_edge.eval.evaluate import metrics_record
from cvgl_edge.eval.report import metrics_table
from cvgl_edge.io import check_output_folder, check_outputs
from cvgl_edge.progress import console
from cvgl_edge.train.config import TrainConfig

# torch-side modules (the optional `train` extra) are imported inside the commands: the
# deployment install has no PyTorch, and `cvgl-edge --help` stays fast


def check_run_outputs(out: Path, json_out: Optional[Path], inputs: dict[str, Optional[Path]]) -> None:
    """Before any work: ``--out`` is a folder (or new), and neither the files a training run
    writes there nor ``--json`` is one of its inputs (a teacher at OUT/last.pt would be overwritten)."""
    from cvgl_edge.train.loop import BEST_CHECKPOINT, LAST_CHECKPOINT, METRICS_LOG

    check_output_folder(out, "--out")
    files = {f"--out's {name}": Path(out) / name for name in (LAST_CHECKPOINT, BEST_CHECKPOINT, METRICS_LOG)}
    check_outputs({**files, "--json": json_out}, inputs)


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
        write_json(
            metrics_record(result.final_metrics, model=model, data=data, steps=result.steps,
                           **({"query_view": result.query_view} if queries else {}),
                           train_seconds=round(result.seconds, 1), checkpoint=str(result.last_checkpoint)),
            json_out,
        )
    console.print(f"{result.steps} steps in {result.seconds:.0f} s; checkpoint: {result.last_checkpoint}")


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
    from cvgl_edge.models import list_models
    from cvgl_edge.models.checkpoint import read_checkpoint
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
        write_json(
            metrics_record(result.final_metrics, model=student, model_config=trainer.model.config.to_dict(),
                           data=cfg.data, polar=cfg.polar, steps=result.steps, distil=cfg.distil, report=report,
                           train_seconds=round(result.seconds, 1), checkpoint=str(result.last_checkpoint)),
            json_out,
        )
    console.print(f"{result.steps} steps in {result.seconds:.0f} s; student checkpoint: {result.last_checkpoint}")


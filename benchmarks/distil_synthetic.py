"""Does distillation help a small student, and do hard-negative batches help training? Synthetic data, CPU.

1. Train a teacher (the demo's geossm-nano on polar synthetic pairs).
2. For each seed, train the same small student (geossm-nano, depth 2, width 32) for the same steps
   on the same data twice: alone (its task loss, DDAL) and distilled from the teacher
   (task + relational + alignment terms). Report val R@1/R@5/R@1%, Params, GFLOPs and CPU latency.
3. Train geossm-nano with random batches vs hard-negative batches (gps, gps+similarity), same steps.

Writes benchmarks/results/distil_synthetic_<host>_<date>.{json,md}. Run it alone on the machine:

    flock /tmp/cpu_gate python benchmarks/distil_synthetic.py [--student-steps 100 --seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from cvgl_edge.bench.machine import load_average, machine_info, result_stem
from cvgl_edge.data import build_dataset
from cvgl_edge.demo import DemoSettings
from cvgl_edge.eval.embed import embed_pairs
from cvgl_edge.eval.metrics import cross_view_metrics
from cvgl_edge.models.checkpoint import model_from_payload, read_checkpoint
from cvgl_edge.train.config import TrainConfig
from cvgl_edge.train.distil import DistilTrainer, distil_settings
from cvgl_edge.train.distil_report import RECALLS, model_row
from cvgl_edge.train.loop import Trainer

RESULTS = Path(__file__).resolve().parent / "results"
STUDENT = {"depth": 2, "embed_dim": 32}


def _base(out: Path, steps: int, seed: int, pairs: int) -> TrainConfig:
    """The demo's recipe (polar synthetic pairs, lr 1e-3, batch 32) at ``steps`` steps."""
    settings = DemoSettings(out=str(out), steps=steps, train_pairs=pairs, seed=seed, show_progress=False)
    return settings.train_config()


def _run(trainer: Trainer) -> tuple[dict[str, Any], float]:
    start = time.perf_counter()
    result = trainer.run()
    return result.final_metrics or {}, round(time.perf_counter() - start, 1)


def _headline(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: round(metrics["ground->satellite"][key], 2) for key in RECALLS}


def _teacher(work: Path, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """Train the teacher, or take ``--teacher`` (a checkpoint of this recipe) and evaluate it."""
    if args.teacher:
        payload = read_checkpoint(args.teacher)
        model = model_from_payload(payload, str(args.teacher))
        cfg = TrainConfig.from_dict(payload["train_config"])
        val = build_dataset(cfg.data, "val", polar=cfg.polar, seed=cfg.seed,
                            ground_size=model.input_sizes["ground"], satellite_size=model.input_sizes["satellite"])
        metrics = cross_view_metrics(*embed_pairs(model, val, show_progress=False))
        row = model_row("teacher", model, metrics, "ground")
        return Path(args.teacher), {**row, "seed": cfg.seed, "steps": int(payload["step"]),
                                    "train_seconds": None, "checkpoint": str(args.teacher)}
    teacher = Trainer(_base(work / "teacher", args.teacher_steps, 0, args.train_pairs))
    metrics, seconds = _run(teacher)
    row = model_row("teacher", teacher.model, metrics, "ground")
    return work / "teacher" / "last.pt", {**row, "seed": 0, "steps": args.teacher_steps, "train_seconds": seconds}


def distillation(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    teacher_path, teacher_row = _teacher(work, args)
    rows = [teacher_row]
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        for kind in ("alone", "distilled"):
            cfg = _base(work / f"{kind}-{seed}", args.student_steps, seed, args.train_pairs)
            cfg = replace(cfg, model_overrides={**cfg.model_overrides, **STUDENT})
            if kind == "distilled":
                cfg = replace(cfg, distil=distil_settings(teacher_path, temperature=args.temperature,
                                                          relational_weight=args.relational_weight,
                                                          align_weight=args.align_weight))
                trainer: Trainer = DistilTrainer(cfg)
            else:
                trainer = Trainer(cfg)
            metrics, seconds = _run(trainer)
            run = {"kind": kind, "seed": seed, "steps": args.student_steps, "train_seconds": seconds,
                   **_headline(metrics), "directions": metrics}
            if seed == args.seeds[0]:
                row = model_row(f"student ({kind})", trainer.model, metrics, "ground")
                rows.append({**row, "seed": seed, "steps": args.student_steps, "train_seconds": seconds})
            runs.append(run)
            print(f"student {kind} seed {seed}: " + ", ".join(f"{k} {run[k]:.1f}" for k in RECALLS), flush=True)
    summary = {}
    for kind in ("alone", "distilled"):
        values = [r for r in runs if r["kind"] == kind]
        summary[kind] = {key: {"mean": round(statistics.mean(r[key] for r in values), 2),
                               "std": round(statistics.pstdev(r[key] for r in values), 2)} for key in RECALLS}
    return {"teacher_steps": teacher_row["steps"], "student_steps": args.student_steps,
            "student_overrides": STUDENT, "settings": {"temperature": args.temperature,
                                                       "relational_weight": args.relational_weight,
                                                       "align_weight": args.align_weight},
            "rows": rows, "runs": runs, "summary": summary}


def hard_negatives(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for mode in args.hn_modes:
        cfg = _base(work / f"hn-{mode}", args.hn_steps, 0, args.train_pairs)
        batches_per_epoch = args.train_pairs // cfg.batch_size
        cfg = replace(cfg, hard_negatives=mode, neighbours=args.neighbours,
                      eval_every=batches_per_epoch if "similarity" in mode else 0)
        metrics, seconds = _run(Trainer(cfg))
        runs.append({"mode": mode, "steps": args.hn_steps, "neighbours": args.neighbours,
                     "eval_every": cfg.eval_every, "train_seconds": seconds, **_headline(metrics),
                     "directions": metrics})
        print(f"hard negatives {mode}: " + ", ".join(f"{k} {runs[-1][k]:.1f}" for k in RECALLS), flush=True)
    return {"model": "geossm-nano (demo recipe)", "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-pairs", type=int, default=2000)
    parser.add_argument("--teacher-steps", type=int, default=300)
    parser.add_argument("--teacher", help="reuse a teacher checkpoint trained with this recipe (skips step 1)")
    parser.add_argument("--student-steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--relational-weight", type=float, default=1.0)
    parser.add_argument("--align-weight", type=float, default=1.0)
    parser.add_argument("--hn-steps", type=int, default=150)
    parser.add_argument("--hn-modes", nargs="+", default=["off", "gps", "gps+similarity"])
    parser.add_argument("--neighbours", type=int, default=16)
    parser.add_argument("--skip-hard-negatives", action="store_true")
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    load_before = load_average()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        distil = distillation(work, args)
        hard = None if args.skip_hard_negatives else hard_negatives(work, args)
    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
        "load_average_before_after": [load_before, load_average()],
        "wall_seconds": round(time.perf_counter() - start, 1),
        "note": args.note,
        "data": f"synthetic:{args.train_pairs} (polar, demo recipe: batch 32, lr 1e-3, AdamW, DDAL); "
                "val split 200 pairs; the synthetic world is generated from the run's seed",
        "distillation": distil,
        "hard_negatives": hard,
    }
    stem = result_stem(RESULTS, "distil_synthetic")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(_markdown(result))
    print(stem.with_suffix(".md").read_text())


def _markdown(result: dict[str, Any]) -> str:
    machine, distil, hard = result["machine"], result["distillation"], result["hard_negatives"]
    lines = [
        f"# Distillation and hard negatives on synthetic data ({result['date']})",
        "",
        f"- Command: `{result['command']}`",
        f"- Machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores, {machine['os']}",
        f"- Python {machine['python']}, torch {machine['torch']} ({machine['torch_threads']} threads)",
        f"- Load average before/after: {result['load_average_before_after']}; wall {result['wall_seconds']} s",
        f"- Data: {result['data']}",
        f"- Teacher: geossm-nano, {distil['teacher_steps']} steps. Student: geossm-nano with "
        f"{distil['student_overrides']}, {distil['student_steps']} steps, alone vs distilled "
        f"(temperature {distil['settings']['temperature']}, relational weight "
        f"{distil['settings']['relational_weight']}, align weight {distil['settings']['align_weight']}).",
        "",
        "## Teacher vs student (first seed); val ground->satellite",
        "",
        "| model | R@1 | R@5 | R@1% | Params (M) | GFLOPs/query | CPU ms/query | train s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in distil["rows"]:
        lines.append(f"| {row['model']} | " + " | ".join(f"{row[k]:.1f}" for k in RECALLS)
                     + f" | {row['params'] / 1e6:.3f} | {row['gflops_per_query']:.3f} | "
                       f"{row['cpu_ms_per_query']:.1f} | {row['train_seconds'] or '-'} |")
    lines += ["", "## Student alone vs distilled, every seed", "",
              "| seed | kind | R@1 | R@5 | R@1% | train s |", "|---:|---|---:|---:|---:|---:|"]
    for run in distil["runs"]:
        lines.append(f"| {run['seed']} | {run['kind']} | " + " | ".join(f"{run[k]:.1f}" for k in RECALLS)
                     + f" | {run['train_seconds']} |")
    for kind, values in distil["summary"].items():
        lines.append(f"| mean ± std | {kind} | " + " | ".join(
            f"{values[k]['mean']:.1f} ± {values[k]['std']:.1f}" for k in RECALLS) + " | |")
    if hard:
        lines += ["", f"## Hard-negative batches ({hard['model']})", "",
                  "| batches | steps | neighbours | eval every | R@1 | R@5 | R@1% | train s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for run in hard["runs"]:
            lines.append(f"| {run['mode']} | {run['steps']} | {run['neighbours']} | {run['eval_every']} | "
                         + " | ".join(f"{run[k]:.1f}" for k in RECALLS) + f" | {run['train_seconds']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

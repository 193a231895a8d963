"""Teacher vs student at the end of a distillation: accuracy, size, compute and CPU latency in one table.

Why here and not in bench/: the point of distilling is the trade-off, so the run itself reports it
(R@1/R@5/R@1% on the val split, Params of both branches, GFLOPs and CPU latency per query) with
the bench helpers' conventions (``models/cost.py`` FLOPs, ``timing.py`` timing).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from rich.table import Table
from torch import nn

from cvgl_edge.eval.evaluate import headline_direction
from cvgl_edge.models.cost import FLOP_CONVENTION, model_cost, params_total
from cvgl_edge.timing import summarize_ms, time_ms

RECALLS = ("R@1", "R@5", "R@1%")
LATENCY_NOTE = "CPU, batch 1, median of {repeats} runs after {warmup} warm-up, {threads} torch threads"


def cpu_latency_ms(model: nn.Module, view: str, warmup: int = 2, repeats: int = 7) -> dict[str, float]:
    """Latency of one query image through ``view`` on a CPU copy of the model (ms)."""
    cpu = copy.deepcopy(model).cpu().eval()
    height, width = cpu.input_sizes[cpu.canonical_view(view)]
    image = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        times = time_ms(lambda: cpu.encode(image, view), warmup=warmup, repeats=repeats)
    return summarize_ms(times)


def model_row(name: str, model: nn.Module, metrics: dict[str, dict[str, float]], query_view: str,
              warmup: int = 2, repeats: int = 7) -> dict[str, Any]:
    """One table row: headline recalls, params (both branches), query-branch GFLOPs and CPU latency."""
    cost = model_cost(model, query_view)
    latency = cpu_latency_ms(model, query_view, warmup, repeats)
    direction = headline_direction(metrics)
    headline = metrics[direction]
    return {
        "model": name,
        "direction": direction,
        **{key: round(float(headline[key]), 2) for key in RECALLS},
        "params": params_total(model),
        "gflops_per_query": round(cost["flops"] / 1e9, 4),
        "cpu_ms_per_query": latency["median_ms"],
        "cpu_latency": latency,
        "directions": metrics,
    }


def teacher_metrics(trainer: Any) -> dict[str, dict[str, float]]:
    """The teacher on the student's val split, by the same protocol as ``Trainer.evaluate``."""
    return trainer.val_metrics(trainer.teacher, trainer.teacher_pair_model, "evaluating teacher")


def comparison_table(rows: list[dict[str, Any]], title: str) -> Table:
    """Teacher vs student; fits an 80-column terminal (units in the caption, the model name folds)."""
    table = Table(title=title, caption="recalls in %, Params in M, GFLOPs and CPU ms per query")
    table.add_column("model", overflow="fold")
    for column in (*RECALLS, "Params", "GFLOPs", "CPU ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(row["model"], *(f"{row[key]:.1f}" for key in RECALLS), f"{row['params'] / 1e6:.3f}",
                      f"{row['gflops_per_query']:.3f}", f"{row['cpu_ms_per_query']:.1f}")
    return table


def distil_report(trainer: Any, student_metrics: dict[str, dict[str, float]], warmup: int = 2,
                  repeats: int = 7) -> dict[str, Any]:
    """Rows for teacher and student (distilled) of a finished :class:`DistilTrainer` run."""
    cfg = trainer.cfg
    teacher = teacher_metrics(trainer)
    query_view = trainer.query_view
    rows = [
        model_row(f"teacher ({trainer.teacher_payload['model_name']})", trainer.teacher, teacher, query_view,
                  warmup, repeats),
        model_row(f"student ({cfg.model}, distilled)", trainer.model, student_metrics, query_view, warmup, repeats),
    ]
    return {
        "rows": rows,
        "split": "val",
        "val_pairs": len(trainer.val_set),
        "query_view": query_view,
        "latency": LATENCY_NOTE.format(repeats=repeats, warmup=warmup, threads=torch.get_num_threads()),
        "flops": "GFLOPs per query image through the query branch; " + FLOP_CONVENTION,
    }

"""Evaluate a checkpoint on a dataset split: descriptors, metrics, summary record."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from cvgl_edge.data import build_dataset
from cvgl_edge.eval.embed import embed_pairs
from cvgl_edge.eval.metrics import cross_view_metrics
from cvgl_edge.models.checkpoint import model_from_payload, read_checkpoint

HEADLINE_DIRECTION = "ground->satellite"


def metrics_record(metrics: dict[str, dict[str, float]], **context: Any) -> dict[str, Any]:
    """JSON record: the ground->satellite recalls at the top level (R@1, R@5, R@10, R@1%),
    both directions under ``directions``, plus whatever context the caller adds."""
    record: dict[str, Any] = dict(metrics[HEADLINE_DIRECTION])
    record["directions"] = metrics
    record.update(context)
    return record


def trained_data_options(
    payload: dict[str, Any], data: str | None = None, polar: bool | None = None
) -> tuple[str, bool]:
    """(data spec, polar) to evaluate with: the caller's choice, else what the checkpoint
    was trained with, else the built-in synthetic data without polar transform."""
    trained = payload.get("train_config") or {}
    data = data or trained.get("data") or "synthetic"
    polar = bool(trained.get("polar", False)) if polar is None else polar
    return data, polar


def model_dataset(
    model: torch.nn.Module, data: str, split: str, polar: bool, pairs: int | None = None
) -> Dataset:
    """Un-augmented ``split`` of ``data`` at the model's input sizes; the first ``pairs`` only if given."""
    sizes = model.input_sizes
    dataset = build_dataset(
        data, split, augment=False, polar=polar,
        ground_size=tuple(sizes["ground"]), satellite_size=tuple(sizes["satellite"]),
    )
    if pairs is not None and pairs < len(dataset):
        return Subset(dataset, range(pairs))
    return dataset


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | None = None,
    split: str = "val",
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    polar: bool | None = None,
    workers: int = 0,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint, embed the split with both branches, and return a metrics record.

    ``data`` and ``polar`` default to what the checkpoint was trained with.
    """
    payload = read_checkpoint(checkpoint)
    data, polar = trained_data_options(payload, data, polar)
    model = model_from_payload(payload, str(checkpoint)).to(device)
    dataset = model_dataset(model, data, split, polar)
    start = time.perf_counter()
    ground, satellite = embed_pairs(
        model, dataset, batch_size=batch_size, device=device, num_workers=workers,
        show_progress=show_progress,
    )
    seconds = time.perf_counter() - start
    return metrics_record(
        cross_view_metrics(ground, satellite),
        checkpoint=str(checkpoint),
        data=data,
        split=split,
        polar=polar,
        pairs=len(dataset),
        descriptor_dim=int(ground.shape[1]),
        embed_seconds=round(seconds, 3),
    )

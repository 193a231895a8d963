"""Evaluate a checkpoint (PyTorch) or exported branches (ONNX Runtime, TensorRT) on a dataset
split: descriptors, metrics, summary record."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from cvgl_edge.data import build_dataset
from cvgl_edge.errors import CvglError
from cvgl_edge.eval.embed import embed_pairs, embed_with_encoders
from cvgl_edge.eval.metrics import cross_view_metrics
from cvgl_edge.models.checkpoint import model_from_payload, read_checkpoint
from cvgl_edge.train.query_view import dataset_query_view, for_dataset

HEADLINE_DIRECTION = "ground->satellite"
VIEWS = ("ground", "satellite")


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
    return sized_dataset(model.input_sizes, data, split, polar, pairs)


def sized_dataset(
    sizes: dict[str, tuple[int, int]], data: str, split: str, polar: bool, pairs: int | None = None
) -> Dataset:
    """Un-augmented ``split`` of ``data`` at ``sizes`` ({view: (H, W)}); the first ``pairs`` only if given."""
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
        for_dataset(model, dataset), dataset, batch_size=batch_size, device=device, num_workers=workers,
        show_progress=show_progress,
    )
    seconds = time.perf_counter() - start
    return metrics_record(
        cross_view_metrics(ground, satellite),
        checkpoint=str(checkpoint),
        backend="torch",
        data=data,
        **({"query_view": "drone"} if dataset_query_view(dataset) == "drone" else {}),
        split=split,
        polar=polar,
        pairs=len(dataset),
        descriptor_dim=int(ground.shape[1]),
        embed_seconds=round(seconds, 3),
    )


def evaluate_source(
    source: str | Path,
    backend: str | None = None,
    data: str | None = None,
    split: str = "val",
    batch_size: int = 64,
    device: str = "auto",
    polar: bool | None = None,
    workers: int = 0,
    show_progress: bool = True,
    precision: str | None = None,
) -> dict[str, Any]:
    """``cvgl-edge eval SOURCE --backend``: a checkpoint (torch) or an export folder / file.

    torch at fp32 is ``evaluate_checkpoint`` unchanged; torch fp16/bf16 (autocast, CUDA) and
    the exported backends embed through runtime Encoders. Data for artifacts defaults to the
    built-in synthetic data (an export carries no training config), polar-transformed when the
    satellite input is not square (only polar-trained models have such inputs).
    """
    from cvgl_edge.runtime.artifacts import backend_for
    from cvgl_edge.train.loop import resolve_device

    backend = backend_for(source, backend)
    if backend == "torch":
        if precision in (None, "fp32"):
            return evaluate_checkpoint(source, data, split=split, batch_size=batch_size,
                                       device=resolve_device(device), polar=polar, workers=workers,
                                       show_progress=show_progress)
        return _evaluate_torch_autocast(source, precision, data, split, batch_size, device, polar, workers,
                                        show_progress)
    return evaluate_artifacts(source, backend, data, split, batch_size, device, polar, workers,
                              show_progress, precision)


def _evaluate_torch_autocast(source: str | Path, precision: str, data: str | None, split: str, batch_size: int,
                             device: str, polar: bool | None, workers: int, show_progress: bool) -> dict[str, Any]:
    """torch fp16/bf16 (autocast on CUDA; TorchEncoder refuses it on the CPU with one line)."""
    from cvgl_edge.runtime import model_encoder

    payload = read_checkpoint(source)
    data, polar = trained_data_options(payload, data, polar)
    model = model_from_payload(payload, str(source))
    dataset = model_dataset(model, data, split, polar)
    query_view = dataset_query_view(dataset)
    encoders = {view: model_encoder(model, query_view if view == "ground" else view, device=device,
                                    precision=precision) for view in VIEWS}
    return _encoders_record(encoders, dataset, batch_size, workers, show_progress,
                            checkpoint=str(source), data=data, split=split, polar=polar)


def evaluate_artifacts(
    source: str | Path, backend: str, data: str | None = None, split: str = "val", batch_size: int = 64,
    device: str = "auto", polar: bool | None = None, workers: int = 0, show_progress: bool = True,
    precision: str | None = None,
) -> dict[str, Any]:
    """Both exported branches of one model (folder or one file of it) run by ``backend``."""
    from cvgl_edge.runtime import open_encoder
    from cvgl_edge.runtime.artifacts import branch_files

    files = branch_files(source, backend, precision)
    encoders: dict[str, Any] = {}
    try:
        for view in VIEWS:
            encoders[view] = open_encoder(files[view], view, backend, device=device)
        check_same_export(encoders)
        data = data or "synthetic"
        sizes = {view: encoders[view].info.input_size for view in VIEWS}
        if polar is None:
            height, width = sizes["satellite"]
            polar = height != width
        dataset = sized_dataset(sizes, data, split, polar)
        if dataset_query_view(dataset) != "ground":
            raise CvglError(f"{data} has drone queries, which the exported satellite branch encodes; "
                            "evaluate them with the checkpoint (cvgl-edge eval CHECKPOINT.pt)")
        info = encoders["ground"].info
        return _encoders_record(encoders, dataset, batch_size, workers, show_progress,
                                source=str(source), files={v: str(p) for v, p in files.items()},
                                model_name=info.model_name, model_sha256=info.model_sha256,
                                precision=info.precision, data=data, split=split, polar=polar)
    finally:
        for encoder in encoders.values():
            encoder.close()


def check_same_export(encoders: dict[str, Any]) -> None:
    """Both branches must come from one model: same name and same weights hash."""
    g, s = encoders["ground"].info, encoders["satellite"].info
    if (g.model_name, g.model_sha256) != (s.model_name, s.model_sha256):
        raise CvglError(f"{Path(g.source or 'ground').name} and {Path(s.source or 'satellite').name} come from "
                        f"different models ({g.model_name} {str(g.model_sha256)[:12]} vs "
                        f"{s.model_name} {str(s.model_sha256)[:12]}); export both branches from one checkpoint")
    if g.descriptor_dim != s.descriptor_dim:
        raise CvglError(f"the branches give {g.descriptor_dim}-d and {s.descriptor_dim}-d descriptors")


def _encoders_record(encoders: dict[str, Any], dataset: Dataset, batch_size: int, workers: int, show_progress: bool,
                     **context: Any) -> dict[str, Any]:
    info = encoders["ground"].info
    start = time.perf_counter()
    ground, satellite = embed_with_encoders(encoders, dataset, batch_size=batch_size, show_progress=show_progress,
                                            num_workers=workers)
    seconds = time.perf_counter() - start
    record = metrics_record(cross_view_metrics(ground, satellite), backend=info.backend, runtime=info.runtime,
                            device=info.device, **context)
    record.update(pairs=len(dataset), descriptor_dim=int(ground.shape[1]), embed_seconds=round(seconds, 3))
    return record

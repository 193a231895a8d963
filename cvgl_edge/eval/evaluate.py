"""Evaluate a checkpoint (PyTorch) or exported branches (ONNX Runtime, TensorRT) on a dataset
split: descriptors, metrics, summary record.

Paired datasets (synthetic, CVUSA, CVACT) are scored pair to pair in both directions;
University-1652 and VIGOR with their official retrieval protocols (``data.protocol``), whose
first direction is the headline (drone->satellite, ground->satellite).  ``variant="sample4geo"``
scores University-1652 with distractor gallery classes dropped, labelled as such.

Exported files (``evaluate_artifacts``) run without PyTorch: the datasets yield numpy arrays
and the runtime Encoders take them. PyTorch is imported only where a checkpoint is read.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cvgl_edge.data.benchmark_protocols import build_protocols
from cvgl_edge.data.datasets import CrossViewDataset, FirstItems, build_dataset, dataset_query_view, first_items
from cvgl_edge.data.protocol import RetrievalProtocol, protocol_summary
from cvgl_edge.errors import CvglError
from cvgl_edge.eval.embed import embed_pairs, embed_with_encoders
from cvgl_edge.eval.metrics import cross_view_metrics
from cvgl_edge.eval.protocol_eval import encoder_embedder, model_embedder, protocol_metrics, protocol_sizes
from cvgl_edge.eval.scoring import Scoring, scoring_for
from cvgl_edge.extras import is_missing_torch, needs
from cvgl_edge.runtime import model_encoder, open_encoder
from cvgl_edge.runtime.artifacts import backend_for, branch_files
from cvgl_edge.views import GROUND_TO_SATELLITE, PAIRED_DIRECTIONS, VIEWS

if TYPE_CHECKING:
    import torch

HEADLINE_DIRECTION = GROUND_TO_SATELLITE


def headline_direction(metrics: dict[str, dict[str, float]]) -> str:
    """The direction whose metrics lead a record: ground->satellite for paired data, else the
    first (protocol) direction, e.g. drone->satellite for University-1652."""
    if HEADLINE_DIRECTION in metrics:
        return HEADLINE_DIRECTION
    return next(iter(metrics))


def metrics_record(metrics: dict[str, dict[str, float]], **context: Any) -> dict[str, Any]:
    """JSON record: the headline direction's metrics at the top level (R@1, R@5, R@10, R@1%, mAP...),
    its name under ``headline``, every direction under ``directions``, plus the caller's context."""
    headline = headline_direction(metrics)
    record: dict[str, Any] = dict(metrics[headline])
    record["headline"] = headline
    record["directions"] = metrics
    record.update(context)
    return record


def paired_scoring(scoring: Scoring, pairs: int) -> dict[str, dict[str, object]]:
    """Record entry ``scoring`` of paired data: both directions rank ``pairs`` items."""
    return {direction: scoring.describe(pairs) for direction in PAIRED_DIRECTIONS}


def data_protocols(sizes: dict[str, tuple[int, int]], data: str, split: str, polar: bool,
                   variant: str = "official") -> list[RetrievalProtocol]:
    """The retrieval protocols of ``data`` at ``sizes`` ({view: (H, W)}); empty for paired data."""
    return build_protocols(data, split, ground_size=tuple(sizes["ground"]),
                           satellite_size=tuple(sizes["satellite"]), polar=polar, variant=variant)


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
) -> CrossViewDataset | FirstItems:
    """Un-augmented ``split`` of ``data`` at the model's input sizes; the first ``pairs`` only if given."""
    return sized_dataset(model.input_sizes, data, split, polar, pairs)


def sized_dataset(
    sizes: dict[str, tuple[int, int]], data: str, split: str, polar: bool, pairs: int | None = None
) -> CrossViewDataset | FirstItems:
    """Un-augmented ``split`` of ``data`` at ``sizes`` ({view: (H, W)}); the first ``pairs`` only if given."""
    dataset = build_dataset(
        data, split, augment=False, polar=polar,
        ground_size=tuple(sizes["ground"]), satellite_size=tuple(sizes["satellite"]),
    )
    return first_items(dataset, pairs)


def read_checkpoint_for(what: str, checkpoint: str | Path) -> tuple[Any, Any]:
    """(``read_checkpoint``, ``model_from_payload``) of the PyTorch side; a missing PyTorch is a
    one-line CvglError saying which extra evaluates ``checkpoint`` and that exported files need none."""
    try:
        from cvgl_edge.models.checkpoint import model_from_payload, read_checkpoint  # checkpoints are PyTorch's
    except ImportError as exc:
        if is_missing_torch(exc):
            raise CvglError(needs(f"{what} the checkpoint {Path(checkpoint).name}")
                            + " (exported .onnx / .engine files run without it)") from None
        raise
    return read_checkpoint, model_from_payload


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | None = None,
    split: str = "val",
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    polar: bool | None = None,
    workers: int = 0,
    show_progress: bool = True,
    variant: str = "official",
) -> dict[str, Any]:
    """Load a checkpoint, embed the split with both branches, and return a metrics record.

    ``data`` and ``polar`` default to what the checkpoint was trained with.  Data with a
    retrieval protocol (University-1652, VIGOR) is scored with it (``variant``: official or
    sample4geo) and the record names it under ``protocol``.
    """
    read_checkpoint, model_from_payload = read_checkpoint_for("evaluating", checkpoint)
    from cvgl_edge.models.query_view import for_dataset  # wraps a PyTorch model

    payload = read_checkpoint(checkpoint)
    data, polar = trained_data_options(payload, data, polar)
    scoring = scoring_for(data, variant)
    model = model_from_payload(payload, str(checkpoint)).to(device)
    protocols = data_protocols(model.input_sizes, data, split, polar, variant)
    if protocols:
        start = time.perf_counter()
        metrics = protocol_metrics(protocols, model_embedder(model, batch_size, device, workers, show_progress))
        return metrics_record(metrics, checkpoint=str(checkpoint), backend="torch", data=data, split=split,
                              polar=polar, protocol=protocol_summary(protocols), **protocol_sizes(protocols),
                              descriptor_dim=int(model.descriptor_dim),
                              embed_seconds=round(time.perf_counter() - start, 3))
    dataset = model_dataset(model, data, split, polar)
    start = time.perf_counter()
    ground, satellite = embed_pairs(
        for_dataset(model, dataset), dataset, batch_size=batch_size, device=device, num_workers=workers,
        show_progress=show_progress,
    )
    seconds = time.perf_counter() - start
    return metrics_record(
        cross_view_metrics(ground, satellite, scoring),
        scoring=paired_scoring(scoring, len(dataset)),
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
    variant: str = "official",
) -> dict[str, Any]:
    """``cvgl-edge eval SOURCE --backend``: a checkpoint (torch) or an export folder / file.

    torch at fp32 is ``evaluate_checkpoint`` unchanged; torch fp16/bf16 (autocast, CUDA) and
    the exported backends embed through runtime Encoders. Data for artifacts defaults to the
    built-in synthetic data (an export carries no training config), polar-transformed when the
    satellite input is not square (only polar-trained models have such inputs).
    """
    backend = backend_for(source, backend)
    if backend == "torch":
        read_checkpoint_for("evaluating", source)  # PyTorch is there, or one line says which extra
        from cvgl_edge.models.devices import resolve_device  # torch devices

        if precision in (None, "fp32"):
            return evaluate_checkpoint(source, data, split=split, batch_size=batch_size,
                                       device=resolve_device(device), polar=polar, workers=workers,
                                       show_progress=show_progress, variant=variant)
        return _evaluate_torch_autocast(source, precision, data, split, batch_size, device, polar, workers,
                                        show_progress, variant)
    return evaluate_artifacts(source, backend, data, split, batch_size, device, polar, workers,
                              show_progress, precision, variant)


def _evaluate_torch_autocast(source: str | Path, precision: str, data: str | None, split: str, batch_size: int,
                             device: str, polar: bool | None, workers: int, show_progress: bool,
                             variant: str = "official") -> dict[str, Any]:
    """torch fp16/bf16 (autocast on CUDA; TorchEncoder refuses it on the CPU with one line)."""
    read_checkpoint, model_from_payload = read_checkpoint_for("evaluating", source)
    payload = read_checkpoint(source)
    data, polar = trained_data_options(payload, data, polar)
    scoring = scoring_for(data, variant)
    model = model_from_payload(payload, str(source))
    protocols = data_protocols(model.input_sizes, data, split, polar, variant)
    if protocols:
        encoders = {view: model_encoder(model, view, device=device, precision=precision) for view in VIEWS}
        return _protocol_record(encoders, protocols, batch_size, workers, show_progress,
                                checkpoint=str(source), data=data, split=split, polar=polar)
    dataset = model_dataset(model, data, split, polar)
    query_view = dataset_query_view(dataset)
    encoders = {view: model_encoder(model, query_view if view == "ground" else view, device=device,
                                    precision=precision) for view in VIEWS}
    return _encoders_record(encoders, dataset, batch_size, workers, show_progress, scoring,
                            checkpoint=str(source), data=data, split=split, polar=polar)


def evaluate_artifacts(
    source: str | Path, backend: str, data: str | None = None, split: str = "val", batch_size: int = 64,
    device: str = "auto", polar: bool | None = None, workers: int = 0, show_progress: bool = True,
    precision: str | None = None, variant: str = "official",
) -> dict[str, Any]:
    """Both exported branches of one model (folder or one file of it) run by ``backend``.

    Drone queries (University-1652, synthetic-drone) are encoded by the satellite artifact:
    the drone view is the model's aerial branch."""
    files = branch_files(source, backend, precision)
    data = data or "synthetic"
    scoring = scoring_for(data, variant)
    encoders: dict[str, Any] = {}
    try:
        for view in VIEWS:
            encoders[view] = open_encoder(files[view], view, backend, device=device)
        check_same_export(encoders)
        sizes = {view: encoders[view].info.input_size for view in VIEWS}
        if polar is None:
            height, width = sizes["satellite"]
            polar = height != width
        info = encoders["ground"].info
        context = dict(source=str(source), files={v: str(p) for v, p in files.items()},
                       model_name=info.model_name, model_sha256=info.model_sha256,
                       precision=info.precision, data=data, split=split, polar=polar)
        protocols = data_protocols(sizes, data, split, polar, variant)
        if protocols:
            return _protocol_record(encoders, protocols, batch_size, workers, show_progress, **context)
        dataset = sized_dataset(sizes, data, split, polar)
        query_view = dataset_query_view(dataset)
        pair_encoders = {"ground": encoders["satellite"] if query_view == "drone" else encoders["ground"],
                         "satellite": encoders["satellite"]}
        extra = {"query_view": query_view} if query_view != "ground" else {}
        return _encoders_record(pair_encoders, dataset, batch_size, workers, show_progress, scoring, **context,
                                **extra)
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


def _protocol_record(encoders: dict[str, Any], protocols: list[RetrievalProtocol], batch_size: int, workers: int,
                     show_progress: bool, **context: Any) -> dict[str, Any]:
    """Metrics record of retrieval protocols scored with runtime Encoders ("ground" / "satellite")."""
    info = encoders["ground"].info
    start = time.perf_counter()
    metrics = protocol_metrics(protocols, encoder_embedder(encoders, batch_size, workers, show_progress))
    record = metrics_record(metrics, backend=info.backend, runtime=info.runtime, device=info.device, **context)
    record.update(protocol=protocol_summary(protocols), **protocol_sizes(protocols),
                  descriptor_dim=int(info.descriptor_dim), embed_seconds=round(time.perf_counter() - start, 3))
    return record


def _encoders_record(encoders: dict[str, Any], dataset: Any, batch_size: int, workers: int, show_progress: bool,
                     scoring: Scoring, **context: Any) -> dict[str, Any]:
    info = encoders["ground"].info
    start = time.perf_counter()
    ground, satellite = embed_with_encoders(encoders, dataset, batch_size=batch_size, show_progress=show_progress,
                                            num_workers=workers)
    seconds = time.perf_counter() - start
    record = metrics_record(cross_view_metrics(ground, satellite, scoring), backend=info.backend,
                            runtime=info.runtime, device=info.device, **context)
    record.update(pairs=len(dataset), scoring=paired_scoring(scoring, len(dataset)),
                  descriptor_dim=int(ground.shape[1]), embed_seconds=round(seconds, 3))
    return record

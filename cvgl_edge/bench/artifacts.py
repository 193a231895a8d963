"""The files a variant runs from: ONNX (fp32, fp16, int8) / TensorRT engines, exported on demand.

Why a cache: exporting the paper-size model takes about a minute per branch on a CPU,
so files are kept in ``--artifacts DIR`` (default ``~/.cache/cvgl-edge/bench/<weights
sha256[:16]>``, or ``$XDG_CACHE_HOME``) and reused when their recorded weights hash
matches the benchmarked model. Exports go through ``cvgl_edge.export.pipeline.run_export``,
so a cached file has passed the same checks as one from ``cvgl-edge export``. A preset
without a checkpoint (random, seeded weights) is first saved as a checkpoint in the folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import onnx
import torch

from cvgl_edge.bench.plan import Variant
from cvgl_edge.errors import CvglError
from cvgl_edge.export.tensorrt.build import read_sidecar
from cvgl_edge.io import atomic_torch_save
from cvgl_edge.models.checkpoint import checkpoint_payload
from cvgl_edge.runtime.artifacts import VIEWS, ArtifactName
from cvgl_edge.runtime.backends import BACKENDS


def default_folder(model_sha256: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cvgl-edge" / "bench" / model_sha256[:16]


def preset_checkpoint(model: torch.nn.Module, folder: Path, seed: int) -> Path:
    """Save a preset's seeded random weights as a checkpoint (once) so exporters can read it."""

    path = folder / f"{model.model_name}-seed{seed}.pt"
    if not path.is_file():
        note = f"random weights of the preset, torch.manual_seed({seed})"
        payload = {**checkpoint_payload(model), "bench_note": note}
        atomic_torch_save(payload, path)
    return path


def artifact_files(folder: Path, model_name: str, variant: Variant) -> dict[str, Path]:
    """Where ``cvgl-edge export`` writes this variant's files (one per view)."""
    name = ArtifactName(model_name, "ground", variant.precision, BACKENDS[variant.backend].suffix[1:])
    return {view: folder / name.file_name(view) for view in VIEWS}


def recorded_sha256(path: Path) -> str | None:
    """The weights hash an exported file records (ONNX metadata or the engine's JSON sidecar)."""
    try:
        if path.suffix == ".engine":
            return read_sidecar(path).get("model_sha256")
        model = onnx.load(str(path), load_external_data=False)
        return {p.key: p.value for p in model.metadata_props}.get("model_sha256")
    except Exception:  # noqa: BLE001 - unreadable or foreign file: not reusable, re-export
        return None


def engine_max_batch(path: Path) -> int | None:
    try:
        return int(read_sidecar(path)["batch_profile"]["max"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def reusable(path: Path, model_sha256: str, max_batch: int) -> bool:
    """The file exists, comes from these weights and (engines) takes the largest batch."""
    if not path.is_file():
        return False
    recorded = recorded_sha256(path)
    if recorded is not None and recorded != model_sha256:
        raise CvglError(f"{path} was exported from other weights (sha256 {recorded[:12]}..., benchmarked model "
                        f"{model_sha256[:12]}...); use another --artifacts folder")
    if path.suffix == ".engine":
        return (engine_max_batch(path) or 0) >= max_batch
    return recorded is not None


def ensure_artifacts(variant: Variant, checkpoint: Path, folder: Path, model_name: str, model_sha256: str,
                     max_batch: int) -> tuple[dict[str, Path], dict[str, Any]]:
    """This variant's files for both views, exported where missing; (files, provenance)."""
    files = artifact_files(folder, model_name, variant)
    missing = [view for view, path in files.items() if not reusable(path, model_sha256, max_batch)]
    if missing:
        from cvgl_edge.export.pipeline import ExportRequest, run_export

        request = ExportRequest(
            checkpoint=checkpoint, out=folder, branch=missing[0] if len(missing) == 1 else "both",
            format=BACKENDS[variant.backend].export_format, precision=variant.precision,
            check_images=2, eval_pairs=0, max_batch=max(max_batch, 1), opt_batch=1,
        )
        run_export(request)
    for view, path in files.items():
        if not path.is_file():
            raise CvglError(f"export did not produce {path}")
    return files, {"folder": str(folder), "exported": missing, "reused": [v for v in VIEWS if v not in missing]}

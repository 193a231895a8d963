"""``cvgl-edge verify``: does an exported artifact still do what its checkpoint does?

The artifact's branch runs in its runtime (an ``.onnx`` file in ONNX Runtime on the CPU, an
``.engine`` in TensorRT on the GPU; ``--backend`` overrides the suffix) and in PyTorch on the
same images of a split; the other branch runs in PyTorch only. Reported: per-descriptor
cosine (min/mean), max abs error, a Polygraphy element-wise comparison (informational), and
ground->satellite R@1/R@5/R@1% for PyTorch, for the artifact and their difference. The
verdict uses the thresholds of the artifact's precision (``THRESHOLDS``), overridable per option.

The artifact is opened through ``cvgl_edge.runtime.open_encoder``: what it says about itself
comes from the ONNX metadata_props or, for an engine, from its JSON sidecar (whose checks
refuse a replaced engine, another TensorRT version or GPU, or a machine without GPU).

Why a separate command: export checks a file once, on a few synthetic images, at the
moment it is written; verify re-checks any file later (copied, re-quantized, edited by a
tool) against the checkpoint it claims to come from, on real retrieval pairs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.eval.embed import embed_pairs, embed_view
from cvgl_edge.eval.evaluate import model_dataset, trained_data_options
from cvgl_edge.export.onnx.metadata import OUTPUT_NAME, state_dict_sha256
from cvgl_edge.export.onnx.validate import cosine_rows
from cvgl_edge.export.recall import HEADLINE, REPORTED, headline_recall
from cvgl_edge.models.checkpoint import model_from_payload, read_checkpoint
from cvgl_edge.models.query_view import for_dataset
from cvgl_edge.runtime import open_encoder
from cvgl_edge.runtime.artifacts import backend_for
from cvgl_edge.runtime.backends import BACKENDS

if TYPE_CHECKING:
    from cvgl_edge.runtime.base import Encoder

VIEWS = ("ground", "satellite")


@dataclass
class Thresholds:
    """Pass conditions; None: not checked."""

    min_cosine: float | None
    max_r1_drop: float | None


#: fp32: the export's own parity bound; int8: what a user may lose in R@1 (points);
#: fp16: R@1 may drop by at most half a point (FP16 rounding should not reorder neighbours).
THRESHOLDS = {
    "fp32": Thresholds(min_cosine=0.9999, max_r1_drop=None),
    "int8": Thresholds(min_cosine=0.98, max_r1_drop=2.0),
    "fp16": Thresholds(min_cosine=None, max_r1_drop=0.5),
}
#: Polygraphy element-wise tolerances per precision (reported, not part of the verdict:
#: unit-length descriptors make cosine and recall the meaningful bounds).
POLYGRAPHY_TOLERANCES = {"fp32": (1e-5, 1e-3), "fp16": (1e-3, 1e-2), "int8": (5e-2, 5e-1)}




def open_artifact(path: Path, backend: str | None = None) -> "Encoder":
    """The artifact as an open Encoder (ONNX Runtime on the CPU, TensorRT on the GPU), or CvglError."""

    if not path.is_file():
        raise CvglError(f"artifact not found: {path}")
    backend = backend_for(path, backend)
    if BACKENDS[backend].export_format is None:
        raise CvglError(f"verify checks an exported .onnx or .engine file against its checkpoint, not {path.name}")
    return open_encoder(path, None, backend, device="cuda" if BACKENDS[backend].needs_gpu else "cpu")


def artifact_metadata(path: Path) -> dict[str, Any]:
    """Parsed cvgl-edge metadata of an ONNX file or engine sidecar (CvglError if missing, unreadable or foreign)."""
    with open_artifact(Path(path)) as encoder:
        return dict(encoder.info.extra["metadata"])


def artifact_precision(path: Path, meta: dict[str, Any]) -> str:
    """Precision from the metadata, else from the file name (``*.int8.onnx``, ``*.fp16.onnx``)."""
    precision = str(meta.get("precision", "")).lower()
    if precision in THRESHOLDS:
        return precision
    for candidate in ("int8", "fp16"):
        if f".{candidate}." in path.name:
            return candidate
    return "fp32"


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))


def check_same_model(meta: dict[str, Any], model: nn.Module, checkpoint: Path, digest: str) -> None:
    """CvglError (one line) if the artifact was exported from another model or other weights."""
    if meta["model_name"] != model.model_name:
        raise CvglError(f"artifact is a {meta['model_name']} export but {checkpoint} holds {model.model_name}")
    theirs, ours = _canonical(meta.get("model_config")), _canonical(model.config.to_dict())
    if "model_config" in meta and theirs != ours:  # engine sidecars carry no config; the hash decides
        keys = sorted(k for k in set(theirs or {}) | set(ours) if (theirs or {}).get(k) != ours.get(k))
        shown = ", ".join(f"{k}={(theirs or {}).get(k)!r} vs {ours.get(k)!r}" for k in keys[:3])
        raise CvglError(f"artifact was exported from another {model.model_name} config than {checkpoint} ({shown})")
    if meta["model_sha256"] != digest:
        raise CvglError(f"artifact was exported from other weights than {checkpoint} "
                        f"(model hash {meta['model_sha256'][:12]} vs {digest[:12]})")


def polygraphy_compare(reference: np.ndarray, output: np.ndarray, atol: float, rtol: float) -> dict[str, Any]:
    """Polygraphy's simple element-wise comparison of saved PyTorch (reference) and artifact outputs."""
    from polygraphy.comparator import IterationResult
    from polygraphy.comparator.compare import SimpleCompareFunc
    from polygraphy.logger import G_LOGGER

    G_LOGGER.module_severity = G_LOGGER.ERROR
    compare = SimpleCompareFunc(atol=atol, rtol=rtol)
    result = compare(IterationResult({OUTPUT_NAME: reference}, runner_name="pytorch"),
                     IterationResult({OUTPUT_NAME: output}, runner_name="artifact"))[OUTPUT_NAME]
    return {"passed": bool(result), "atol": atol, "rtol": rtol,
            "max_absdiff": float(result.max_absdiff), "max_reldiff": float(result.max_reldiff),
            "mean_absdiff": float(result.mean_absdiff)}


@dataclass
class PyTorchReference:
    """The checkpoint's model, its weights hash, the pairs and their PyTorch descriptors."""

    model: nn.Module
    digest: str
    data: str
    polar: bool
    dataset: Any
    descriptors: dict[str, torch.Tensor]


#: The most recent reference, keyed by checkpoint identity and the options: an export
#: verifies two branches (and engines) against one checkpoint, and the PyTorch pass over
#: both views is the expensive part (minutes for the paper-size model on a CPU).
_LAST_REFERENCE: dict[tuple, PyTorchReference] = {}


def pytorch_reference(checkpoint: Path, data: str | None, split: str, pairs: int | None,
                      trusted: bool) -> PyTorchReference:
    """PyTorch descriptors of ``pairs`` pairs of ``split`` (computed once per checkpoint file and options)."""

    stat = checkpoint.stat() if checkpoint.is_file() else None
    key = (str(checkpoint.resolve()), stat and (stat.st_size, stat.st_mtime_ns), data, split, pairs, trusted)
    if key in _LAST_REFERENCE:
        return _LAST_REFERENCE[key]
    payload = read_checkpoint(checkpoint, trusted=trusted)
    model = model_from_payload(payload, str(checkpoint)).eval()
    data, polar = trained_data_options(payload, data)
    dataset = model_dataset(model, data, split, polar, pairs)
    if len(dataset) == 0:
        raise CvglError(f"{data} has no {split} pairs")
    with torch.no_grad():
        descriptors = dict(zip(VIEWS, embed_pairs(for_dataset(model, dataset), dataset, show_progress=False)))
    reference = PyTorchReference(model, state_dict_sha256(model), data, polar, dataset, descriptors)
    _LAST_REFERENCE.clear()
    _LAST_REFERENCE[key] = reference
    return reference


def verdict(descriptors: dict[str, Any], drop: dict[str, float], thresholds: Thresholds) -> list[str]:
    """Why an artifact fails (empty: it passes): non-finite outputs, cosine, R@1 drop."""
    failures = []
    if descriptors["nonfinite"]:
        failures.append(f"{descriptors['nonfinite']} non-finite descriptor values")
    if thresholds.min_cosine is not None and not descriptors["cosine_min"] >= thresholds.min_cosine:
        failures.append(f"cosine min {descriptors['cosine_min']:.6f} < {thresholds.min_cosine}")
    if thresholds.max_r1_drop is not None and drop["R@1"] > thresholds.max_r1_drop:
        failures.append(f"R@1 drop {drop['R@1']:.2f} points > {thresholds.max_r1_drop}")
    return failures


def verify(artifact: Path, checkpoint: Path, data: str | None = None, split: str = "val", pairs: int | None = 200,
           min_cosine: float | None = None, max_r1_drop: float | None = None,
           trusted: bool = False, backend: str | None = None) -> dict[str, Any]:
    """Verify one artifact against its checkpoint; the record says ``passed`` and ``failures``.

    ``backend``: onnxruntime or tensorrt; None = from the artifact's suffix.
    """
    if pairs is not None and pairs < 1:
        raise CvglError("--pairs must be >= 1")
    artifact, checkpoint = Path(artifact), Path(checkpoint)
    with open_artifact(artifact, backend) as encoder:
        return _verify_encoder(encoder, artifact, checkpoint, data, split, pairs, min_cosine, max_r1_drop, trusted)


def _verify_encoder(encoder: "Encoder", artifact: Path, checkpoint: Path, data: str | None, split: str,
                    pairs: int | None, min_cosine: float | None, max_r1_drop: float | None,
                    trusted: bool) -> dict[str, Any]:
    info = encoder.info
    meta = info.extra["metadata"]
    precision = artifact_precision(artifact, meta)
    ref = pytorch_reference(checkpoint, data, split, pairs, trusted)
    model, digest, dataset, reference = ref.model, ref.digest, ref.dataset, ref.descriptors
    data, polar = ref.data, ref.polar
    check_same_model(meta, model, checkpoint, digest)
    view = info.view
    if list(meta["input_size"]) != list(model.config.input_size(view)):
        raise CvglError(f"artifact input size {meta['input_size']} differs from the checkpoint's {view} "
                        f"input size {list(model.config.input_size(view))}")

    defaults = THRESHOLDS[precision]
    thresholds = Thresholds(min_cosine=defaults.min_cosine if min_cosine is None else min_cosine,
                            max_r1_drop=defaults.max_r1_drop if max_r1_drop is None else max_r1_drop)
    produced = embed_view(encoder, dataset, view)
    ref_np, out_np = reference[view].numpy(), produced.numpy()
    if out_np.shape != ref_np.shape:
        raise CvglError(f"artifact outputs shape {list(out_np.shape)}, PyTorch {list(ref_np.shape)}")
    cos = cosine_rows(out_np, ref_np)
    descriptors = {
        "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
        "max_abs_err": float(np.abs(out_np.astype(np.float64) - ref_np.astype(np.float64)).max()),
        "nonfinite": int((~np.isfinite(out_np)).sum()),
    }
    atol, rtol = POLYGRAPHY_TOLERANCES[precision]
    descriptors["polygraphy"] = polygraphy_compare(ref_np, out_np, atol, rtol)

    mixed = dict(reference)
    mixed[view] = produced
    torch_recall = headline_recall(reference["ground"], reference["satellite"])
    artifact_recall = headline_recall(mixed["ground"], mixed["satellite"])
    drop = {k: round(torch_recall[k] - artifact_recall[k], 3) for k in REPORTED}

    failures = verdict(descriptors, drop, thresholds)
    return {
        "artifact": str(artifact), "checkpoint": str(checkpoint), "format": BACKENDS[info.backend].export_format,
        "backend": info.backend, "runtime": info.runtime, "device": info.device,
        "model_name": model.model_name, "model_sha256": digest, "view": view, "precision": precision,
        "branches": {v: (f"artifact ({info.backend})" if v == view else "PyTorch") for v in VIEWS},
        "data": data, "split": split, "polar": polar, "pairs": len(dataset), "direction": HEADLINE,
        "descriptors": descriptors,
        "recall": {"pytorch": torch_recall, "artifact": artifact_recall, "drop": drop},
        "thresholds": asdict(thresholds),
        "passed": not failures, "failures": failures,
    }


def verify_table(record: dict[str, Any]):
    """A rich table of one verify record."""
    from rich.table import Table

    d, r, t = record["descriptors"], record["recall"], record["thresholds"]
    runtime = record.get("runtime", "onnxruntime")
    table = Table(title=f"{Path(record['artifact']).name} ({record['precision']}, {record['view']} branch, "
                        f"{runtime}) vs "
                        f"PyTorch on {record['pairs']} {record['data']} {record['split']} pairs, {record['direction']}")
    for column, justify in (("check", "left"), ("PyTorch", "right"), ("artifact", "right"),
                            ("difference", "right"), ("threshold", "right")):
        table.add_column(column, justify=justify)
    table.add_row("cosine min", "", f"{d['cosine_min']:.7f}", "",
                  "" if t["min_cosine"] is None else f">= {t['min_cosine']}")
    table.add_row("cosine mean", "", f"{d['cosine_mean']:.7f}", "", "")
    table.add_row("max abs error", "", f"{d['max_abs_err']:.2e}", "", "")
    pg = d["polygraphy"]
    table.add_row("polygraphy", "", "passed" if pg["passed"] else "failed",
                  "", f"info: atol {pg['atol']:g} rtol {pg['rtol']:g}")
    for key in REPORTED:
        limit = f"drop <= {t['max_r1_drop']}" if key == "R@1" and t["max_r1_drop"] is not None else ""
        table.add_row(key, f"{r['pytorch'][key]:.2f}", f"{r['artifact'][key]:.2f}",
                      f"{r['artifact'][key] - r['pytorch'][key]:+.2f}", limit)
    return table


def summary_line(record: dict[str, Any]) -> str:
    d, drop = record["descriptors"], record["recall"]["drop"]
    figures = f"cosine min {d['cosine_min']:.6f}, R@1 drop {drop['R@1']:.2f} points"
    if record["passed"]:
        return f"PASSED: {Path(record['artifact']).name} within thresholds ({figures})"
    return f"FAILED: {Path(record['artifact']).name}: {'; '.join(record['failures'])}"

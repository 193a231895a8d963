"""``cvgl-edge bench EXPORT_FOLDER`` (or one of its .onnx / .engine files): benchmark files that exist.

Why a second kind of source: the deployment install (a Jetson, a drone computer) has no PyTorch,
so it cannot load a checkpoint, count FLOPs with PyTorch's counters or export anything; what it
has is the exported files. They run through the same Encoders, cells, clocks and accuracy set as
a checkpoint's variants; only what needs the model itself differs:

- nothing is exported: each variant's two branch files must already be there (a missing one
  skips that variant with one line saying how to make it);
- the model (name, weights hash, input sizes, descriptor size) is what the files record, and
  every variant must come from the same weights;
- Params and FLOPs come from the files' metadata when it records them (``params`` / ``flops``,
  per branch), else they are reported as unknown: onnxruntime does not expose an ONNX file's
  initializers, and counting needs the PyTorch model (``cvgl-edge bench CHECKPOINT`` does it);
- on CUDA, times come from the host clock around synchronised calls and GPU memory is not read
  (CUDA events and ``torch.cuda`` memory figures need PyTorch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvgl_edge.bench import plan
from cvgl_edge.errors import CvglError
from cvgl_edge.runtime.artifacts import ArtifactName, parse_artifact_name
from cvgl_edge.runtime.backends import BACKENDS, artifact_backends
from cvgl_edge.views import VIEWS

#: what the record says where the files do not record a figure
UNKNOWN_NOTE = ("Params and FLOPs unknown: the exported files do not record them (onnxruntime does not "
                "expose an ONNX file's initializers; `cvgl-edge bench CHECKPOINT` counts both with PyTorch)")


def is_exported(source: str | Path | None) -> bool:
    """True for an export folder or an .onnx / .engine file (what runs without PyTorch)."""
    if source is None:
        return False
    path = Path(source)
    return path.is_dir() or any(path.suffix.lower() in backend.suffixes for backend in artifact_backends())


def check_exported(source: Path, request: Any, backends: list[str]) -> str:
    """The model name of the export at ``source``, after refusing what an export cannot do
    (one-line CvglErrors, before any work)."""
    if not source.exists():
        raise CvglError(f"not found: {source}")
    if request.overrides:
        raise CvglError("--set applies to --model presets only (exported files fix their model)")
    if request.artifacts is not None:
        raise CvglError(f"--artifacts is where a checkpoint's exports go; {source} is already exported: "
                        "drop --artifacts")
    if "torch" in backends:
        raise CvglError(f"--backend torch runs a checkpoint; {source.name} is exported: use onnxruntime "
                        "or tensorrt, or pass the checkpoint")
    if request.estimate:
        raise CvglError("--estimate needs FLOPs and bytes counted from the PyTorch model: pass the CHECKPOINT")
    return model_name(source)


def model_name(source: Path) -> str:
    """The ``<model>`` part of the export's file names (a folder must hold exactly one model)."""
    if source.is_file():
        name = parse_artifact_name(source)
        if name is None:
            raise CvglError(f"{source.name} is not named <model>-<ground|satellite>[.<precision>].onnx|.engine "
                            "as cvgl-edge export writes it; pass the export folder")
        return name.model
    models = sorted({name.model for name in map(parse_artifact_name, source.iterdir()) if name is not None})
    if not models:
        raise CvglError(f"no exported files (<model>-<ground|satellite>[.<precision>].onnx|.engine) in {source}")
    if len(models) > 1:
        raise CvglError(f"{source} holds several models ({', '.join(models)}); pass one of their files")
    return models[0]


def variant_files(source: Path, model: str, variant: plan.Variant) -> dict[str, Path]:
    """{view: file} of one variant in the export (fp32 files with or without their ``.fp32`` tag);
    CvglError naming the first missing file and how to make it."""
    folder = source if source.is_dir() else source.parent
    backend = BACKENDS[variant.backend]
    ext = backend.suffix[1:]
    files = {}
    for view in VIEWS:
        name = ArtifactName(model, view, variant.precision, ext)
        names = [name.file_name(), ArtifactName(model, view, "fp32", ext, tagged=True).file_name()] \
            if variant.precision == "fp32" else [name.file_name()]
        files[view] = next((folder / n for n in names if (folder / n).is_file()), folder / names[0])
    for view, path in files.items():
        if not path.is_file():
            raise CvglError(f"no {path.name} in {folder} (nothing is exported from exported files: "
                            f"cvgl-edge export CHECKPOINT --format {backend.export_format} "
                            f"--precision {variant.precision})")
    return files


def exported_environment(device: str) -> plan.Environment:
    """``plan.probe_environment`` without PyTorch: a CUDA GPU is taken to be there when asked for
    (opening a variant's encoders on it says otherwise, and skips that variant with the reason)."""
    return plan.probe_environment(cuda=plan.runtime_device(device) == "cuda")


def _count(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def exported_cost(encoders: dict[str, Any]) -> dict[str, Any]:
    """The record's ``cost`` from the branch files' metadata (``params`` and ``flops`` per branch,
    ``params_total``, ``flop_convention``) where recorded; the rest None and listed under ``unknown``."""
    metadata = {view: dict(encoder.info.extra.get("metadata") or {}) for view, encoder in encoders.items()}
    branches = {view: {"view": view, "params": _count(meta.get("params")), "flops": _count(meta.get("flops"))}
                for view, meta in metadata.items()}
    totals = {_count(meta.get("params_total")) for meta in metadata.values()} - {None}
    cost: dict[str, Any] = {"params_total": totals.pop() if len(totals) == 1 else None, "branches": branches,
                            "source": "the exported files' metadata"}
    convention = next((meta["flop_convention"] for meta in metadata.values() if meta.get("flop_convention")), None)
    if convention:
        cost["flop_convention"] = convention
    unknown = [key for key in ("params", "flops") if any(b[key] is None for b in branches.values())]
    if unknown:
        cost["unknown"] = unknown
        cost["note"] = UNKNOWN_NOTE if unknown == ["params", "flops"] else \
            f"{' and '.join(unknown)} unknown: the exported files do not record them"
    return cost

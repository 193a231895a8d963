"""Is this TensorRT engine runnable here? The sidecar checks, before anything is deserialised.

Why before: a serialised engine is tied to the TensorRT version (and, for full TensorRT, the
GPU architecture) it was built with; deserialising a mismatched or replaced file gives an
opaque runtime error or a crash. The JSON sidecar written by ``cvgl-edge export --format
engine`` (``<engine>.json``, see ``cvgl_edge.export.tensorrt.build``) says what the engine was
built from and for, so each mismatch can be refused with one line that says what to do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.runtime.tensorrt.backend import TrtBackend, load_backend
from cvgl_edge.runtime.tensorrt.cuda_memory import GpuInfo

REBUILD = "rebuild it with cvgl-edge export --format engine"
REQUIRED = ("engine_sha256", "tensorrt", "view", "model_name", "model_sha256", "descriptor_dim", "input_size")


def sidecar_path(engine_path: Path) -> Path:
    """``<engine>.json``: where the builder (``cvgl_edge.export.tensorrt.build``) writes the sidecar."""
    return Path(str(engine_path) + ".json")


def read_engine_sidecar(engine: Path) -> dict[str, Any]:
    """The engine's sidecar as a dict; CvglError if the engine or sidecar is missing, unreadable or incomplete."""
    engine = Path(engine)
    if not engine.is_file():
        raise CvglError(f"engine not found: {engine}")
    side = sidecar_path(engine)
    if not side.is_file():
        raise CvglError(f"{engine.name} has no sidecar {side.name}; engines built by cvgl-edge export --format engine "
                        "have one: keep it next to the engine, or rebuild")
    try:
        sidecar = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CvglError(f"cannot read the engine sidecar {side}: {first_line(exc)}") from None
    missing = [key for key in REQUIRED if not isinstance(sidecar, dict) or sidecar.get(key) in (None, "")]
    if missing:
        raise CvglError(f"the engine sidecar {side.name} lacks {', '.join(missing)}; {REBUILD}")
    trt_info = sidecar["tensorrt"]
    if not isinstance(trt_info, dict) or not trt_info.get("flavour") or not trt_info.get("version"):
        raise CvglError(f"the engine sidecar {side.name} does not say which TensorRT built it; {REBUILD}")
    return sidecar


def check_engine_bytes(engine: Path, sidecar: dict[str, Any]) -> bytes:
    """The engine's bytes, if their sha256 is the one recorded at build time."""
    blob = Path(engine).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sidecar["engine_sha256"]:
        raise CvglError(f"{Path(engine).name} is not the engine its sidecar describes (sha256 {digest[:12]} vs "
                        f"{str(sidecar['engine_sha256'])[:12]}: corrupt or replaced); {REBUILD}")
    return blob


def built_with(sidecar: dict[str, Any]) -> str:
    return f"{sidecar['tensorrt']['flavour']} {sidecar['tensorrt']['version']}"


def check_tensorrt(sidecar: dict[str, Any], backend: TrtBackend | None = None) -> TrtBackend:
    """The installed TensorRT flavour of the sidecar, at exactly the version that built the engine."""
    flavour, version = sidecar["tensorrt"]["flavour"], str(sidecar["tensorrt"]["version"])
    backend = backend or load_backend(prefer=flavour)
    if backend.flavour != flavour or backend.version != version:
        raise CvglError(f"engine built with {flavour} {version}, "
                        f"this is {backend.flavour} {backend.version}: {REBUILD}")
    return backend


def check_gpu(sidecar: dict[str, Any], gpu: GpuInfo) -> None:
    """Full TensorRT: the engine runs on the build GPU's compute capability only (sidecar "gpu").
    TensorRT-RTX: "gpu" is None; an explicit target list ("compute_capabilities", not the
    default set, which also covers later GPUs) must contain this GPU's capability."""
    built = sidecar.get("gpu")
    if isinstance(built, dict) and built.get("compute_capability"):
        wanted = str(built["compute_capability"])
        if wanted != gpu.compute_capability:
            raise CvglError(f"engine was built for compute capability {wanted} ({built.get('name', 'unknown GPU')}), "
                            f"this GPU ({gpu.name}) is {gpu.compute_capability}: {REBUILD} on this machine")
        return
    targets = sidecar.get("compute_capabilities")
    if built is None and isinstance(targets, list) and targets and not sidecar.get("compute_capabilities_default"):
        if all(_is_capability(t) for t in targets) and gpu.compute_capability not in targets:
            raise CvglError(f"engine targets compute capability {', '.join(map(str, targets))}, this GPU "
                            f"({gpu.name}) is {gpu.compute_capability}: {REBUILD} for it")


def _is_capability(value: Any) -> bool:
    major, _, minor = str(value).partition(".")
    return major.isdigit() and minor.isdigit()

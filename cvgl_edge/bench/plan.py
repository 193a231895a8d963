"""What ``cvgl-edge bench`` runs: options parsed and checked, variants, and which are possible here.

A *variant* is one (backend, precision) pair from the comma lists of ``--backend`` and
``--precision``. A variant that cannot run on this machine (TensorRT without a GPU,
fp16 PyTorch on the CPU, PyTorch int8) is not an error: it is skipped with one line saying why,
and the others still run. Everything a user can mistype is checked here, before any
model is loaded or exported.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from cvgl_edge.bench.jetson import is_jetson
from cvgl_edge.errors import CvglError
from cvgl_edge.precisions import ARTIFACT_PRECISIONS
from cvgl_edge.runtime.backends import backend_named, check_backend

DEVICES = ("cpu", "cuda", "jetson")
PRECISIONS = ARTIFACT_PRECISIONS
BRANCHES = ("ground", "satellite", "both")
#: Batch sweeps that finish in minutes: CPUs are slow on batches, GPUs need them to fill.
DEFAULT_BATCH_SIZES = {"cpu": (1, 4), "cuda": (1, 8, 32), "jetson": (1, 8, 32)}


@dataclass(frozen=True)
class Variant:
    """One backend at one precision; benchmarked on every branch and batch size."""

    backend: str
    precision: str

    @property
    def name(self) -> str:
        return f"{self.backend} {self.precision}"


@dataclass
class Environment:
    """What this machine offers (probed once; tests pass their own)."""

    cuda: bool = False
    ort_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    tensorrt: str | None = None  # "tensorrt 10.3.0" / "tensorrt_rtx 1.7.1", None when absent
    notes: list[str] = field(default_factory=list)


def split_list(text: str, option: str) -> list[str]:
    """'a, b,a' -> ['a', 'b'] (order kept, duplicates dropped); CvglError when empty."""
    items = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not items:
        raise CvglError(f"{option} needs at least one value")
    return list(dict.fromkeys(items))


def parse_backends(text: str) -> list[str]:
    return list(dict.fromkeys(check_backend(name) for name in split_list(text, "--backend")))


def parse_precisions(text: str) -> list[str]:
    values = split_list(text, "--precision")
    for value in values:
        if value not in PRECISIONS:
            raise CvglError(f"unknown --precision {value!r}; choose {', '.join(PRECISIONS)}")
    return values


def parse_device(text: str) -> str:
    value = text.strip().lower()
    if value not in DEVICES:
        raise CvglError(f"unknown --device {text!r}; choose {', '.join(DEVICES)}")
    return value


def parse_branch(text: str) -> list[str]:
    value = text.strip().lower()
    if value not in BRANCHES:
        raise CvglError(f"unknown --branch {text!r}; choose {', '.join(BRANCHES)}")
    return ["ground", "satellite"] if value == "both" else [value]


def parse_batch_sizes(text: str | None, device: str) -> list[int]:
    """'1,8,32' -> [1, 8, 32] (sorted, unique); the device default when None."""
    if text is None:
        return list(DEFAULT_BATCH_SIZES[device])
    sizes = []
    for part in split_list(text, "--batch-sizes"):
        try:
            size = int(part)
        except ValueError:
            raise CvglError(f"--batch-sizes expects positive integers such as 1,8,32, got {text!r}") from None
        if size < 1:
            raise CvglError(f"--batch-sizes must be >= 1, got {size}")
        sizes.append(size)
    return sorted(set(sizes))


def variants(backends: list[str], precisions: list[str]) -> list[Variant]:
    """Every backend x precision, backend-major (the first is the reference for ratios)."""
    return [Variant(b, p) for b in backends for p in precisions]


def runtime_device(device: str) -> str:
    """The device the encoders run on: a Jetson's GPU is CUDA."""
    return "cuda" if device in ("cuda", "jetson") else "cpu"


def probe_environment(cuda: bool | None = None) -> Environment:
    """CUDA, ONNX Runtime providers and the TensorRT flavour importable here. ``cuda``: whether a CUDA
    GPU is there when the caller knows (no PyTorch to ask: exported files, doctor), else PyTorch says."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    env = Environment(cuda=cuda)
    try:
        import onnxruntime

        env.ort_providers = tuple(onnxruntime.get_available_providers())
    except ImportError:
        env.ort_providers = ()
    for module in ("tensorrt", "tensorrt_rtx"):
        if importlib.util.find_spec(module) is not None:
            env.tensorrt = f"{module} {package_version(module)}"
            break
    return env


def package_version(module: str) -> str:
    """Installed version without importing the module when the package metadata has it
    (Jetson's apt-installed TensorRT may lack metadata: then import and ask)."""
    import importlib.metadata

    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        try:
            return str(getattr(importlib.import_module(module), "__version__", "unknown"))
        except Exception:  # noqa: BLE001 - a broken install still gets a label
            return "unknown"


def check_device_available(device: str, env: Environment) -> None:
    """A CUDA device was asked for but none is visible: nothing could run (CvglError)."""
    if runtime_device(device) == "cuda" and not env.cuda:
        raise CvglError(f"--device {device}: no CUDA GPU is visible to PyTorch here; use --device cpu")
    if device == "jetson":

        if not is_jetson():
            raise CvglError("--device jetson: this machine is not a Jetson (no L4T release found); use --device cuda")


def skip_reason(variant: Variant, device: str, env: Environment) -> str | None:
    """Why ``variant`` cannot run on ``device`` here, or None when it can (the backend's own rule)."""
    return backend_named(variant.backend).unavailable(variant.precision, runtime_device(device) == "cuda", env)

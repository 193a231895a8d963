"""Our CUDA selective-scan kernel (export/csrc) for PyTorch: built with nvcc on first use, called via its C ABI.

Why ctypes rather than a torch extension: the kernel already has a C ABI
(export/csrc/selective_scan.cuh, mirrored by ``SelectiveScanParams``), and a ctypes binding needs
neither CUDA-enabled torch headers nor a C++ toolchain matching torch's ABI: only nvcc. The
library is compiled the first time a CUDA scan asks for it, never at import, for the
architectures of the visible GPUs (``-O3``, static cudart, one ``-gencode`` per arch), then
checked with a one-element scan. Anything that fails (no nvcc, a compile error, a driver too old
for the toolkit) logs one warning and leaves the backend unavailable, so the dispatcher uses
``chunked``; ``CVGL_DISABLE_NATIVE_CUDA=1`` skips the build. The sources live in the repository
(``export/csrc``, not package data): a wheel install has none and says so.

Build cache: ``$CVGL_EXTENSIONS_DIR`` or ``$TORCH_EXTENSIONS_DIR`` if set, else
``~/.cache/cvgl_edge/torch_extensions`` (as the C++ CPU kernel), one folder per hash of the
.cu and .cuh, the GPU architectures and ``nvcc --version``. Each build runs in a private
folder renamed into place, so concurrent processes never see or mix a half-written library.

Calls: u's dtype (fp32, fp16 or bf16) for u, delta, z, B, C and the output; A, D and delta_bias
in fp32. Views keep their batch and channel strides (the ABI takes them, in elements) when the
time axis is contiguous, else they are copied. The launch is enqueued on torch's current stream
of the tensors' device and not waited for. The forward only: gradients come from ``chunked``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from cvgl_edge import native_tools
from cvgl_edge.ops.build_once import BuildOnce
from cvgl_edge.errors import CvglError, first_line

log = logging.getLogger(__name__)

ABI_VERSION = 1  # CVGL_SCAN_ABI_VERSION
MAX_DSTATE = 16  # CVGL_SCAN_MAX_DSTATE
FP32, FP16, BF16 = 0, 1, 2  # CvglScanDtype
DTYPE_CODES = {torch.float32: FP32, torch.float16: FP16, torch.bfloat16: BF16}
LIBRARY_NAME = "libcvgl_scan.so"
DISABLE_ENV = "CVGL_DISABLE_NATIVE_CUDA"
#: What the library is built from; the cache key hashes both.
SOURCES: tuple[Path, ...] = (native_tools.SCAN_KERNEL_SOURCE, native_tools.SCAN_KERNEL_HEADER)
_INT32_MAX = 2**31 - 1


class SelectiveScanParams(ctypes.Structure):
    """Mirror of the C struct in selective_scan.cuh (same field order and types)."""

    _fields_ = [
        ("abi_version", ctypes.c_int32),
        ("dtype", ctypes.c_int32),
        ("batch", ctypes.c_int32),
        ("dim", ctypes.c_int32),
        ("dstate", ctypes.c_int32),
        ("seqlen", ctypes.c_int32),
        ("direction", ctypes.c_int32),
        ("delta_softplus", ctypes.c_int32),
        ("has_D", ctypes.c_int32),
        ("has_z", ctypes.c_int32),
        ("has_delta_bias", ctypes.c_int32),
        ("param_dtype", ctypes.c_int32),
        ("u", ctypes.c_void_p), ("u_batch_stride", ctypes.c_int64), ("u_dim_stride", ctypes.c_int64),
        ("delta", ctypes.c_void_p), ("delta_batch_stride", ctypes.c_int64), ("delta_dim_stride", ctypes.c_int64),
        ("z", ctypes.c_void_p), ("z_batch_stride", ctypes.c_int64), ("z_dim_stride", ctypes.c_int64),
        ("B", ctypes.c_void_p), ("B_batch_stride", ctypes.c_int64), ("B_dstate_stride", ctypes.c_int64),
        ("C", ctypes.c_void_p), ("C_batch_stride", ctypes.c_int64), ("C_dstate_stride", ctypes.c_int64),
        ("out", ctypes.c_void_p), ("out_batch_stride", ctypes.c_int64), ("out_dim_stride", ctypes.c_int64),
        ("A", ctypes.c_void_p),
        ("D", ctypes.c_void_p),
        ("delta_bias", ctypes.c_void_p),
    ]


# ----------------------------------------------------------------------------- calling the library
def current_cuda_stream(device: torch.device) -> int:
    """The cudaStream_t of torch's current stream on ``device``: the launch is ordered with torch's work."""
    return torch.cuda.current_stream(device).cuda_stream


def _nothing_after(lib: ctypes.CDLL) -> None:
    return None


@dataclass(frozen=True)
class Launcher:
    """How a call reaches the kernel: the stream handle for the tensors' device, and what follows the launch.

    On CUDA: torch's current stream, nothing after (asynchronous, like any torch op). The tests'
    CPU build of the same C ABI (HIP-CPU, host memory) passes stream 0 and waits in ``after``.
    """

    stream: Callable[[torch.device], int] = current_cuda_stream
    after: Callable[[ctypes.CDLL], None] = _nothing_after


def _on_device(device: torch.device) -> contextlib.AbstractContextManager:
    """The launch goes to the current CUDA device: make it the tensors' one (multi-GPU)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _data(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` in the storage dtype; its strides kept when the time (last) axis is contiguous, else copied."""
    t = t.detach().to(dtype)
    return t if t.stride(-1) == 1 or t.size(-1) == 1 else t.contiguous()


def _param(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().to(torch.float32).contiguous()


def _set_tensor(p: SelectiveScanParams, name: str, inner: str, t: torch.Tensor | None) -> None:
    """Pointer and (batch, channel-or-state) strides in elements of one (batch, rows, L) tensor."""
    setattr(p, name, None if t is None else t.data_ptr())
    if t is not None:
        setattr(p, f"{name}_batch_stride", t.stride(0))
        setattr(p, f"{name}_{inner}_stride", t.stride(1))


@dataclass(frozen=True)
class PreparedScan:
    """One scan's parameter block and its output; ``tensors`` (the inputs as the kernel reads them)
    keep alive the memory the block points at."""

    params: SelectiveScanParams
    out: torch.Tensor
    tensors: tuple[torch.Tensor | None, ...]


class NativeScan:
    """The kernel library opened with ctypes: the raw C entry points and a tensor-level forward."""

    def __init__(self, library: str | Path, launcher: Launcher = Launcher()) -> None:
        self.path = Path(library)
        self.launcher = launcher
        self.lib = ctypes.CDLL(str(library))
        params, stream, i32 = ctypes.POINTER(SelectiveScanParams), ctypes.c_void_p, ctypes.c_int
        self.lib.cvgl_selective_scan_forward.argtypes = [params, stream]
        self.lib.cvgl_selective_scan_forward.restype = ctypes.c_int
        self.lib.cvgl_selective_scan_forward_split.argtypes = [params, stream, i32, i32]
        self.lib.cvgl_selective_scan_forward_split.restype = ctypes.c_int
        self.lib.cvgl_selective_scan_choose_split.argtypes = [i32] * 4
        self.lib.cvgl_selective_scan_choose_split.restype = ctypes.c_int
        self.lib.cvgl_selective_scan_error_string.argtypes = [ctypes.c_int]
        self.lib.cvgl_selective_scan_error_string.restype = ctypes.c_char_p

    def forward_raw(self, params: SelectiveScanParams | None, stream: int = 0) -> int:
        """``cvgl_selective_scan_forward`` as is: 0 or an error code."""
        ref = None if params is None else ctypes.byref(params)
        return self.lib.cvgl_selective_scan_forward(ref, ctypes.c_void_p(stream))

    def forward_split_raw(self, params: SelectiveScanParams, stream: int, split: int, steps: int) -> int:
        """``cvgl_selective_scan_forward_split``: the scan at a forced time split (0 = automatic)."""
        return self.lib.cvgl_selective_scan_forward_split(ctypes.byref(params), ctypes.c_void_p(stream), split, steps)

    def choose_split(self, batch: int, dim: int, seqlen: int, sm_count: int) -> int:
        """The split the kernel picks for this shape on a GPU with ``sm_count`` SMs."""
        return int(self.lib.cvgl_selective_scan_choose_split(batch, dim, seqlen, sm_count))

    def error_string(self, code: int) -> str:
        return self.lib.cvgl_selective_scan_error_string(code).decode()

    def forward(
        self,
        u: torch.Tensor,
        delta: torch.Tensor,
        A: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        D: torch.Tensor | None,
        z: torch.Tensor | None,
        delta_bias: torch.Tensor | None,
        delta_softplus: bool,
        reverse: bool,
    ) -> torch.Tensor:
        """Enqueue one scan; returns (B, Dc, L) in u's dtype (written when the stream gets there)."""
        scan = self.prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse)
        with _on_device(scan.out.device):
            rc = self.forward_raw(scan.params, self.launcher.stream(scan.out.device))
        self.launcher.after(self.lib)
        if rc != 0:
            raise CvglError(f"native selective scan failed: {self.error_string(rc)} (code {rc})")
        return scan.out

    def prepare(
        self,
        u: torch.Tensor,
        delta: torch.Tensor,
        A: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        D: torch.Tensor | None,
        z: torch.Tensor | None,
        delta_bias: torch.Tensor | None,
        delta_softplus: bool,
        reverse: bool,
    ) -> PreparedScan:
        """The parameter block of one scan over these tensors and a fresh output (nothing launched)."""
        dtype = u.dtype
        if dtype not in DTYPE_CODES:
            raise CvglError(f"native selective scan: u must be fp32, fp16 or bf16, got {dtype}")
        batch, dim, seqlen = u.shape
        dstate = A.shape[1]
        if not 1 <= dstate <= MAX_DSTATE:
            raise CvglError(f"native selective scan: the state size must be 1..{MAX_DSTATE}, got {dstate}")
        if max(batch, dim, seqlen) > _INT32_MAX:
            raise CvglError(f"native selective scan: shape {tuple(u.shape)} exceeds the kernel's int32 extents")
        u, delta, B, C = (_data(t, dtype) for t in (u, delta, B, C))
        z = None if z is None else _data(z, dtype)
        A, D, delta_bias = _param(A), _param(D), _param(delta_bias)
        out = torch.empty((batch, dim, seqlen), dtype=dtype, device=u.device)

        p = SelectiveScanParams()
        p.abi_version, p.dtype, p.param_dtype = ABI_VERSION, DTYPE_CODES[dtype], FP32
        p.batch, p.dim, p.dstate, p.seqlen = batch, dim, dstate, seqlen
        p.direction, p.delta_softplus = int(reverse), int(delta_softplus)
        p.has_D, p.has_z, p.has_delta_bias = int(D is not None), int(z is not None), int(delta_bias is not None)
        for name, t in (("u", u), ("delta", delta), ("z", z), ("out", out)):
            _set_tensor(p, name, "dim", t)
        for name, t in (("B", B), ("C", C)):
            _set_tensor(p, name, "dstate", t)
        p.A, p.D, p.delta_bias = (None if t is None else t.data_ptr() for t in (A, D, delta_bias))
        return PreparedScan(p, out, (u, delta, B, C, z, A, D, delta_bias))

    def __call__(self, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, reverse=False):
        """Keyword form with selective_scan_reference's defaults (benchmarks, parity tests)."""
        return self.forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse)

    def probe(self, device: torch.device) -> None:
        """One 1-step scan, read back: a driver older than the toolkit or a GPU the build lacks fails here,
        once, rather than inside a model."""
        one = torch.ones(1, 1, 1, device=device)
        got = self.forward(one, one, -one[0], one, one, None, None, None, False, False).item()
        if got != 1.0:  # h = exp(-1) * 0 + 1 * 1 * 1; y = 1 * h
            raise RuntimeError(f"probe scan returned {got}, expected 1.0")


# ----------------------------------------------------------------------------- building it
def gpu_archs() -> tuple[str, ...]:
    """``sm_XY`` of every visible GPU (one library serves them all)."""
    caps = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
    return tuple(f"sm_{major}{minor}" for major, minor in sorted(caps))


def build_library(out_dir: str | Path, archs: Sequence[str] | None = None, nvcc: Path | None = None) -> Path:
    """Compile the kernel into ``out_dir/libcvgl_scan.so`` and return its path.

    ``archs``: e.g. ("sm_90",); default: the visible GPUs', else sm_86 (compile-only checks).
    """
    nvcc = nvcc or native_tools.find_nvcc()
    if nvcc is None:
        raise RuntimeError("nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)")
    if archs is None:
        archs = gpu_archs() if torch.cuda.is_available() else ("sm_86",)
    out = Path(out_dir) / LIBRARY_NAME
    cmd = [str(nvcc), "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", "-cudart", "static"]
    for arch in archs:
        number = arch.removeprefix("sm_")
        cmd += ["-gencode", f"arch=compute_{number},code=sm_{number}"]
    cmd += [str(SOURCES[0]), "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        log.debug("nvcc failed:\n%s", result.stderr)
        lines = [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "no output")
        raise RuntimeError(f"nvcc exited with {result.returncode}: {detail[:300]}")
    return out


def cache_root() -> Path:
    """The build cache shared with the C++ CPU kernel."""
    base = os.environ.get("CVGL_EXTENSIONS_DIR") or os.environ.get("TORCH_EXTENSIONS_DIR")
    return Path(base) if base else Path.home() / ".cache" / "cvgl_edge" / "torch_extensions"


def cache_key(sources: Sequence[Path], archs: Sequence[str], nvcc_version: str) -> str:
    """Hash of what the binary depends on: the source texts, the GPU architectures, the compiler."""
    sha = hashlib.sha256()
    for path in sources:
        sha.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    sha.update(",".join(archs).encode() + b"\0" + nvcc_version.encode())
    return sha.hexdigest()[:16]


@lru_cache(maxsize=None)
def nvcc_version(nvcc: Path) -> str:
    """``nvcc --version``, asked once per process and compiler."""
    return native_tools.nvcc_version_text(nvcc)


def cached_library(nvcc: Path, archs: Sequence[str], root: Path | None = None) -> Path:
    """The built library for these sources, architectures and nvcc: from the cache, else built now.

    Each build runs in its own temporary folder beside the final one and is renamed into place;
    renaming onto a folder another process finished first fails, and that one is kept.
    """
    root = root or cache_root()
    final = root / f"cvgl_scan_cuda-{cache_key(SOURCES, archs, nvcc_version(nvcc))}"
    library = final / LIBRARY_NAME
    if library.is_file():
        return library
    root.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=".cvgl_scan_cuda-build-", dir=root))
    try:
        build_library(private, archs, nvcc)
        try:
            os.rename(private, final)
        except OSError:
            if not library.is_file():  # not a lost race: a real error
                raise
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return library


# ----------------------------------------------------------------------------- the backend's state
def unavailable_reason() -> str | None:
    """Why the backend cannot run here before any build is tried (cheap checks), or None."""
    if os.environ.get(DISABLE_ENV) == "1":
        return f"disabled by {DISABLE_ENV}=1"
    if not torch.cuda.is_available():
        return "no CUDA device"
    missing = next((path for path in SOURCES if not path.is_file()), None)
    if missing is not None:
        return (f"kernel source {missing} not found (cvgl-edge installed from a wheel? "
                "clone the repository and `pip install -e .` in it)")
    if native_tools.find_nvcc() is None:
        return "nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)"
    return None


@contextlib.contextmanager
def _step(what: str) -> Iterator[None]:
    """Re-raise any failure as one line that names the step (build or load)."""
    try:
        yield
    except Exception as exc:
        raise RuntimeError(f"{what} failed: {first_line(exc)[:300]}") from exc


def _load() -> NativeScan:
    """Build (or take from the cache) and open the kernel for the visible GPUs, then probe one launch."""
    nvcc = native_tools.find_nvcc()
    assert nvcc is not None, "checked by unavailable_reason()"
    with _step("build"):
        path = cached_library(nvcc, gpu_archs())
    with _step("load"):
        scan = NativeScan(path)
        scan.probe(torch.device("cuda", torch.cuda.current_device()))
    return scan


#: The kernel of this process: built and probed on the first CUDA scan (``LIBRARY.seconds``: how long).
LIBRARY: BuildOnce[NativeScan] = BuildOnce(
    build=_load, unavailable=unavailable_reason, describe=first_line,
    warning="cvgl_edge: native CUDA selective-scan kernel unavailable (%s); "
            "CUDA scans fall back to the chunked PyTorch scan.",
)


def library() -> NativeScan | None:
    """The loaded kernel, building it on the first call; None when it cannot run here."""
    return LIBRARY.get()


def is_available() -> bool:
    """True when the kernel is (or can be) built and runs on this GPU. Builds on the first call."""
    return library() is not None


def failure_reason() -> str | None:
    """Why the backend is unavailable, or None."""
    return LIBRARY.failure


def forward(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
    reverse: bool,
) -> torch.Tensor:
    """Scan with the native kernel; returns (B, Dc, L) in u's dtype."""
    scan = library()
    assert scan is not None, "native_cuda.forward called without a loaded kernel"
    return scan.forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse)

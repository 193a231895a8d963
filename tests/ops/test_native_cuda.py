"""The ``native`` scan backend (cvgl_edge.ops.native_cuda): its binding end to end, its build, its cache.

No GPU here. The binding runs against the very kernel source built for the CPU under HIP-CPU
(tests/support/native_build.py): that library has the same C ABI, reads host memory and is waited
for with its ``cvgl_emulation_synchronize`` instead of a stream, so the package's forward runs on
CPU tensors through it (skipped with the reason without HIP-CPU). The availability rules, the
build and its cache run with stand-ins for the GPU and for nvcc, plus the real nvcc where one is
installed (compiling needs no GPU). The choice between backends is in test_backends.py.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cvgl_edge import native_tools
from cvgl_edge.errors import CvglError
from cvgl_edge.ops import backends, cuda_mamba, native_cuda, selective_scan, selective_scan_reference
from cvgl_edge.ops.testing import random_scan_inputs
from tests.support import native_build
from tests.support.paths import REPO_ROOT

HIP_CPU_MISSING = native_build.hip_cpu_missing_reason()
REAL_NVCC = native_tools.find_nvcc()
needs_nvcc = pytest.mark.skipif(REAL_NVCC is None, reason="nvcc not found (PATH, $CUDA_HOME, /usr/local/cuda)")
ARGS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
#: Unit roundoff of each storage dtype (the output's rounding), as tests/support/scan_float64.py.
ROUNDOFF = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}


@pytest.fixture(autouse=True)
def _automatic_choice(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    monkeypatch.setattr(backends, "_override", None)
    monkeypatch.setattr(backends, "_warned", set())


# ----------------------------------------------------------------------------- the CPU-built kernel
def _wait_for_emulation(lib: ctypes.CDLL) -> None:
    lib.cvgl_emulation_synchronize.restype = ctypes.c_int
    assert lib.cvgl_emulation_synchronize() == 0


@pytest.fixture(scope="module")
def emulated(tmp_path_factory) -> native_cuda.NativeScan:
    """The kernel's C ABI built for the CPU: stream 0, and a wait after each launch."""
    if HIP_CPU_MISSING is not None:
        pytest.skip(HIP_CPU_MISSING)
    shared = tmp_path_factory.getbasetemp().parent  # one build for every xdist worker
    library = native_build.cached_cpu_kernel(shared / "cvgl-native-cache")
    return native_cuda.NativeScan(library, native_cuda.Launcher(stream=lambda device: 0, after=_wait_for_emulation))


@pytest.fixture
def installed(emulated, monkeypatch) -> native_cuda.NativeScan:
    """The emulated library as the backend's loaded kernel."""
    state = replace(native_cuda.LIBRARY)
    state.value = emulated
    monkeypatch.setattr(native_cuda, "LIBRARY", state)
    return emulated


def _spy_params(monkeypatch, scan: native_cuda.NativeScan) -> list[dict]:
    """Record every SelectiveScanParams the binding hands to the library (field -> value)."""
    seen: list[dict] = []
    real = scan.forward_raw

    def spy(params, stream=0):
        seen.append({name: getattr(params, name) for name, _ in native_cuda.SelectiveScanParams._fields_})
        return real(params, stream)

    monkeypatch.setattr(scan, "forward_raw", spy)
    return seen


def _inputs(shape, dtype, flags: str, seed: int) -> dict:
    """Mamba-like inputs; flags: s(oftplus) D z b(ias). Without softplus the steps (delta + bias) are made
    positive, as in a real model: a negative step grows the state without bound."""
    batch, channels, nstate, length = shape
    kw = random_scan_inputs(batch, channels, length, nstate, with_D="D" in flags, with_z="z" in flags,
                            with_bias="b" in flags, dtype=dtype, seed=seed)
    if "s" not in flags:
        kw["delta"] = kw["delta"].float().abs().mul(0.3).to(dtype)
        if kw["delta_bias"] is not None:
            kw["delta_bias"] = kw["delta_bias"].abs().mul(0.1)
    return kw


def _reference(kw: dict, softplus: bool, reverse: bool) -> torch.Tensor:
    """selective_scan_reference in float64 of the very values the kernel reads."""
    double = {k: None if v is None else v.double() for k, v in kw.items()}
    return selective_scan_reference(**double, delta_softplus=softplus, reverse=reverse)


def _assert_matches(got: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> None:
    """The output's rounding plus an fp32-arithmetic allowance (64 ulps of the largest |output|)."""
    scale = ref.abs().max().item()
    torch.testing.assert_close(got.double(), ref, rtol=ROUNDOFF[dtype], atol=64 * 2.0**-24 * scale)


DTYPES = [torch.float32, torch.float16, torch.bfloat16]
FLAGS = ["sDzb", "", "Db", "sz"]
#: (batch, channels, nstate, length): N below 16 (1, 5, 8), L off the kernel's chunk, Dc off its block
SHAPES = [(2, 13, 16, 70), (1, 9, 5, 33), (3, 20, 8, 65), (2, 8, 1, 17)]
MATRIX = [(dtype, reverse, flags, SHAPES[i % len(SHAPES)])
          for i, (dtype, reverse, flags) in enumerate((d, r, f) for d in DTYPES for r in (False, True) for f in FLAGS)]


@pytest.mark.parametrize("dtype,reverse,flags,shape", MATRIX,
                         ids=[f"{str(d)[6:]}-{'rev' if r else 'fwd'}-{f or 'none'}-n{s[2]}" for d, r, f, s in MATRIX])
def test_the_backends_forward_matches_the_reference(installed, dtype, reverse, flags, shape):
    kw = _inputs(shape, dtype, flags, seed=sum(shape))
    got = backends.forward_impl("native")(*(kw[k] for k in ARGS), "s" in flags, reverse)
    assert got.dtype == dtype and got.shape == kw["u"].shape
    _assert_matches(got, _reference(kw, "s" in flags, reverse), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d)[6:])
@pytest.mark.parametrize("reverse", [False, True])
def test_channel_sliced_views_go_to_the_kernel_with_their_own_strides(installed, monkeypatch, dtype, reverse):
    batch, channels, nstate, length, pad = 2, 10, 7, 45, 3
    wide = random_scan_inputs(batch, channels + 2 * pad, length, nstate + pad, dtype=dtype, seed=5)
    rows = slice(pad, pad + channels)
    kw = {"u": wide["u"][:, rows], "delta": wide["delta"][:, rows], "z": wide["z"][:, rows],
          "B": wide["B"][:, :nstate], "C": wide["C"][:, :nstate], "A": wide["A"][rows, :nstate],
          "D": wide["D"][rows], "delta_bias": wide["delta_bias"][rows]}
    assert not kw["u"].is_contiguous() and not kw["B"].is_contiguous()
    seen = _spy_params(monkeypatch, installed)
    got = native_cuda.forward(*(kw[k] for k in ARGS), True, reverse)
    (p,) = seen
    for name in ("u", "delta", "z"):  # no copy: the view's own pointer and strides
        assert p[name] == kw[name].data_ptr()
        assert (p[f"{name}_batch_stride"], p[f"{name}_dim_stride"]) == ((channels + 2 * pad) * length, length)
    for name in ("B", "C"):
        assert p[name] == kw[name].data_ptr()
        assert (p[f"{name}_batch_stride"], p[f"{name}_dstate_stride"]) == ((nstate + pad) * length, length)
    assert (p["out_batch_stride"], p["out_dim_stride"]) == (channels * length, length)
    _assert_matches(got, _reference(kw, True, reverse), dtype)


def test_a_view_whose_time_axis_is_strided_is_copied(installed, monkeypatch):
    batch, channels, nstate, length = 2, 6, 4, 19
    kw = random_scan_inputs(batch, channels, length, nstate, seed=9)
    u = kw["u"].transpose(1, 2).contiguous().transpose(1, 2)  # same values, time axis stride = channels
    assert u.stride(-1) == channels
    seen = _spy_params(monkeypatch, installed)
    got = native_cuda.forward(u, *(kw[k] for k in ARGS[1:]), True, False)
    assert seen[0]["u"] != u.data_ptr()
    assert (seen[0]["u_batch_stride"], seen[0]["u_dim_stride"]) == (channels * length, length)
    _assert_matches(got, _reference(kw, True, False), torch.float32)


def test_data_takes_us_dtype_and_parameters_go_as_fp32(installed, monkeypatch):
    kw = random_scan_inputs(2, 9, 40, 16, dtype=torch.float16, seed=2)
    mixed = dict(kw, delta=kw["delta"].float() + 1e-3, B=kw["B"].float(), A=kw["A"].half(), D=kw["D"].bfloat16(),
                 delta_bias=kw["delta_bias"].double())
    seen = _spy_params(monkeypatch, installed)
    got = native_cuda.forward(*(mixed[k] for k in ARGS), True, False)
    assert got.dtype == torch.float16
    assert (seen[0]["dtype"], seen[0]["param_dtype"]) == (native_cuda.FP16, native_cuda.FP32)
    rounded = {k: None if v is None else (v.to(torch.float16) if k in ("u", "delta", "B", "C", "z") else v.float())
               for k, v in mixed.items()}
    _assert_matches(got, _reference(rounded, True, False), torch.float16)


def test_the_op_runs_the_native_forward_and_the_chunked_backward(installed, monkeypatch):
    monkeypatch.setattr(backends, "resolve", lambda device, dtype=torch.float32: "native")
    backward_calls = []
    real_backward = backends._BACKWARD["native"]
    monkeypatch.setitem(backends._BACKWARD, "native", lambda *a: backward_calls.append(1) or real_backward(*a))
    seen = _spy_params(monkeypatch, installed)
    kw = random_scan_inputs(2, 8, 30, 16, seed=4, requires_grad=True)
    out = selective_scan(**kw, delta_softplus=True, reverse=True)
    assert len(seen) == 1
    _assert_matches(out.detach(), _reference({k: v.detach() for k, v in kw.items()}, True, True), torch.float32)
    out.sum().backward()
    assert backward_calls == [1]
    expected = torch.autograd.grad(selective_scan_reference(**kw, delta_softplus=True, reverse=True).sum(),
                                   [kw[k] for k in ARGS])
    for name, want in zip(ARGS, expected):
        torch.testing.assert_close(kw[name].grad, want, rtol=1e-4, atol=1e-4, msg=name)


def test_more_than_16_states_run_chunked_instead(installed, monkeypatch):
    seen = _spy_params(monkeypatch, installed)
    kw = random_scan_inputs(1, 4, 12, 17, seed=1)
    got = backends.forward_impl("native")(*(kw[k] for k in ARGS), True, False)
    assert seen == []
    _assert_matches(got, _reference(kw, True, False), torch.float32)
    with pytest.raises(CvglError, match="state size must be 1..16"):
        native_cuda.forward(*(kw[k] for k in ARGS), True, False)


def test_an_error_code_from_the_kernel_is_one_line(installed, monkeypatch):
    monkeypatch.setattr(native_cuda, "ABI_VERSION", native_cuda.ABI_VERSION + 1)  # the kernel refuses it
    kw = random_scan_inputs(1, 4, 5, 16, seed=0)
    with pytest.raises(CvglError) as error:
        native_cuda.forward(*(kw[k] for k in ARGS), True, False)
    assert str(error.value).startswith("native selective scan failed: ") and "(code -2)" in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(CvglError, match="fp32, fp16 or bf16"):
        native_cuda.forward(*(v.double() if v is not None else None for v in (kw[k] for k in ARGS)), True, False)


def test_the_probe_scan_passes_on_a_working_library(installed):
    installed.probe(torch.device("cpu"))


# ----------------------------------------------------------------------------- availability
@pytest.fixture
def fresh(monkeypatch, tmp_path) -> Path:
    """Nothing built or refused yet in this process; the build cache (returned) under tmp_path."""
    monkeypatch.setattr(native_cuda, "LIBRARY", replace(native_cuda.LIBRARY))
    monkeypatch.setattr(native_cuda, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.delenv(native_cuda.DISABLE_ENV, raising=False)
    monkeypatch.setattr(cuda_mamba, "scan_fn", lambda: None)
    return tmp_path / "cache"


@pytest.fixture
def gpu_machine(fresh, monkeypatch) -> Path:
    """A stand-in GPU machine with nvcc: every cheap check passes; builds are stubbed per test."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(native_tools, "find_nvcc", lambda: Path("/opt/fake-cuda/bin/nvcc"))
    monkeypatch.setattr(native_cuda, "gpu_archs", lambda: ("sm_90",))
    monkeypatch.setattr(native_cuda, "nvcc_version", lambda nvcc: "Cuda compilation tools, release 12.6")
    return fresh


def _native_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "native CUDA selective-scan" in r.getMessage()]


def test_the_first_cuda_scan_builds_once_then_native_serves(gpu_machine, monkeypatch):
    loads = []
    stand_in = object()
    monkeypatch.setattr(native_cuda.LIBRARY, "build", lambda: loads.append(1) or stand_in)
    assert backends.resolve("cuda") == "native"
    assert backends.resolve("cuda", torch.bfloat16) == "native"
    assert native_cuda.library() is stand_in and loads == [1]


def test_the_environment_switch_disables_it_before_any_build(gpu_machine, monkeypatch, caplog):
    monkeypatch.setenv(native_cuda.DISABLE_ENV, "1")
    monkeypatch.setattr(native_cuda.LIBRARY, "build", lambda: pytest.fail("built although disabled"))
    with caplog.at_level(logging.WARNING):
        assert not native_cuda.is_available()
        assert backends.resolve("cuda") == "chunked"
    assert native_cuda.failure_reason() == "disabled by CVGL_DISABLE_NATIVE_CUDA=1"
    assert backends.backend_status()["native"] == "unavailable: disabled by CVGL_DISABLE_NATIVE_CUDA=1"
    assert _native_warnings(caplog) == []


@pytest.mark.parametrize("case", ["no GPU", "no sources", "no nvcc"])
def test_what_is_missing_is_named_and_nothing_is_built(gpu_machine, monkeypatch, tmp_path, caplog, case):
    if case == "no GPU":
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        expected = ("no CUDA device",)
    elif case == "no sources":
        monkeypatch.setattr(native_cuda, "SOURCES", (tmp_path / "wheel" / "selective_scan_kernel.cu",))
        expected = ("selective_scan_kernel.cu not found", "wheel")
    else:
        monkeypatch.setattr(native_tools, "find_nvcc", lambda: None)
        expected = ("nvcc not found",)
    monkeypatch.setattr(native_cuda.LIBRARY, "build", lambda: pytest.fail("tried to build"))
    with caplog.at_level(logging.WARNING):
        assert not native_cuda.is_available()
        assert "native" not in backends.available_backends()
    reason = native_cuda.failure_reason()
    assert all(part in reason for part in expected), reason
    assert backends.backend_status()["native"] == f"unavailable: {reason}"
    assert _native_warnings(caplog) == []


def test_a_failed_build_warns_once_and_cuda_scans_use_chunked(gpu_machine, monkeypatch, caplog):
    builds = []

    def broken(out_dir, archs, nvcc):
        builds.append(tuple(archs))
        raise RuntimeError("nvcc exited with 2: kernel.cu(3): error: boom\nmore lines")

    monkeypatch.setattr(native_cuda, "build_library", broken)
    with caplog.at_level(logging.WARNING):
        assert backends.resolve("cuda") == "chunked"
        assert backends.resolve("cuda") == "chunked"
        assert "native" not in backends.available_backends()
        status = backends.backend_status()["native"]
    assert builds == [("sm_90",)]
    assert native_cuda.failure_reason() == "build failed: nvcc exited with 2: kernel.cu(3): error: boom"
    assert status == f"unavailable: {native_cuda.failure_reason()}"
    (warning,) = _native_warnings(caplog)
    assert "boom" in warning and "chunked" in warning
    assert list(gpu_machine.iterdir()) == []  # the failed build's private folder is gone


def test_a_library_that_does_not_load_is_unavailable(gpu_machine, monkeypatch, tmp_path, caplog):
    bogus = tmp_path / native_cuda.LIBRARY_NAME
    bogus.write_text("not a shared library")
    monkeypatch.setattr(native_cuda, "cached_library", lambda nvcc, archs: bogus)
    with caplog.at_level(logging.WARNING):
        assert not native_cuda.is_available()
    assert native_cuda.failure_reason().startswith("load failed: ")
    assert len(_native_warnings(caplog)) == 1


@needs_nvcc
def test_a_kernel_that_does_not_compile_is_reported_from_nvcc(gpu_machine, monkeypatch, tmp_path, caplog):
    broken = tmp_path / "selective_scan_kernel.cu"
    broken.write_text('#include "selective_scan.cuh"\nint cvgl_broken( {\n')
    shutil.copy(native_tools.SCAN_KERNEL_HEADER, tmp_path / native_tools.SCAN_KERNEL_HEADER.name)
    monkeypatch.setattr(native_cuda, "SOURCES", (broken, tmp_path / native_tools.SCAN_KERNEL_HEADER.name))
    monkeypatch.setattr(native_tools, "find_nvcc", lambda: REAL_NVCC)
    with caplog.at_level(logging.WARNING):
        assert backends.resolve("cuda") == "chunked"
    reason = native_cuda.failure_reason()
    assert reason.startswith("build failed: nvcc exited with ") and "error" in reason and "\n" not in reason
    assert len(_native_warnings(caplog)) == 1


def test_importing_the_package_builds_nothing(tmp_path):
    """Nothing is compiled, probed or cached at import (a fresh interpreter, an empty build cache)."""
    script = textwrap.dedent("""
        import cvgl_edge.ops
        from cvgl_edge.ops import native_cuda
        assert native_cuda.LIBRARY.value is None and native_cuda.LIBRARY.failure is None, "built or probed at import"
        print("OK")
    """)
    env = dict(os.environ, CVGL_EXTENSIONS_DIR=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "OK", result.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- the build cache
def test_the_sources_are_the_repositorys_kernel_and_header():
    assert native_cuda.SOURCES == (REPO_ROOT / "export" / "csrc" / "selective_scan_kernel.cu",
                                   REPO_ROOT / "export" / "csrc" / "selective_scan.cuh")
    assert all(path.is_file() for path in native_cuda.SOURCES)


def test_the_cache_key_follows_the_sources_the_arch_and_nvcc(tmp_path):
    cu, cuh = tmp_path / "kernel.cu", tmp_path / "kernel.cuh"
    cu.write_text("kernel v1")
    cuh.write_text("abi v1")
    key = native_cuda.cache_key((cu, cuh), ("sm_90",), "release 12.6, V12.6.85")
    assert native_cuda.cache_key((cu, cuh), ("sm_90",), "release 12.6, V12.6.85") == key
    cu.write_text("kernel v2")
    assert native_cuda.cache_key((cu, cuh), ("sm_90",), "release 12.6, V12.6.85") != key
    cu.write_text("kernel v1")
    cuh.write_text("abi v2")
    assert native_cuda.cache_key((cu, cuh), ("sm_90",), "release 12.6, V12.6.85") != key
    cuh.write_text("abi v1")
    assert native_cuda.cache_key((cu, cuh), ("sm_87",), "release 12.6, V12.6.85") != key
    assert native_cuda.cache_key((cu, cuh), ("sm_87", "sm_90"), "release 12.6, V12.6.85") != key
    assert native_cuda.cache_key((cu, cuh), ("sm_90",), "release 12.8, V12.8.61") != key


def _fake_builds(monkeypatch, content: str = "library") -> list[Path]:
    """build_library stand-in that writes a file; returns the folders it built in."""
    folders: list[Path] = []

    def build(out_dir, archs, nvcc):
        folders.append(Path(out_dir))
        (Path(out_dir) / native_cuda.LIBRARY_NAME).write_text(f"{content} {','.join(archs)}")

    monkeypatch.setattr(native_cuda, "build_library", build)
    return folders


def test_each_arch_and_nvcc_gets_its_own_build_and_a_second_call_reuses_it(monkeypatch, tmp_path):
    versions = {"old": "release 12.6", "new": "release 12.8"}
    monkeypatch.setattr(native_cuda, "nvcc_version", lambda nvcc: versions[nvcc.name])
    folders = _fake_builds(monkeypatch)
    first = native_cuda.cached_library(Path("old"), ("sm_90",), tmp_path)
    assert native_cuda.cached_library(Path("old"), ("sm_90",), tmp_path) == first and len(folders) == 1
    other_arch = native_cuda.cached_library(Path("old"), ("sm_87",), tmp_path)
    other_nvcc = native_cuda.cached_library(Path("new"), ("sm_90",), tmp_path)
    assert len({first.parent, other_arch.parent, other_nvcc.parent}) == 3 and len(folders) == 3
    assert first.read_text() == "library sm_90" and other_arch.read_text() == "library sm_87"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.parent.name for p in (first, other_arch, other_nvcc))


def test_a_builder_that_loses_the_race_keeps_the_winners_library(monkeypatch, tmp_path):
    """Builder A is still compiling when builder B (another process) starts, finishes and publishes."""
    monkeypatch.setattr(native_cuda, "nvcc_version", lambda nvcc: "release 12.6")
    folders: list[Path] = []

    def build(out_dir, archs, nvcc):
        folders.append(Path(out_dir))
        if len(folders) == 1:  # A, mid-build: B runs to completion
            native_cuda.cached_library(nvcc, archs, tmp_path)
        (Path(out_dir) / native_cuda.LIBRARY_NAME).write_text(f"built in {Path(out_dir).name}")

    monkeypatch.setattr(native_cuda, "build_library", build)
    got = native_cuda.cached_library(Path("nvcc"), ("sm_90",), tmp_path)
    a, b = folders
    assert a != b and a.parent == b.parent == tmp_path  # private folders beside the final one
    assert got.read_text() == f"built in {b.name}"  # B's library, whole
    assert [p.name for p in tmp_path.iterdir()] == [got.parent.name]  # A's private folder removed
    assert list(got.parent.iterdir()) == [got]


def test_two_concurrent_builders_publish_one_complete_library(monkeypatch, tmp_path):
    monkeypatch.setattr(native_cuda, "nvcc_version", lambda nvcc: "release 12.6")
    both_writing = threading.Barrier(2)

    def build(out_dir, archs, nvcc):
        with (Path(out_dir) / native_cuda.LIBRARY_NAME).open("w") as handle:
            handle.write(threading.current_thread().name * 500)
            handle.flush()
            both_writing.wait(timeout=30)  # each is half-way through its own file
            handle.write(threading.current_thread().name * 500)

    monkeypatch.setattr(native_cuda, "build_library", build)
    results: dict[str, Path] = {}
    errors: list[BaseException] = []

    def builder() -> None:
        try:
            results[threading.current_thread().name] = native_cuda.cached_library(Path("nvcc"), ("sm_90",), tmp_path)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=builder, name=name) for name in "AB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and results["A"] == results["B"]
    text = results["A"].read_text()
    assert text in ("A" * 1000, "B" * 1000)  # one builder's complete file, never a mix
    assert [p.name for p in tmp_path.iterdir()] == [results["A"].parent.name]


@needs_nvcc
def test_real_nvcc_builds_into_the_cache_once_and_the_library_speaks_the_abi(monkeypatch, tmp_path):
    builds = []
    real_build = native_cuda.build_library
    monkeypatch.setattr(native_cuda, "build_library", lambda *a: builds.append(1) or real_build(*a))
    library = native_cuda.cached_library(REAL_NVCC, ("sm_86",), tmp_path)
    assert native_cuda.cached_library(REAL_NVCC, ("sm_86",), tmp_path) == library and builds == [1]
    assert library.name == native_cuda.LIBRARY_NAME and [p.name for p in tmp_path.iterdir()] == [library.parent.name]
    scan = native_cuda.NativeScan(library)  # loads without a GPU; argument checks come before any CUDA call
    assert scan.forward_raw(None) == -1
    p = native_cuda.SelectiveScanParams()
    p.abi_version, p.batch, p.dim, p.dstate, p.seqlen = native_cuda.ABI_VERSION, 1, 8, 17, 4
    assert scan.forward_raw(p) == -2 and "dstate" in scan.error_string(-2)


def test_the_cache_is_the_users_extension_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("CVGL_EXTENSIONS_DIR", raising=False)
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    assert native_cuda.cache_root() == Path.home() / ".cache" / "cvgl_edge" / "torch_extensions"
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "torch"))
    assert native_cuda.cache_root() == tmp_path / "torch"
    monkeypatch.setenv("CVGL_EXTENSIONS_DIR", str(tmp_path / "cvgl"))
    assert native_cuda.cache_root() == tmp_path / "cvgl"

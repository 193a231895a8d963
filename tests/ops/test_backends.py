"""Backend choice: automatic default, env var, use_backend(), fallbacks, lazy build.

The CUDA order (mamba_ssm's ``cuda`` > our ``native`` kernel > ``chunked``) is checked with
stand-ins for mamba_ssm and for the built kernel, so no GPU is needed; the kernel's binding,
build and cache are in test_native_cuda.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.ops import (
    active_backend,
    available_backends,
    backend_status,
    selective_scan,
    use_backend,
)
from cvgl_edge.ops import backends, chunked, cpu_kernel, cuda_mamba, native_cuda
from cvgl_edge.ops.testing import random_scan_inputs
from tests.support.paths import REPO_ROOT


@pytest.fixture(autouse=True)
def _clean_choice(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    previous = backends._override
    backends._override = None
    yield
    backends._override = previous


def _spy(monkeypatch, table: dict, name: str) -> list[int]:
    calls: list[int] = []
    real = table[name]

    def wrapper(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setitem(table, name, wrapper)
    return calls


def test_default_on_cpu_is_cpp_when_it_builds_else_chunked():
    expected = "cpp" if cpu_kernel.is_available() else "chunked"
    assert active_backend("cpu") == expected
    assert active_backend(torch.device("cpu")) == expected


def test_available_backends_lists_what_runs_here():
    names = available_backends()
    assert names[:2] == ["reference", "chunked"]
    assert ("cpp" in names) == cpu_kernel.is_available()
    assert set(backend_status()) == {"reference", "chunked", "cpp", "cuda", "native"}


def test_env_var_selects_backend(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "chunked")
    assert active_backend("cpu") == "chunked"
    calls = _spy(monkeypatch, backends._FORWARD, "chunked")
    selective_scan(**random_scan_inputs(1, 4, 5, 16))
    assert calls == [1]


def test_env_var_rejects_unknown_name(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "fastest")
    with pytest.raises(CvglError, match="unknown scan backend"):
        active_backend("cpu")


def test_use_backend_as_context_and_as_call():
    with use_backend("reference"):
        assert active_backend("cpu") == "reference"
        with use_backend("chunked"):
            assert active_backend("cpu") == "chunked"
        assert active_backend("cpu") == "reference"
    use_backend("chunked")
    assert active_backend("cpu") == "chunked"
    use_backend(None)
    assert active_backend("cpu") != "reference"
    with pytest.raises(CvglError):
        use_backend("gpu")


def test_use_backend_beats_env_var(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "chunked")
    with use_backend("reference"):
        assert active_backend("cpu") == "reference"


def test_unservable_request_falls_back_with_one_warning(caplog, monkeypatch):
    monkeypatch.setattr(backends, "_warned", set())
    with caplog.at_level(logging.WARNING), use_backend("cuda"):
        first = active_backend("cpu")
        second = active_backend("cpu")
    assert first == second == ("cpp" if cpu_kernel.is_available() else "chunked")
    assert sum("cannot run cpu tensors" in r.message for r in caplog.records) == 1


def test_backward_runs_on_the_forward_backend(monkeypatch):
    if not cpu_kernel.is_available():
        pytest.skip(f"C++ kernel unavailable: {cpu_kernel.failure_reason()}")
    calls = _spy(monkeypatch, backends._BACKWARD, "cpp")
    x = random_scan_inputs(1, 4, 5, 16, requires_grad=True)
    with use_backend("cpp"):
        out = selective_scan(**x)
    with use_backend("chunked"):
        out.sum().backward()
    assert calls == [1]


def test_build_failure_falls_back_to_chunked(monkeypatch, caplog):
    def broken_build():
        raise RuntimeError("no compiler")

    monkeypatch.setattr(cpu_kernel, "LIBRARY", replace(cpu_kernel.LIBRARY, build=broken_build))  # nothing built yet
    with caplog.at_level(logging.WARNING):
        assert active_backend("cpu") == "chunked"
        assert "cpp" not in available_backends()
        out = selective_scan(**random_scan_inputs(1, 4, 5, 16))
    assert torch.isfinite(out).all()
    assert "no compiler" in cpu_kernel.failure_reason()
    assert sum("could not be built" in r.message for r in caplog.records) == 1


def test_no_build_at_import_and_no_crash_without_compiler(tmp_path):
    """Fresh interpreter, empty build cache, a compiler that does not exist."""
    script = textwrap.dedent(
        """
        import cvgl_edge.ops as ops
        from cvgl_edge.ops import cpu_kernel
        assert cpu_kernel.LIBRARY.value is None and cpu_kernel.LIBRARY.failure is None, "built at import"
        from cvgl_edge.ops.testing import random_scan_inputs
        out = ops.selective_scan(**random_scan_inputs(1, 4, 5, 16))
        assert ops.active_backend("cpu") == "chunked", ops.active_backend("cpu")
        print("OK", cpu_kernel.failure_reason())
        """
    )
    repo = str(REPO_ROOT)
    env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"), CVGL_EXTENSIONS_DIR=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    env.pop(backends.ENV_VAR, None)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("OK")
    assert "could not be built" in result.stderr


# ----------------------------------------------------------------------------- CUDA: mamba_ssm > native > chunked
@pytest.fixture
def native_state(monkeypatch):
    """Set whether the native CUDA kernel counts as built (stand-in) or refused, without a GPU."""

    def set_state(available: bool, reason: str = "nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)"):
        stand_in = SimpleNamespace(path=Path("/cache/cvgl_scan_cuda-0123/libcvgl_scan.so"))
        state = replace(native_cuda.LIBRARY)  # nothing built or refused yet
        state.value, state.failure = (stand_in, None) if available else (None, reason)
        monkeypatch.setattr(native_cuda, "LIBRARY", state)

    monkeypatch.setattr(backends, "_warned", set())
    return set_state


def _mamba(monkeypatch, present: bool) -> None:
    monkeypatch.setattr(cuda_mamba, "scan_fn", (lambda: (lambda *a: None)) if present else (lambda: None))


def test_cuda_without_mamba_ssm_uses_the_native_kernel(monkeypatch, native_state):
    _mamba(monkeypatch, False)
    native_state(True)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        assert backends.resolve("cuda", dtype) == "native"
    assert backends.resolve(torch.device("cuda", 1)) == "native"
    assert backends.resolve("cuda", torch.float64) == "chunked"  # the kernels store fp32/fp16/bf16 only
    assert backends.resolve("cpu") != "native"
    assert "native" in available_backends()
    assert backend_status()["native"].startswith("available")


def test_mamba_ssm_comes_before_the_native_kernel(monkeypatch, native_state):
    _mamba(monkeypatch, True)
    native_state(True)
    assert backends.resolve("cuda") == "cuda"
    with use_backend("native"):
        assert backends.resolve("cuda") == "native"


def test_without_the_native_kernel_cuda_falls_back_to_chunked(monkeypatch, native_state, caplog):
    _mamba(monkeypatch, False)
    native_state(False)
    assert backends.resolve("cuda") == "chunked"
    assert "native" not in available_backends()
    assert backend_status()["native"] == "unavailable: nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)"
    with caplog.at_level(logging.WARNING), use_backend("native"):
        assert backends.resolve("cuda") == "chunked"
        assert backends.resolve("cuda") == "chunked"
    assert sum("'native' cannot run cuda tensors" in r.message for r in caplog.records) == 1


def test_native_is_never_asked_for_cpu_tensors(monkeypatch, native_state):
    native_state(True)
    monkeypatch.setattr(native_cuda, "is_available", lambda: pytest.fail("CPU tensors asked the CUDA kernel"))
    with use_backend("native"):
        assert backends.resolve("cpu") == ("cpp" if cpu_kernel.is_available() else "chunked")


def test_native_forward_takes_up_to_16_states_and_its_backward_is_chunked(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(native_cuda, "forward", lambda *a: calls.append("native") or a[0])
    monkeypatch.setattr(chunked, "forward", lambda *a: calls.append("chunked") or a[0])
    forward = backends.forward_impl("native")
    for nstate in (1, 16, 17):
        x = random_scan_inputs(1, 4, 5, nstate)
        forward(*x.values(), True, False)
    assert calls == ["native", "native", "chunked"]
    assert backends.backward_impl("native") is chunked.backward

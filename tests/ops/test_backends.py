"""Backend choice: automatic default, env var, use_backend(), fallbacks, lazy build."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

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
from cvgl_edge.ops import backends, cpu_kernel
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
    assert set(backend_status()) == {"reference", "chunked", "cpp", "cuda"}


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

    monkeypatch.setattr(cpu_kernel, "_lib", None)
    monkeypatch.setattr(cpu_kernel, "_failed", None)
    monkeypatch.setattr(cpu_kernel, "_build", broken_build)
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
        assert cpu_kernel._lib is None and cpu_kernel._failed is None, "built at import"
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

"""`cvgl-edge plugin build | list`, the plugin cache, and export taking the cached plugin by default.

The real build runs CMake and nvcc against the TensorRT headers CI provides
(CVGL_TENSORRT_INCLUDE_DIRS); everything a user can get wrong (no nvcc, no CMake, no headers,
no GPU to pick an architecture from, an architecture nvcc lacks) is checked before any work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from cvgl_edge.errors import CvglError
from cvgl_edge.export.plugin import build as plugin_build
from cvgl_edge.export.plugin import cache as plugin_cache
from cvgl_edge.export.tensorrt import engine_step as trt_engine_step
from cvgl_edge.export.plugin.toolchain import find_cmake, find_nvcc
from cvgl_edge.export.plugin.cache import PluginBuild, build_folder, find_plugin, sources_sha256
from tests.support import native_build
from tests.support.fake_tensorrt import fake_backend

needs_toolchain = pytest.mark.skipif(
    find_nvcc() is None or find_cmake() is None or native_build.tensorrt_missing_reason() is not None,
    reason=native_build.tensorrt_missing_reason() or "nvcc or cmake not found")


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CVGL_EDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CVGL_EDGE_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "cvgl_edge.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


# ----------------------------------------------------------------------------- the real build
@needs_toolchain
def test_plugin_build_compiles_the_library_into_the_cache_and_list_shows_it(cache):
    headers = native_build.tensorrt_header_sets()[0]
    built = cli("plugin", "build", "--tensorrt-root", str(headers.include.parent), "--arch", "87", "--json",
                cache=cache)
    assert built.returncode == 0, built.stderr
    record = json.loads(built.stdout)
    library = Path(record["library"])
    assert library == build_folder(headers.version, (87,)) / "libcvgl_trt_plugins.so" and library.is_file()
    assert record["architectures"] == [87] and record["tensorrt_version"] == headers.version
    assert record["sources_sha256"] == sources_sha256()
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True).stdout
    assert "getCreators" in symbols and "setLoggerFinder" in symbols
    assert not list((cache / "build").glob("*/build.log"))  # the scratch folder is gone after success

    listed = cli("plugin", "list", "--json", cache=cache)
    assert listed.returncode == 0 and [b["library"] for b in json.loads(listed.stdout)] == [str(library)]


@needs_toolchain
def test_a_failing_compile_is_one_line_naming_the_log(cache, tmp_path):
    broken = tmp_path / "TensorRT-broken" / "include"
    broken.mkdir(parents=True)
    (broken / "NvInfer.h").write_text("#error these headers are broken\n")
    (broken / "NvInferVersion.h").write_text("#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n"
                                             "#define NV_TENSORRT_PATCH 0\n")
    result = cli("plugin", "build", "--tensorrt-root", str(broken.parent), "--arch", "87", cache=cache)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: plugin build failed at the build:") and "build.log" in lines[0]
    assert not build_folder("10.3.0", (87,)).exists()  # nothing placed in the cache


# ----------------------------------------------------------------------------- checked before any work
def test_missing_nvcc_names_the_toolkit_to_install(monkeypatch):
    monkeypatch.setattr(plugin_build, "find_nvcc", lambda: None)
    with pytest.raises(CvglError, match=r"nvcc not found: install the CUDA toolkit"):
        plugin_build.plan_build(architectures=[87])


def test_an_nvcc_path_that_is_not_a_program_is_refused(tmp_path):
    with pytest.raises(CvglError, match="not an executable file"):
        plugin_build.plan_build(architectures=[87], nvcc=tmp_path / "nvcc")


@pytest.mark.skipif(find_nvcc() is None, reason="nvcc not found")
def test_missing_cmake_names_how_to_install_it(monkeypatch):
    monkeypatch.setattr(plugin_build, "find_cmake", lambda: None)
    with pytest.raises(CvglError, match=r"cmake not found: `sudo apt install cmake` or `pip install cmake`"):
        plugin_build.plan_build(architectures=[87])


@pytest.mark.skipif(find_nvcc() is None or find_cmake() is None, reason="nvcc or cmake not found")
def test_missing_headers_name_the_jetpack_package(monkeypatch, tmp_path):
    with pytest.raises(CvglError, match=r"--tensorrt-root .*: no NvInfer.h"):
        plugin_build.plan_build(tmp_path, architectures=[87])
    monkeypatch.delenv("TENSORRT_ROOT", raising=False)
    monkeypatch.setattr("cvgl_edge.export.plugin.toolchain.SYSTEM_TENSORRT_INCLUDES", (tmp_path,))
    with pytest.raises(CvglError, match=r"sudo apt install libnvinfer-dev"):
        plugin_build.plan_build(architectures=[87])


@needs_toolchain
def test_without_a_gpu_the_architecture_must_be_given(monkeypatch):
    monkeypatch.setattr(plugin_build, "gpu_compute_capability", lambda: None)
    root = native_build.tensorrt_header_sets()[0].include.parent
    with pytest.raises(CvglError, match=r"no GPU found .* pass --arch \(87 Jetson Orin"):
        plugin_build.plan_build(root)
    monkeypatch.setattr(plugin_build, "gpu_compute_capability", lambda: "8.7")  # a Jetson Orin
    assert plugin_build.plan_build(root).architectures == (87,)


@needs_toolchain
def test_an_architecture_this_nvcc_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(plugin_build, "nvcc_architectures", lambda nvcc: (75, 80, 86, 87, 89, 90))  # CUDA 12.6
    root = native_build.tensorrt_header_sets()[0].include.parent
    with pytest.raises(CvglError, match=r"--arch 110: .* compiles for 75, 80, 86, 87, 89, 90 only"):
        plugin_build.plan_build(root, [87, 110])


def test_plugin_build_error_is_one_line_from_the_command(cache, tmp_path):
    result = cli("plugin", "build", "--tensorrt-root", str(tmp_path), "--arch", "87", "--nvcc", "/bin/sh", cache=cache)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


# ----------------------------------------------------------------------------- the cache
def _cached(tensorrt: str, archs: tuple[int, ...], built_at: str = "2026-12-01T10:00:00+00:00",
            sources: str | None = None) -> PluginBuild:
    folder = build_folder(tensorrt, archs)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "libcvgl_trt_plugins.so").write_bytes(b"\x7fELF")
    build = PluginBuild(str(folder / "libcvgl_trt_plugins.so"), tensorrt, "/usr/include/aarch64-linux-gnu", archs,
                        "12.6", sources or sources_sha256(), "0.1.0", built_at)
    (folder / "build.json").write_text(json.dumps(build.to_json()))
    return build


def test_find_plugin_matches_tensorrt_major_minor_and_the_gpu_architecture(cache):
    orin = _cached("10.3.0", (87,))
    _cached("10.3.0", (86, 89))
    assert find_plugin("10.3.0.30", "8.7") == orin  # JetPack 6 reports 10.3.0.30
    assert find_plugin("10.3.0.30", "8.9").architectures == (86, 89)
    assert find_plugin("10.3.0.30", "9.0") is None
    assert find_plugin("10.16.0", "8.7") is None  # built against other headers
    assert find_plugin("10.3.0", None) is not None  # GPU unknown: any build for this TensorRT


def test_find_plugin_refuses_a_build_from_other_sources(cache):
    _cached("10.3.0", (87,), sources="0" * 64)
    with pytest.raises(CvglError, match=r"built from other cvgl-edge sources: run `cvgl-edge plugin build` again"):
        find_plugin("10.3.0", "8.7")


def test_a_cache_entry_without_its_library_or_manifest_is_ignored(cache):
    build = _cached("10.3.0", (87,))
    Path(build.library).unlink()
    assert plugin_cache.list_builds() == []
    (build_folder("10.3.0", (87,)) / "build.json").write_text("{broken")
    assert plugin_cache.list_builds() == []


# ----------------------------------------------------------------------------- export's default
def _engine_request(**kw) -> SimpleNamespace:
    base = dict(out=Path("/tmp"), max_batch=8, opt_batch=1, workspace_mb=64, plugin_lib=None, use_plugin=True,
                precision="fp32", int8_mode="explicit")
    return SimpleNamespace(**{**base, **kw})


@pytest.fixture()
def on_orin(monkeypatch):
    monkeypatch.setattr(trt_engine_step, "load_backend", lambda: fake_backend("10.3.0.30"))
    monkeypatch.setattr(trt_engine_step, "gpu_compute_capability", lambda: "8.7")


def test_export_takes_the_cached_plugin_for_this_tensorrt_and_gpu(cache, on_orin):
    orin = _cached("10.3.0", (87,))
    request = _engine_request()
    trt_engine_step.check_engine_request(request)
    assert request.plugin_lib == Path(orin.library)


def test_no_plugin_keeps_the_standard_op_scan_and_contradicts_plugin_lib(cache, on_orin):
    _cached("10.3.0", (87,))
    request = _engine_request(use_plugin=False)
    trt_engine_step.check_engine_request(request)
    assert request.plugin_lib is None
    with pytest.raises(CvglError, match="--plugin-lib and --no-plugin contradict"):
        trt_engine_step.check_engine_request(_engine_request(use_plugin=False, plugin_lib=Path("x.so")))


def test_tensorrt_rtx_never_takes_a_cached_plugin(cache, monkeypatch):
    _cached("1.7.1", (87,))
    monkeypatch.setattr(trt_engine_step, "load_backend", lambda: fake_backend("1.7.1", flavour="tensorrt_rtx"))
    request = _engine_request()
    trt_engine_step.check_engine_request(request)
    assert request.plugin_lib is None

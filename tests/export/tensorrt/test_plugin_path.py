"""Which path the TensorRT parser takes for the SelectiveScan nodes: plugin or local function.

Why these tests: TensorRT 10.0-10.6 (JetPack 6 ships 10.3) import a node through the model's
local function before they look for a plugin, so a build given ``--plugin-lib`` made loops and
never used the plugin, silently. tensorrt.build now hands the parser the model without that
function when a plugin library is given, and stops unless every scan became a plugin layer.
Run against the stand-in ``tensorrt`` of tests/support/fake_tensorrt.py, whose parser follows
onnx-tensorrt's order for its version (< 10.7: function first; >= 10.7: plugin first).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import onnx
import pytest
from onnx import TensorProto, helper

from cvgl_edge.errors import CvglError
from cvgl_edge.export.scan import contract
from cvgl_edge.export.tensorrt import build as trt_build
from cvgl_edge.export.tensorrt import engine_step as trt_engine_step
from cvgl_edge.export.tensorrt.build import EngineOptions, build_engine, read_sidecar
from cvgl_edge.export.scan.model import single_scan_model
from cvgl_edge.runtime.tensorrt.backend import collecting_logger, load_backend
from tests.support.fake_tensorrt import (
    LOOP_TYPES, PLUGIN_NOT_FOUND, fake_backend, scan_model, scan_node, write_plugin_lib,
)

SCANS = 3
VERSIONS = ("10.3.0", "10.8.0", "10.16.0", "11.1.0")


def _scan_onnx(path: Path, scans: int = SCANS) -> Path:
    """An exported-looking file: ``scans`` SelectiveScan nodes (alternating directions) and the local function."""
    nodes = [helper.make_node("MatMul", ["images", "w"], ["x0"], name="node_linear")]
    nodes += [scan_node(f"node_scan_{i}", f"x{i}", f"x{i + 1}", reverse=bool(i % 2)) for i in range(scans)]
    nodes.append(helper.make_node("Sigmoid", [f"x{scans}"], ["descriptors"], name="node_Sigmoid"))
    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 32, 128])],
                              [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", 8])])
    model = scan_model(graph)
    helper.set_model_props(model, {"model_name": "geossm-nano", "view": "ground", "input_size": json.dumps([32, 128]),
                                   "descriptor_dim": "8", "precision": "fp32", "scan_nodes": str(scans)})
    onnx.save_model(model, str(path))
    return path


def _layer_types(backend) -> list[str]:
    return [str(layer.type).split(".")[-1] for layer in backend.trt.last_network.layers]


@pytest.mark.parametrize("version", VERSIONS)
def test_with_a_plugin_library_every_scan_becomes_a_plugin_layer_on_every_version(tmp_path, version):
    onnx_path = _scan_onnx(tmp_path / "m.onnx")
    on_disk = onnx_path.read_bytes()
    lib = write_plugin_lib(tmp_path / "libcvgl_trt_plugins.so")
    backend = fake_backend(version)
    side = build_engine(onnx_path, tmp_path / "m.engine", EngineOptions(plugin_lib=lib), backend)

    types = _layer_types(backend)
    assert types.count("PLUGIN_V3") == SCANS and not set(LOOP_TYPES) & set(types)
    assert side["scan_import"] == {"path": "plugin", "scan_nodes": SCANS, "plugin_layers": SCANS,
                                   "function_removed": True}
    assert side["selective_scan"] == "plugin cvgl::SelectiveScan v1" and side["plugin_lib"] == str(lib)
    assert side == read_sidecar(tmp_path / "m.engine")
    # The parser got the model bytes and the file's path (for external weights); the file is untouched.
    assert backend.trt.parsed == [("parse", str(onnx_path))]
    assert backend.trt.last_config.plugins_to_serialize == [str(lib)]
    assert onnx_path.read_bytes() == on_disk
    assert any(contract.is_scan_function(f) for f in onnx.load(str(onnx_path)).functions)


@pytest.mark.parametrize("version", ["10.3.0", "10.8.0"])
def test_without_a_plugin_library_the_local_function_is_imported_as_loops(tmp_path, version):
    onnx_path = _scan_onnx(tmp_path / "m.onnx")
    backend = fake_backend(version)
    side = build_engine(onnx_path, tmp_path / "m.engine", EngineOptions(), backend)

    types = _layer_types(backend)
    assert "PLUGIN_V3" not in types and types.count("RECURRENCE") == SCANS
    assert side["network_layers"]["loop_layers"] == len(LOOP_TYPES) * SCANS
    assert side["scan_import"] == {"path": "function", "scan_nodes": SCANS, "plugin_layers": 0,
                                   "function_removed": False}
    assert side["selective_scan"].startswith("standard-op body") and side["plugin_lib"] is None
    assert backend.trt.parsed == [("parse_from_file", str(onnx_path))]


def test_a_model_without_scans_is_parsed_from_its_file_even_with_a_plugin_library(tmp_path):
    onnx_path = _scan_onnx(tmp_path / "m.onnx", scans=0)
    backend = fake_backend("10.3.0")
    side = build_engine(onnx_path, tmp_path / "m.engine",
                        EngineOptions(plugin_lib=write_plugin_lib(tmp_path / "lib.so")), backend)
    assert side["scan_import"] == {"path": "none", "scan_nodes": 0, "plugin_layers": 0, "function_removed": False}
    assert side["selective_scan"].startswith("none") and backend.trt.parsed == [("parse_from_file", str(onnx_path))]


@pytest.mark.parametrize("version", ["10.3.0", "10.8.0"])
def test_a_plugin_library_without_the_selective_scan_creator_is_a_one_line_error_naming_it(tmp_path, version):
    lib = write_plugin_lib(tmp_path / "libother.so", creators=(("OtherPlugin", "1", "other"),))
    backend = fake_backend(version)
    with pytest.raises(CvglError) as info:
        build_engine(_scan_onnx(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(plugin_lib=lib), backend)
    message = str(info.value)
    assert message == (f"TensorRT (tensorrt {version}) could not parse m.onnx: {PLUGIN_NOT_FOUND} (node 1 "
                       "'node_scan_0' op 'SelectiveScan') (parsed without the SelectiveScan local function for the "
                       f"plugin library {lib}: does it register plugin cvgl::SelectiveScan v1?)")
    assert "\n" not in message
    assert backend.trt.builds == 0 and not (tmp_path / "m.engine").exists()


def test_the_count_check_catches_tensorrt_10_3_importing_the_function_instead_of_the_plugin(tmp_path, monkeypatch):
    """The JetPack 6 bug: the parser given the model with its local function, as before the fix."""
    monkeypatch.setattr(trt_build, "_without_scan_function", lambda model: model.SerializeToString())
    lib = write_plugin_lib(tmp_path / "libcvgl_trt_plugins.so")
    backend = fake_backend("10.3.0")
    with pytest.raises(CvglError) as info:
        build_engine(_scan_onnx(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(plugin_lib=lib), backend)
    assert str(info.value) == (f"TensorRT (tensorrt 10.3.0) made 0 plugin layers for {SCANS} SelectiveScan nodes of "
                               f"m.onnx: the plugin library {lib} was not used for every scan (does it register "
                               "plugin cvgl::SelectiveScan v1?)")
    assert backend.trt.builds == 0 and not (tmp_path / "m.engine").exists()


def test_a_plugin_library_with_tensorrt_rtx_is_refused_in_one_line_before_any_work(tmp_path, monkeypatch):
    lib = write_plugin_lib(tmp_path / "libcvgl_trt_plugins.so")
    rtx = fake_backend("1.7.1.116", flavour="tensorrt_rtx")
    expected = (f"--plugin-lib {lib}: TensorRT-RTX (tensorrt_rtx 1.7.1.116) cannot run custom plugins; build "
                "without --plugin-lib (the scan's standard-op body) or with the full tensorrt package")
    with pytest.raises(CvglError) as info:
        build_engine(_scan_onnx(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(plugin_lib=lib), rtx)
    assert str(info.value) == expected
    assert rtx.trt.last_network is None and not rtx.trt.registry.libraries  # nothing built, nothing loaded

    # The export step's early check (before any export work) says the same.
    monkeypatch.setattr(trt_engine_step, "load_backend", lambda: rtx)
    request = SimpleNamespace(out=tmp_path, max_batch=8, opt_batch=1, workspace_mb=64, plugin_lib=lib, use_plugin=True,
                              precision="fp32", int8_mode="explicit")
    with pytest.raises(CvglError) as info:
        trt_engine_step.check_engine_request(request)
    assert str(info.value) == expected


# ----------------------------------------------------------------------------- the real tensorrt_rtx parser
def _rtx_network(backend):
    trt = backend.trt
    logger = collecting_logger(trt)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return trt.Builder(logger).create_network(flags), logger


def test_the_real_parser_takes_the_model_bytes_without_the_function_and_names_the_library(tmp_path):
    """tensorrt_rtx's OnnxParser.parse(bytes, path) (the call made with a plugin library; no plugin is
    loaded here): the file parses with its function, and without it the scan node finds no creator."""
    pytest.importorskip("tensorrt_rtx")
    backend = load_backend(prefer="tensorrt_rtx")
    model = single_scan_model()
    path = tmp_path / "one_scan.onnx"
    onnx.save_model(model, str(path))
    network, logger = _rtx_network(backend)
    trt_build._parse(backend, network, logger, path, model, None)
    assert network.num_layers > 0
    network, logger = _rtx_network(backend)
    lib = tmp_path / "libcvgl_trt_plugins.so"
    with pytest.raises(CvglError) as info:
        trt_build._parse(backend, network, logger, path, model, lib)
    assert str(info.value) == (f"TensorRT (tensorrt_rtx {backend.version}) could not parse one_scan.onnx: "
                               f"{PLUGIN_NOT_FOUND} (node 0 'scan' op 'SelectiveScan') (parsed without the "
                               f"SelectiveScan local function for the plugin library {lib}: does it register "
                               "plugin cvgl::SelectiveScan v1?)")


def test_the_installed_tensorrt_rtx_refuses_a_plugin_library(tmp_path):
    pytest.importorskip("tensorrt_rtx")
    lib = write_plugin_lib(tmp_path / "libcvgl_trt_plugins.so")
    refused = r"^--plugin-lib .*: TensorRT-RTX \(tensorrt_rtx .*\) cannot run custom plugins"
    with pytest.raises(CvglError, match=refused):
        build_engine(_scan_onnx(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(plugin_lib=lib),
                     load_backend(prefer="tensorrt_rtx"))

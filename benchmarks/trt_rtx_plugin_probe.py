"""Can TensorRT-RTX build an engine that contains our selective-scan plugin (C++ or Python)?

Why a probe: issue 3 asks whether the ``cvgl::SelectiveScan`` plugin can replace the
standard-op scan body in TensorRT-RTX engines. Each check runs in its own subprocess, so a
process abort inside TensorRT is recorded (exit code, stderr) instead of killing the probe.

Checks: (1) what the ``tensorrt_rtx`` Python API exposes for plugins; (2) whether the wheels
ship C++ headers / which C entry points the library exports (could export/plugin/ be compiled
against TensorRT-RTX?); (3) ``IPluginRegistry.load_library`` on a missing file and on a tiny
C library exporting ``getCreators`` with zero creators; (4) a Python ``IPluginV3`` creator for
``cvgl::SelectiveScan`` registered, then the tiny GeoSSM ONNX parsed and built (each plugin
method logs when TensorRT calls it); (5) the same ONNX without the creator (control).
Usage:  python benchmarks/trt_rtx_plugin_probe.py [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import textwrap
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What a documentation search found (2026-11-22; recorded here, not re-run by this script).
DOC_EVIDENCE = [
    {"source": "https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest/_static/cpp-api/"
               "class_i_plugin_creator_v3_one.html",
     "says": "TensorRT for RTX 1.3.0 C++ API reference declares IPluginCreatorV3One (and v_2_0::IPluginV3OneBuild) "
             "in NvInferRuntime.h: the plugin interfaces exist in the SDK headers."},
    {"source": "https://github.com/microsoft/onnxruntime/pull/26558",
     "says": "ONNX Runtime's TensorRT-RTX execution provider loads an external tensorrt_plugins library "
             "'to support custom transformer plugins' (Nov 2025): plugin libraries are loadable by TensorRT-RTX."},
    {"source": "https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest/getting-started/support-matrix.html",
     "says": "Support matrices and release notes 1.0-1.5 list precisions and compute capabilities; no statement "
             "on custom (user) plugins was found in them."},
    {"source": "https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/extending-custom-layers.html",
     "says": "Full TensorRT: C++ IPluginV3 + IPluginCreatorV3One registered in the plugin registry, added via the "
             "network API or the ONNX parser; Python decorator plugins from TensorRT 10.6."},
]
TINY = dict(depth=2, embed_dim=32, ground_size=(32, 128), satellite_size=(64, 64))

API = """
import json, tensorrt_rtx as trt
out = {"version": trt.__version__}
for name in ("IPluginV3", "IPluginCreatorV3One", "IPluginV3OneCore", "IPluginV3OneBuild", "IPluginV3OneRuntime",
             "IPluginV2", "IPluginCreator", "get_plugin_registry", "init_libnvinfer_plugins"):
    out[name] = hasattr(trt, name)
registry = trt.get_plugin_registry()
for name in ("load_library", "register_creator", "deregister_library", "all_creators"):
    out["IPluginRegistry." + name] = hasattr(registry, name)
for name in ("add_plugin_v3", "add_plugin_v2", "add_plugin", "add_plugin_ext"):
    out["INetworkDefinition." + name] = hasattr(trt.INetworkDefinition, name)
out["IBuilderConfig.plugins_to_serialize"] = hasattr(trt.IBuilderConfig, "plugins_to_serialize")
out["registered_creators"] = [f"{c.plugin_namespace}::{c.name} v{c.plugin_version}" for c in registry.all_creators]
try:
    import tensorrt_rtx.plugin
    out["import tensorrt_rtx.plugin"] = "ok"
except Exception as error:
    out["import tensorrt_rtx.plugin"] = f"{type(error).__name__}: {error}"
print(json.dumps(out))
"""

LOAD_LIBRARY = """
import sys, tensorrt_rtx as trt
builder = trt.Builder(trt.Logger(trt.Logger.VERBOSE))  # the registry logs through it (to stderr)
registry = builder.get_plugin_registry()
try:
    handle = registry.load_library(sys.argv[1])
    print("returned", "None" if handle is None else type(handle).__name__, flush=True)
except Exception as error:
    print("raised", type(error).__name__, str(error).splitlines()[0] if str(error) else "", flush=True)
"""

#: A plugin library with the documented C entry point and no creators (no TensorRT headers needed).
EMPTY_LIBRARY_C = """
#include <stdint.h>
#include <stdio.h>
void* const* getCreators(int32_t* nb) { fprintf(stderr, "probe: getCreators called\\n"); *nb = 0; return 0; }
void setLoggerFinder(void* finder) { fprintf(stderr, "probe: setLoggerFinder called\\n"); (void)finder; }
"""

PYTHON_PLUGIN = """
import sys
import numpy as np
import tensorrt_rtx as trt

def trace(what):
    print("called", what, flush=True)

class Scan(trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild, trt.IPluginV3OneRuntime):
    def __init__(self):
        trt.IPluginV3.__init__(self)
        trt.IPluginV3OneCore.__init__(self)
        trt.IPluginV3OneBuild.__init__(self)
        trt.IPluginV3OneRuntime.__init__(self)
        self.plugin_name, self.plugin_version, self.plugin_namespace = "SelectiveScan", "1", "cvgl"
        self.num_outputs = 1
    def get_capability_interface(self, kind):
        trace("get_capability_interface"); return self
    def clone(self):
        trace("clone"); return Scan()
    def get_output_data_types(self, input_types):
        trace("get_output_data_types"); return [input_types[0]]
    def get_output_shapes(self, inputs, shape_inputs, expr_builder):
        trace("get_output_shapes"); return [inputs[0]]
    def supports_format_combination(self, pos, in_out, num_inputs):
        trace("supports_format_combination"); return in_out[pos].desc.type == trt.float32
    def configure_plugin(self, inputs, outputs):
        trace("configure_plugin")
    def on_shape_change(self, inputs, outputs):
        trace("on_shape_change")
    def get_workspace_size(self, inputs, outputs):
        trace("get_workspace_size"); return 0
    def get_valid_tactics(self):
        trace("get_valid_tactics"); return []
    def set_tactic(self, tactic):
        trace("set_tactic")
    def get_fields_to_serialize(self):
        trace("get_fields_to_serialize"); return trt.PluginFieldCollection([])
    def attach_to_context(self, context):
        trace("attach_to_context"); return self.clone()
    def enqueue(self, *args):
        trace("enqueue")

class Creator(trt.IPluginCreatorV3One):
    def __init__(self):
        trt.IPluginCreatorV3One.__init__(self)
        self.name, self.plugin_namespace, self.plugin_version = "SelectiveScan", "cvgl", "1"
        self.field_names = trt.PluginFieldCollection([
            trt.PluginField(n, np.array([], dtype=np.int32), trt.PluginFieldType.INT32)
            for n in ("direction", "delta_softplus", "has_D", "has_z", "has_delta_bias")])
    def create_plugin(self, name, field_collection, phase):
        trace(f"create_plugin({name!r}, phase={phase})"); return Scan()

creator = Creator()
print("registered", trt.get_plugin_registry().register_creator(creator, "cvgl"), flush=True)
logger = trt.Logger(trt.Logger.VERBOSE)
builder = trt.Builder(logger)
network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
parser = trt.OnnxParser(network, logger)
print("parsing", flush=True)
ok = parser.parse_from_file(sys.argv[1])
print("parsed", ok, [parser.get_error(i).desc() for i in range(parser.num_errors)], flush=True)
types = [str(network.get_layer(i).type).split(".")[-1] for i in range(network.num_layers)]
print("plugin_layers", sum("PLUGIN" in t for t in types), "layers", len(types), flush=True)
config = builder.create_builder_config()
profile = builder.create_optimization_profile()
profile.set_shape("images", (1, 3, 32, 128), (1, 3, 32, 128), (2, 3, 32, 128))
config.add_optimization_profile(profile)
blob = builder.build_serialized_network(network, config)
print("built", None if blob is None else len(bytes(memoryview(blob))), flush=True)
"""

CONTROL = """
import sys, tensorrt_rtx as trt
logger = trt.Logger(trt.Logger.ERROR)
builder = trt.Builder(logger)
network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
parser = trt.OnnxParser(network, logger)
print("parsed", parser.parse_from_file(sys.argv[1]), flush=True)
types = [str(network.get_layer(i).type).split(".")[-1] for i in range(network.num_layers)]
print("plugin_layers", sum("PLUGIN" in t for t in types), "loop_layers",
      sum(t in ("ITERATOR", "RECURRENCE", "TRIP_LIMIT", "LOOP_OUTPUT") for t in types), flush=True)
config = builder.create_builder_config()
profile = builder.create_optimization_profile()
profile.set_shape("images", (1, 3, 32, 128), (1, 3, 32, 128), (2, 3, 32, 128))
config.add_optimization_profile(profile)
blob = builder.build_serialized_network(network, config)
print("built", None if blob is None else len(bytes(memoryview(blob))), flush=True)
"""


#: TensorRT log lines kept from the (verbose) output: the plugin story, errors; parser chatter is dropped.
KEEP = ("plugin", "Plugin", "loadLibrary", "shared library", "[E]", "Error")


def run(code: str, *args: str, timeout: int = 300, tail: int = 8) -> dict:
    """Run ``code`` in a fresh interpreter; exit code (negative = signal), kept stdout lines, stderr tail."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    lines = [line for line in proc.stdout.strip().splitlines()
             if not line.startswith("[") or any(k in line for k in KEEP)]
    return {"returncode": proc.returncode, "signal": "SIGABRT" if proc.returncode == -6 else None,
            "stdout": [_strip_stamp(line) for line in lines],
            "stderr_tail": proc.stderr.strip().splitlines()[-tail:]}


def _strip_stamp(line: str) -> str:
    """'[11/22/2026-01:19:24] [TRT] [V] text' -> '[TRT] [V] text' (timestamps only add noise)."""
    return line.split("] ", 1)[1] if line.startswith("[") and "] [TRT]" in line else line


def shipped_files() -> dict:
    """Headers and libraries in the installed TensorRT-RTX wheels, and the C entry points the library exports."""
    import tensorrt_rtx_libs

    site = Path(tensorrt_rtx_libs.__file__).resolve().parents[1]
    dirs = sorted(p for p in site.iterdir() if p.name.startswith("tensorrt_rtx"))
    files = [p for d in dirs for p in d.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    headers = [str(p.relative_to(site)) for p in files if p.suffix in (".h", ".hpp", ".cuh")]
    libs = [str(p.relative_to(site)) for p in files if ".so" in p.name]
    lib = next(p for p in files if p.name.startswith("libtensorrt_rtx.so"))
    nm = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True)
    c_symbols = sorted(line.split()[-1] for line in nm.stdout.splitlines()
                       if line.split() and not line.split()[-1].startswith("_Z") and " T " in line)
    return {"site_packages_dirs": [d.name for d in dirs], "headers": headers, "libraries": libs,
            "libtensorrt_rtx_exported_c_functions": c_symbols}


def empty_plugin_library(work: Path) -> Path | None:
    source, lib = work / "empty_plugins.c", work / "libempty_plugins.so"
    source.write_text(EMPTY_LIBRARY_C)
    proc = subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(source)], capture_output=True, text=True)
    return lib if proc.returncode == 0 else None


def tiny_onnx(work: Path) -> Path:
    import onnx
    import torch

    from cvgl_edge.export.onnx.exporter import export_branch
    from cvgl_edge.models import build_model

    torch.manual_seed(0)
    path = work / "tiny-ground.onnx"
    onnx.save_model(export_branch(build_model("geossm-nano", **TINY).eval(), "ground", 18), str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trt-rtx-probe-") as tmp:
        work = Path(tmp)
        lib = empty_plugin_library(work)
        model = tiny_onnx(work)
        result = {
            "command": "python benchmarks/trt_rtx_plugin_probe.py",
            "api": json.loads(run(API)["stdout"][-1]),
            "wheel_files": shipped_files(),
            "load_library_missing_file": run(LOAD_LIBRARY, str(work / "no_such_lib.so")),
            "load_library_empty_getCreators": run(LOAD_LIBRARY, str(lib)) if lib else "cc not available",
            "python_iplugin_v3_build": run(PYTHON_PLUGIN, str(model)),
            "control_no_plugin_build": run(CONTROL, str(model)),
            "documentation": DOC_EVIDENCE,
        }
    from cvgl_edge.bench.machine import machine_info

    result["machine"] = machine_info()
    stem = args.out / f"trt_rtx_plugin_probe_{socket.gethostname()}_{date.today():%Y%m%d}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def _outcome(step: dict) -> str:
    if step["signal"]:
        return f"process aborted (SIGABRT, exit {step['returncode']})"
    return f"exit {step['returncode']}"


def markdown(r: dict) -> str:
    api, files = r["api"], r["wheel_files"]
    py, ctl = r["python_iplugin_v3_build"], r["control_no_plugin_build"]
    yes = lambda v: "yes" if v else "no"  # noqa: E731
    lines = [f"# TensorRT-RTX {api['version']} and custom plugins (issue 3)", "",
             f"`{r['command']}` on {r['machine'].get('cpu_model')} ({r['machine'].get('host')}), CPU only, no GPU.", "",
             "## Python API", "", "| symbol | present |", "|---|---|"]
    lines += [f"| `{k}` | {v if isinstance(v, str) else yes(v)} |" for k, v in api.items()
              if k not in ("version", "registered_creators")]
    lines += ["", f"Creators registered at import: {api['registered_creators'] or 'none'}.", "",
              "## What the wheels ship", "",
              f"- C/C++ headers: {files['headers'] or 'none'}",
              f"- libraries: {', '.join(files['libraries'])}",
              f"- C entry points of libtensorrt_rtx: {', '.join(files['libtensorrt_rtx_exported_c_functions'])}", "",
              "## Runs (each in its own process)", ""]
    for title, key in [("load_library(missing file)", "load_library_missing_file"),
                       ("load_library(C library, getCreators -> 0 creators)", "load_library_empty_getCreators"),
                       ("Python IPluginV3 for cvgl::SelectiveScan, parse + build tiny GeoSSM",
                        "python_iplugin_v3_build"),
                       ("control: same ONNX, no plugin registered", "control_no_plugin_build")]:
        step = r[key]
        if isinstance(step, str):
            lines += [f"**{title}**: {step}", ""]
            continue
        lines += [f"**{title}**: {_outcome(step)}", "", "```", *step["stdout"], *(
            ["--- stderr (tail) ---", *step["stderr_tail"]] if step["stderr_tail"] else []), "```", ""]
    aborted = bool(py["signal"])
    lines += ["## Documentation (search of 2026-11-22, not re-run by the script)", ""]
    lines += [f"- {d['says']} ({d['source']})" for d in r["documentation"]]
    lines += ["", "## Conclusion", "", conclusion(api, files, py, ctl, aborted), ""]
    return "\n".join(lines)


def conclusion(api: dict, files: dict, py: dict, ctl: dict, aborted: bool) -> str:
    """The README paragraph, from the evidence above."""
    created = any("Successfully created plugin" in line for line in py["stdout"])
    methods = [line.split(" ", 1)[1] for line in py["stdout"] if line.startswith("called")]
    abort = py["stderr_tail"][-1] if aborted and py["stderr_tail"] else f"exit {py['returncode']}"
    return (
        f"TensorRT-RTX {api['version']} (pip wheels) cannot build an engine containing the SelectiveScan plugin "
        f"on this machine. Python plugins: the bindings have IPluginV3 / IPluginCreatorV3One and a plugin registry, "
        f"but INetworkDefinition has no add_plugin_v3 / add_plugin_v2, the Python-plugin decorator module does not "
        f"import ({api['import tensorrt_rtx.plugin']}), and with a Python IPluginV3 creator for cvgl::SelectiveScan "
        f"registered the ONNX parser finds it, calls only {', '.join(methods) or 'nothing'}"
        + (", logs 'Successfully created plugin: SelectiveScan'" if created else "")
        + f" and then the process {'aborts (' + abort + ')' if aborted else 'ends: ' + abort}, before any other "
        f"plugin method is called. C++ plugins: the registry's load_library is live (it dlopens the library, calls "
        f"setLoggerFinder and getCreators, and refuses zero creators with an API usage error), but the wheels ship "
        f"no C++ headers ({len(files['headers'])} found), so export/plugin/ cannot be compiled against TensorRT-RTX "
        f"from pip; that needs the TensorRT-RTX SDK archive (headers, and our CMake would have to link "
        f"libtensorrt_rtx instead of libnvinfer) and stays untested, as does whether its parser can add a C++ "
        f"IPluginV3 layer at all (the Python case dies at that step). The same ONNX without a plugin "
        f"{'builds' if ctl['returncode'] == 0 else 'fails to build'} (the scan as the ONNX Scan body, a TensorRT "
        f"loop): that is what cvgl-edge builds for TensorRT-RTX; the plugin path is full TensorRT (10.3 on "
        f"JetPack 6 to 11.x)."
    )


if __name__ == "__main__":
    main()

"""Engine build time and size with the installed TensorRT flavour (CPU-only AOT for tensorrt-rtx).

Why: decides whether CI can afford a real engine build, and what a deploy build costs.
Random weights (build time does not depend on them). Usage:
    python benchmarks/trt_rtx_build.py [--models tiny geossm-nano geossm-small]
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from datetime import date
from pathlib import Path

import onnx
import torch

from cvgl_edge.bench.machine import cpu_model, machine_info
from cvgl_edge.export.onnx.exporter import export_branch
from cvgl_edge.runtime.tensorrt.backend import load_backend
from cvgl_edge.export.tensorrt.build import EngineOptions, build_engine
from cvgl_edge.models import build_model

TINY = dict(depth=2, embed_dim=32, ground_size=(32, 128), satellite_size=(64, 64))


def measure(name: str, view: str, work: Path) -> dict:
    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY) if name == "tiny" else build_model(name)
    start = time.perf_counter()
    onnx_path = work / f"{name}-{view}.onnx"
    onnx.save_model(export_branch(model.eval(), view, 18), str(onnx_path))
    export_s = time.perf_counter() - start
    side = build_engine(onnx_path, work / f"{name}-{view}.engine", EngineOptions())
    return {"model": name, "view": view, "onnx_export_s": round(export_s, 2), "build_s": side["build_seconds"],
            "onnx_bytes": onnx_path.stat().st_size, "engine_bytes": side["engine_bytes"],
            "layers": side["network_layers"]["layers"], "precision": side["precision"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["tiny", "geossm-nano", "geossm-small"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    backend = load_backend()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(m, "satellite", Path(tmp)) for m in args.models]
    result = {"machine": machine_info(), "tensorrt": {"flavour": backend.flavour, "version": backend.version},
              "onnx": onnx.__version__, "torch": torch.__version__,
              "command": "python benchmarks/trt_rtx_build.py --models " + " ".join(args.models),
              "options": "EngineOptions() defaults: batch profile 1/1/8, workspace 1024 MiB, fp32, no plugin",
              "rows": rows}
    stem = args.out / f"trt_rtx_build_{socket.gethostname()}_{date.today():%Y%m%d}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Engine build ({backend.flavour} {backend.version}, AOT on CPU)", "",
             f"`{result['command']}` on {cpu_model()} ({socket.gethostname()})", "",
             "| model | view | ONNX export s | engine build s | ONNX MB | engine MB | TRT layers |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['view']} | {r['onnx_export_s']} | {r['build_s']} | {r['onnx_bytes'] / 1e6:.2f} | "
              f"{r['engine_bytes'] / 1e6:.2f} | {r['layers']} |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n\nMachine: `" + json.dumps(result["machine"]) + "`\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

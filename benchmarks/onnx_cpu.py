"""ONNX Runtime vs PyTorch on the CPU for one exported branch: parity and latency.

    python benchmarks/onnx_cpu.py --model geossm-small --view satellite --repeats 10

Writes benchmarks/results/onnx_cpu_<host>_<date>_<model>-<view>.{json,md}. The model has
random weights (speed and parity do not depend on training).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from cvgl_edge.bench.machine import load_average, machine_info, result_stem
from cvgl_edge.timing import summarize_ms, time_ms
from cvgl_edge.export.onnx.exporter import export_branch, save_onnx
from cvgl_edge.export.onnx.validate import cosine_rows, ort_session, torch_descriptors
from cvgl_edge.export.sample_images import sample_images
from cvgl_edge.models import build_model
from cvgl_edge.ops import active_backend

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="geossm-small")
    parser.add_argument("--view", default="satellite", choices=["ground", "satellite"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = build_model(args.model).eval()
    size = model.config.input_size(args.view)
    start = time.perf_counter()
    exported = export_branch(model, args.view)
    export_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "branch.onnx"
        save_onnx(exported, path)
        session = ort_session(path)
        images = sample_images(args.view, size, 4)
        ort_out = session.run(None, {"images": images})[0]
        ref = torch_descriptors(model, args.view, images)
        one = images[:1]
        load_before = load_average()
        with torch.no_grad():
            torch_t = summarize_ms(time_ms(lambda: model.encode(torch.from_numpy(one), args.view), args.warmup, args.repeats))
        ort_t = summarize_ms(time_ms(lambda: session.run(None, {"images": one}), args.warmup, args.repeats))
        size_mb = round(path.stat().st_size / 1e6, 1)
    cos = cosine_rows(ort_out, ref)
    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "onnxruntime": onnxruntime.__version__,
        "load_average_before_after": [load_before, load_average()],
        "model": args.model, "view": args.view, "input_hw": list(size), "batch": 1,
        "export_seconds": round(export_s, 1), "onnx_mb": size_mb,
        "parity": {"cosine_min": float(cos.min()), "max_abs_err": float(np.abs(ort_out - ref).max())},
        "torch_scan_backend": active_backend("cpu"),
        "torch": torch_t, "onnxruntime_cpu": ort_t,
    }
    stem = result_stem(RESULTS, "onnx_cpu", f"_{args.model}-{args.view}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    stem.with_suffix(".md").write_text("\n".join([
        f"# ONNX Runtime vs PyTorch, CPU ({result['date']})", "",
        f"- Command: `{result['command']}`",
        f"- Machine: {m['cpu_model']}, {m['usable_cores']} usable cores; Python {m['python']}, "
        f"torch {m['torch']} ({m['torch_threads']} threads, scan backend {result['torch_scan_backend']}), "
        f"onnxruntime {result['onnxruntime']}",
        f"- Load average before/after: {result['load_average_before_after']}",
        f"- {args.model} {args.view} branch, input {size[0]}x{size[1]}, batch 1; ONNX {size_mb} MB, "
        f"exported in {result['export_seconds']} s",
        f"- Parity on 4 synthetic images: cosine min {cos.min():.10f}, max abs err {result['parity']['max_abs_err']:.2e}",
        "", "| runtime | median ms | min ms | max ms |", "|---|---:|---:|---:|",
        f"| PyTorch | {torch_t['median_ms']} | {torch_t['min_ms']} | {torch_t['max_ms']} |",
        f"| ONNX Runtime (CPU EP) | {ort_t['median_ms']} | {ort_t['min_ms']} | {ort_t['max_ms']} |", "",
    ]))
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()

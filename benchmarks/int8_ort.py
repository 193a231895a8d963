"""INT8 (QDQ, ONNX Runtime CPU) vs FP32 (PyTorch) on a trained checkpoint: recall and cosine.

    python benchmarks/int8_ort.py /tmp/int8demo/last.pt [--calibration calibration/synthetic-default.json]

Runs the same pipeline as `cvgl-edge export CKPT --precision int8` (both branches; the
calibration cache in --out is reused when it matches) and writes
benchmarks/results/int8_ort_<host>_<date>.{json,md}. Also times batch-1 ONNX Runtime
FP32 vs INT8 per branch (same session settings) for context.
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

import onnx
import onnxruntime

from cvgl_edge.bench.machine import load_average, machine_info, result_stem
from cvgl_edge.export.onnx.exporter import export_branch
from cvgl_edge.export.onnx.validate import ort_session
from cvgl_edge.timing import summarize_ms, time_ms
from cvgl_edge.export.pipeline import ExportRequest, run_export
from cvgl_edge.export.sample_images import sample_images
from cvgl_edge.models import load_checkpoint

RESULTS = Path(__file__).resolve().parent / "results"


def latency(checkpoint: Path, reports: list[dict], repeats: int) -> dict[str, dict[str, float]]:
    model = load_checkpoint(checkpoint)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for report in reports:
            view = report["branch"]
            fp32 = Path(tmp) / f"{view}.onnx"
            onnx.save_model(export_branch(model, view), str(fp32))
            one = sample_images(view, model.config.input_size(view), 1)
            out[view] = {kind: summarize_ms(time_ms(lambda s=ort_session(path): s.run(None, {"images": one}), 1, repeats))["median_ms"]
                         for kind, path in (("fp32_ms", fp32), ("int8_ms", Path(report["file"])))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--calibration", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("exports/int8-bench"))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    start = time.perf_counter()
    reports = run_export(ExportRequest(checkpoint=args.checkpoint, out=args.out, precision="int8",
                                       calibration=args.calibration))
    export_s = time.perf_counter() - start
    load_before = load_average()
    timing = latency(args.checkpoint, reports, args.repeats)
    acc = reports[0]["accuracy"]
    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "equivalent_cli": f"cvgl-edge export {args.checkpoint} --precision int8"
                          + (f" --calibration {args.calibration}" if args.calibration else "") + f" --out {args.out}",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(), "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
        "export_and_eval_seconds": round(export_s, 1),
        "calibration": {k: reports[0]["calibration"][k] for k in ("recipe", "recipe_sha256")},
        "calibration_reused_cache": {r["branch"]: r["calibration"]["reused_cache"] for r in reports},
        "accuracy": acc,
        "parity_check_images": {r["branch"]: r["parity"] for r in reports},
        "qdq": {r["branch"]: r["qdq"] for r in reports},
        "file_mb": {r["branch"]: round(r["file_bytes"] / 1e6, 2) for r in reports},
        "latency_batch1_onnxruntime": timing, "load_average_before_after": [load_before, load_average()],
    }
    stem = result_stem(RESULTS, "int8_ort")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    m, recipe = result["machine"], result["calibration"]["recipe"]
    rows = [f"| {k} | {acc['fp32'][k]:.2f} | {acc['int8'][k]:.2f} | {acc['drop'][k]:+.2f} |" for k in acc["fp32"]]
    cos = [f"| {v} | {c['min']:.6f} | {c['mean']:.6f} | {timing[v]['fp32_ms']} | {timing[v]['int8_ms']} | "
           f"{result['qdq'][v]['quantized_ops']} |" for v, c in acc["descriptor_cosine"].items()]
    stem.with_suffix(".md").write_text("\n".join([
        f"# INT8 (QDQ, ONNX Runtime CPU) vs FP32 PyTorch ({result['date']})", "",
        f"- Command: `{result['command']}` (same as `{result['equivalent_cli']}`)",
        f"- Machine: {m['cpu_model']}, {m['usable_cores']} usable cores; Python {m['python']}, torch {m['torch']}, "
        f"onnxruntime {result['onnxruntime']}, onnx {result['onnx']}",
        f"- Checkpoint: `{args.checkpoint}`; calibration: {recipe['count']} {recipe['dataset']} {recipe['split']} "
        f"images, {recipe['sampling']} (seed {recipe['seed']}), {recipe['method']}; cache reused: "
        f"{result['calibration_reused_cache']}",
        f"- Evaluation: {acc['pairs']} {acc['data']} {acc['split']} pairs, {acc['direction']}, polar={acc['polar']}; "
        f"branches: {acc['branches']}", "",
        "| metric | FP32 PyTorch | INT8 ONNX Runtime | drop (points) |", "|---|---:|---:|---:|", *rows, "",
        "| branch | cosine min (val) | cosine mean (val) | ORT FP32 ms (b=1) | ORT INT8 ms (b=1) | quantized MatMul/Conv |",
        "|---|---:|---:|---:|---:|---:|", *cos, "",
        f"Load average before/after timing: {result['load_average_before_after']}. Latency is context only "
        f"(median of {args.repeats}, 2-core VM, the scan dominates and stays FP32).", "",
    ]))
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()

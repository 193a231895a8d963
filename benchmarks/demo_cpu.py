"""Record the demo's accuracy and wall time with the machine it ran on.

Runs exactly what `cvgl-edge demo` runs (same defaults) and writes
benchmarks/results/demo_cpu_<host>_<date>.{json,md}.

    python benchmarks/demo_cpu.py [--steps 300] [--train-pairs 2000]
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

from cvgl_edge.bench.machine import load_average, machine_info, result_stem
from cvgl_edge.demo import DemoSettings, run_demo

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = DemoSettings()
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--train-pairs", type=int, default=defaults.train_pairs)
    parser.add_argument("--no-polar", action="store_true", help="raw satellite tiles (harder)")
    parser.add_argument("--note", default="", help="free text stored with the result")
    args = parser.parse_args()

    load_before = load_average()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        settings = DemoSettings(out=out, steps=args.steps, train_pairs=args.train_pairs,
                                polar=not args.no_polar, show_progress=False)
        record = run_demo(settings)
    wall = time.perf_counter() - start
    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_before_after": [load_before, load_average()],
        "wall_seconds": round(wall, 1),
        "note": args.note,
        "demo": {k: v for k, v in record.items() if k != "checkpoint"},
    }
    stem = result_stem(RESULTS, "demo_cpu", "_nopolar" if args.no_polar else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(_markdown(result))
    print(stem.with_suffix(".md").read_text())


def _markdown(result: dict) -> str:
    demo, machine = result["demo"], result["machine"]
    rows = []
    for label, metrics in (("untrained", demo.get("untrained")), ("trained", demo.get("directions"))):
        for direction, values in (metrics or {}).items():
            rows.append(f"| {label} | {direction} | " + " | ".join(f"{values[k]:.1f}" for k in ("R@1", "R@5", "R@10", "R@1%")) + " |")
    return "\n".join([
        f"# Demo on the CPU ({result['date']})",
        "",
        f"- Command: `{result['command']}`",
        f"- Machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores, {machine['os']}",
        f"- Python {machine['python']}, torch {machine['torch']} ({machine['torch_threads']} threads)",
        f"- Load average before/after: {result['load_average_before_after']}",
        f"- Model {demo['model']}, data {demo['data']} (polar={demo['polar']}), "
        f"{demo['steps']} steps; {demo['val_pairs']} held-out pairs, chance R@1 {demo['chance_r1']:.1f}%",
        f"- Wall time: {result['wall_seconds']} s (training {demo['train_seconds']} s)",
        "",
        "| model | direction | R@1 | R@5 | R@10 | R@1% |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
        "",
    ])


if __name__ == "__main__":
    main()

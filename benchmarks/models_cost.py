"""Params and FLOPs of the paper-size VimGeo and LRFR presets, beside the papers' figures.

Counts come from ``cvgl_edge.models.cost.model_cost`` (one eager forward at batch 1 under
torch's FlopCounterMode: 2 FLOPs per multiply-add for matmul/conv; each selective scan
9*B*L*Dc*N; elementwise ops not counted). Random weights: counts do not depend on them.

Rows: vimgeo-small at 384x384 (descriptor_dim 384, and the 192 / 768 ablation heads),
lrfr at 384x384 (University-1652) and at 256x512 (CVUSA/CVACT, polar satellite).

Writes benchmarks/results/models_cost_<host>_<date>.json and .md (or --json PATH).

    flock /tmp/cpu_gate .venv/bin/python benchmarks/models_cost.py --host vm
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch

from cvgl_edge.models.cost import FLOP_CONVENTION, model_cost, params_total
from cvgl_edge.io import atomic_write, atomic_write_json
from cvgl_edge.models import build_model

CASES = [
    ("vimgeo-small", {}, "satellite", "VimGeo (seed 001): 26.0M params, University-1652 384x384"),
    ("vimgeo-small", {"descriptor_dim": 192}, "satellite", "ablation row 192-d (no paper size given)"),
    ("vimgeo-small", {"descriptor_dim": 768}, "satellite", "ablation row 768-d (no paper size given)"),
    ("lrfr", {}, "satellite", "LRFR (seed 002), University-1652 384x384; Table II: 13.1 (\"Params MB\")"),
    ("lrfr", {"ground_size": (256, 512), "satellite_size": (256, 512)}, "ground",
     "LRFR CVUSA/CVACT 256x512; Table II: 13.1 (\"Params MB\"), 26.1 ms extract time (RTX 3060 Laptop)"),
]


def measure() -> list[dict]:
    rows = []
    for name, overrides, view, paper in CASES:
        torch.manual_seed(0)
        model = build_model(name, **overrides)
        start = time.perf_counter()
        cost = model_cost(model, view)
        rows.append({
            "model": name, "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
            "view": view, "input_size": cost["input_size"], "descriptor_dim": model.descriptor_dim,
            "params_total": params_total(model), "params_branch": cost["params"], "gflops": cost["flops"] / 1e9,
            "flops_by_op": cost["flops_by_op"], "paper": paper, "seconds": round(time.perf_counter() - start, 1),
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(record: dict) -> str:
    lines = [f"# Params and FLOPs of the VimGeo and LRFR presets ({record['host']}, {record['date']})", "",
             f"Command: `{record['command']}`", "",
             f"torch {record['torch']}, python {record['python']}, {record['threads']} threads. "
             f"{FLOP_CONVENTION}.", "",
             "| model | overrides | input | descriptor | Params (M) | GFLOPs / image | paper |",
             "|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        over = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or "-"
        lines.append(f"| {r['model']} | {over} | {r['input_size'][0]}x{r['input_size'][1]} | {r['descriptor_dim']} "
                     f"| {r['params_total'] / 1e6:.2f} | {r['gflops']:.2f} | {r['paper']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=platform.node())
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    today = date.today().strftime("%Y%m%d")
    out = args.json or Path(__file__).parent / "results" / f"models_cost_{args.host}_{today}.json"
    record = {"host": args.host, "date": today, "command": "python " + " ".join(sys.argv),
              "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
              "flop_convention": FLOP_CONVENTION, "rows": measure()}
    atomic_write_json(record, out)
    atomic_write(out.with_suffix(".md"), lambda tmp: tmp.write_text(markdown(record)))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

"""Modelled time of the Vim-S selective scan, old kernel vs new, on every device with core figures.

An estimate from bench/scan_roofline.py (SASS instruction counts, MUFU and issue rates, the step
chain, DRAM), not a measurement: benchmarks/scan_gpu.py measures on a GPU. No GPU needed.

    python benchmarks/scan_roofline.py --out benchmarks/results/scan_roofline_vm_20261201
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cvgl_edge.bench import scan_roofline as model  # noqa: E402
from cvgl_edge.io import atomic_write, atomic_write_json  # noqa: E402

SHAPES = {"Vim-S batch 1": model.ScanShape(1, 768, 257, 16, 2), "Vim-S batch 64": model.ScanShape(64, 768, 257, 16, 2)}
COLUMNS = ("device", "shape", "kernel", "split", "us/scan", "GB/s", "% DRAM peak", "bound", "speed-up")


def rows() -> tuple[list[list[str]], list[dict]]:
    table, records = [], []
    for device in model.GPU_CORES:
        for label, shape in SHAPES.items():
            old, new = model.old_kernel(shape, device), model.new_kernel(shape, device)
            for est in (old, new):
                records.append({"shape": label, **est.to_dict()})
                table.append([device, label, est.kernel, str(est.split), f"{est.us:.1f}", f"{est.gbs:.0f}",
                              f"{est.pct_of_peak_bandwidth:.0f}", est.bound,
                              f"{old.us / est.us:.1f}x" if est is new else "-"])
    return table, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    args = parser.parse_args()
    table, records = rows()
    command = shlex.join(["python", *sys.argv])
    lines = [f"# Selective scan: modelled time per scan, old vs new kernel ({dt.date.today()})", "",
             "An ESTIMATE (cvgl_edge/bench/scan_roofline.py), not a measurement. fp16 data, fp32 state, "
             "Vim-S scan (Dc 768, L 257, N 16), softplus + D + z + bias.", "", f"Command: `{command}`", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    print("\n".join(lines))
    if args.out:
        text = "\n".join(lines) + "\n"
        atomic_write(args.out.with_suffix(".md"), lambda tmp: tmp.write_text(text))
        atomic_write_json({"command": command, "kind": "estimate", "rows": records}, args.out.with_suffix(".json"))


if __name__ == "__main__":
    main()

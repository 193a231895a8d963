"""Error of one FP16 ``cvgl.SelectiveScan`` node with fp16 vs fp32 parameters (A, D, delta_bias).

Why: FP16 exports used to round A, D and delta_bias to fp16 at the scan node; they now
keep them fp32, as the CUDA kernel does (fp16 data, fp32 parameters). This measures what
that changes on a Vim-S scan, in the standard-op body ONNX Runtime runs.

What: one SelectiveScan node (``scan.model.single_scan_model``, the exporter's contract,
its body inlined by ONNX Runtime on the CPU), Vim-S shape B=1, Dc=768, L=257, N=16,
softplus + delta_bias + D + z, forward direction. Graphs compared:

  fp32                     fp32 data, fp32 parameters (the FP32 export; the error floor)
  fp16 data, fp16 params   what FP16 exports wrote before (A, D, delta_bias rounded)
  fp16 data, fp32 params   what FP16 exports write now

Inputs, Mamba-like (Vim's initialisation): A = -exp(A_log), A_log = log(1..16) per
channel; dt log-uniform in [1e-3, 1e-1] per channel and delta_bias = softplus^-1(dt), so
softplus(delta + delta_bias) ~ 1e-3..1e-1 with delta = 0.1 * N(0, 1) (the projected part);
u, B, C, z ~ N(0, 1). D = 1 (init). Case ``perturbed`` stands in for trained parameters,
which are not small integers: A_log + 0.1 * N(0, 1) and D = 1 + 0.1 * N(0, 1) (with
A_log = log(1..16) and D = 1 every A and D is exact in fp16; only delta_bias rounds).

Reference: the same recurrence in float64 numpy on exactly the data the node is fed (fp16
data rounded once, as in the FP16 graph) and the fp32 parameters the model holds, so a
row's error is what its graph adds. Metrics over all seeds: normwise ||y - ref|| / ||ref||;
elementwise |y - ref| / |ref| (mean, p99, max, share above 1 %) over the elements with
|ref| >= 1 % of ref's RMS (a relative error of an output near zero says nothing).

Prints a markdown table; --out PATH also writes PATH.json and PATH.md (with the command,
machine and versions). A few seconds on a 2-core CPU. Recorded run (2-core VM,
onnxruntime 1.32): mean relative error 0.028-0.035 % -> 0.018 %, max 10-19 % -> 0.049 %
(the fp16 output rounding), results/scan_fp16_params_vm_20261201.md.

    .venv/bin/python benchmarks/scan_fp16_params.py --seeds 4 \
        --out benchmarks/results/scan_fp16_params_vm_20261201
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto  # noqa: E402

from cvgl_edge.bench.machine import load_average, machine_info  # noqa: E402
from cvgl_edge.export.scan.model import single_scan_model  # noqa: E402

SHAPE = dict(batch=1, channels=768, length=257, nstate=16)  # Vim-S, one direction
#: (row label, data type, parameter type) of the graphs compared.
GRAPHS = (
    ("fp32", TensorProto.FLOAT, TensorProto.FLOAT),
    ("fp16 data, fp16 params (old)", TensorProto.FLOAT16, TensorProto.FLOAT16),
    ("fp16 data, fp32 params (new)", TensorProto.FLOAT16, TensorProto.FLOAT),
)
NP_TYPES = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16}
PARAMS = ("A", "D", "delta_bias")
CASES = ("mamba_init", "perturbed")
#: Elements with |ref| below this share of ref's RMS are left out of elementwise relative errors.
NEAR_ZERO = 0.01


def scan_inputs(case: str, seed: int) -> dict[str, np.ndarray]:
    """fp32 inputs as a Vim layer holds them (see the module docstring)."""
    rng = np.random.default_rng(seed)
    b, dc, length, n = (SHAPE[k] for k in ("batch", "channels", "length", "nstate"))
    a_log = np.log(np.tile(np.arange(1, n + 1, dtype=np.float64), (dc, 1)))
    d_skip = np.ones(dc)
    if case == "perturbed":
        a_log = a_log + 0.1 * rng.standard_normal((dc, n))
        d_skip = d_skip + 0.1 * rng.standard_normal(dc)
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), dc))
    values = {
        "u": rng.standard_normal((b, dc, length)),
        "delta": 0.1 * rng.standard_normal((b, dc, length)),
        "A": -np.exp(a_log),
        "B": rng.standard_normal((b, n, length)),
        "C": rng.standard_normal((b, n, length)),
        "D": d_skip,
        "z": rng.standard_normal((b, dc, length)),
        "delta_bias": dt + np.log(-np.expm1(-dt)),  # softplus^-1(dt), as Mamba initialises it
    }
    return {k: v.astype(np.float32) for k, v in values.items()}


def reference(x: dict[str, np.ndarray]) -> np.ndarray:
    """The selective scan in float64 (softplus, delta_bias, D skip, silu(z) gate; forward)."""
    f = {k: v.astype(np.float64) for k, v in x.items()}
    delta = np.logaddexp(0.0, f["delta"] + f["delta_bias"][:, None])  # softplus, (B, Dc, L)
    h = np.zeros((f["u"].shape[0], *f["A"].shape))
    y = np.empty_like(f["u"])
    for t in range(f["u"].shape[2]):
        dt = delta[:, :, t, None]
        h = np.exp(dt * f["A"]) * h + dt * f["u"][:, :, t, None] * f["B"][:, None, :, t]
        y[:, :, t] = np.einsum("bdn,bn->bd", h, f["C"][:, :, t])
    y = y + f["D"][:, None] * f["u"]
    return y * f["z"] / (1.0 + np.exp(-f["z"]))


def cast_feeds(x: dict[str, np.ndarray], data_type: int, param_type: int) -> dict[str, np.ndarray]:
    """The node's inputs in the graph's types (each rounded once from fp32)."""
    return {k: v.astype(NP_TYPES[param_type if k in PARAMS else data_type]) for k, v in x.items()}


def run_graph(data_type: int, param_type: int, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """ONNX Runtime (CPU) on the one-node model; the output as float64."""
    model = single_scan_model(delta_softplus=True, data_type=data_type, param_type=param_type)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0].astype(np.float64)


def errors(ys: list[np.ndarray], refs: list[np.ndarray]) -> dict[str, float]:
    """Normwise and elementwise relative errors over all seeds."""
    y, ref = np.concatenate([a.ravel() for a in ys]), np.concatenate([a.ravel() for a in refs])
    rms = np.sqrt(np.mean(ref**2))
    kept = np.abs(ref) >= NEAR_ZERO * rms
    rel = np.abs(y - ref)[kept] / np.abs(ref)[kept]
    return {
        "normwise_rel": float(np.linalg.norm(y - ref) / np.linalg.norm(ref)),
        "mean_rel": float(rel.mean()),
        "p99_rel": float(np.percentile(rel, 99)),
        "max_rel": float(rel.max()),
        "share_above_1pct": float((rel > 0.01).mean()),
        "max_abs_over_rms": float(np.abs(y - ref).max() / rms),
        "elements": int(kept.sum()),
        "left_out_near_zero": int((~kept).sum()),
    }


def measure(case: str, seeds: list[int]) -> list[dict]:
    """One row per graph: its errors against the float64 reference of what it is fed."""
    rows = []
    for label, data_type, param_type in GRAPHS:
        ys, refs = [], []
        for seed in seeds:
            x = scan_inputs(case, seed)
            feeds = cast_feeds(x, data_type, param_type)
            model_view = {k: (x[k] if k in PARAMS else feeds[k]) for k in x}  # fp32 params, data as fed
            ys.append(run_graph(data_type, param_type, feeds))
            refs.append(reference(model_view))
        rows.append({"case": case, "graph": label, **errors(ys, refs)})
    return rows


def _percent(x: float) -> str:
    return f"{100 * x:.3g} %"


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table (percentages)."""
    lines = ["| case | graph | normwise rel | mean rel | p99 rel | max rel | elements > 1 % |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        cells = [_percent(r[k]) for k in ("normwise_rel", "mean_rel", "p99_rel", "max_rel", "share_above_1pct")]
        lines.append(f"| {r['case']} | {r['graph']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(stem: Path, report: dict, table: str) -> None:
    """``stem``.json (everything) and ``stem``.md (command, machine, table)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    machine = report["machine"]
    stem.with_suffix(".md").write_text("\n".join([
        "# FP16 SelectiveScan: fp16 vs fp32 parameters (A, D, delta_bias)", "",
        f"- Command: `{report['command']}`",
        f"- Machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores; "
        f"onnxruntime {report['onnxruntime']}, onnx {report['onnx']}, numpy {report['numpy']}, "
        f"python {machine['python']}",
        f"- Shape: {report['shape']}, seeds {report['seeds']}; method: benchmarks/scan_fp16_params.py docstring",
        "", table, "",
    ]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4, help="independent random inputs per case (default 4)")
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md (a path without suffix)")
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds))
    rows = [row for case in CASES for row in measure(case, seeds)]
    table = markdown(rows)
    print(table)
    if args.out:
        given = sys.argv[1:] if argv is None else argv
        report = {
            "command": shlex.join(["python", "benchmarks/scan_fp16_params.py", *given]),
            "machine": machine_info(), "load_average": load_average(),
            "onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
            "shape": SHAPE, "seeds": seeds, "near_zero_share_of_rms": NEAR_ZERO, "rows": rows,
        }
        write_outputs(args.out, report, table)


if __name__ == "__main__":
    main()

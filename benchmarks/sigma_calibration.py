"""How honest are the uncertainties the loop sends the autopilot? Per-axis errors against the sigmas.

The autopilots read ``horiz_accuracy`` / the pose covariance as a per-axis 1-sigma (ArduPilot:
R = accuracy^2 per axis, AP_NavEKF3_PosVelFusion.cpp:743; PX4: variances per axis), so an honest
sigma has about 68.3 % of |north error| and |east error| within it. This reads the fixes of
``benchmarks/localize_flights.py`` runs (every record the autopilot would get: status fix or
predicted) with their missions' truth, and reports the quantiles of |error| / sigma for the
position (``sigma_m``, times the sink's ``SIGMA_SCALE``) and for the velocity (``sigma_v_mps``;
truth velocity from the truth track's central differences).

    .venv/bin/python benchmarks/sigma_calibration.py --work /tmp/calib/flights --stem res2 \\
        --out benchmarks/results/sigma_calibration_vm_20261201
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from cvgl_edge.data.geomap import latlon_to_local
from cvgl_edge.data.mission import read_truth
from cvgl_edge.localize.position_sample import SIGMA_SCALE

QUANTILES = (50.0, 68.27, 90.0, 95.0)


def truth_velocity(truth: dict[int, dict[str, float]], frame: int) -> tuple[float, float]:
    """(v_north, v_east) of the viewed point at ``frame`` by central differences (one-sided at the ends)."""
    before, after = truth.get(frame - 1, truth[frame]), truth.get(frame + 1, truth[frame])
    dt = after["t"] - before["t"]
    if dt <= 0:
        return math.nan, math.nan
    east, north = latlon_to_local(after.get("view_lat", after["lat"]), after.get("view_lon", after["lon"]),
                                  (before.get("view_lat", before["lat"]), before.get("view_lon", before["lon"])))
    return float(north) / dt, float(east) / dt


def flight_ratios(fixes: Path) -> dict[str, list[float]]:
    """|axis error| / sigma for every record with a position, position and velocity."""
    truth = read_truth(fixes.parent / "truth.csv")
    out: dict[str, list[float]] = {"position": [], "velocity": [], "position_fix": [], "position_predicted": []}
    for line in fixes.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("lat") is None or rec.get("status") == "no_fix" or not rec.get("sigma_m"):
            continue
        gt = truth[rec["frame"]]
        east, north = latlon_to_local(rec["lat"], rec["lon"], (gt.get("view_lat", gt["lat"]),
                                                              gt.get("view_lon", gt["lon"])))
        sigma = rec["sigma_m"] * SIGMA_SCALE
        ratios = [abs(float(north)) / sigma, abs(float(east)) / sigma]
        out["position"] += ratios
        out[f"position_{rec['status']}"] += ratios
        if rec.get("sigma_v_mps") and rec.get("v_north") is not None:
            vn, ve = truth_velocity(truth, rec["frame"])
            out["velocity"] += [abs(rec["v_north"] - vn) / rec["sigma_v_mps"], abs(rec["v_east"] - ve) / rec["sigma_v_mps"]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="localize_flights.py --work folder")
    parser.add_argument("--stem", default="res", help="the results stem the fixes were written under")
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    args = parser.parse_args()
    pooled: dict[str, list[float]] = {}
    files = sorted(args.work.glob(f"seed*/fixes-*-{args.stem}.jsonl"))
    if not files:
        sys.exit(f"error: no seed*/fixes-*-{args.stem}.jsonl under {args.work}")
    for fixes in files:
        for key, values in flight_ratios(fixes).items():
            pooled.setdefault(key, []).extend(values)
    table = {key: {"axis_samples": len(v), "within_1_sigma": round(float(np.mean(np.array(v) <= 1.0)), 4),
                   **{f"q{q:g}": round(float(np.percentile(v, q)), 3) for q in QUANTILES}}
             for key, v in pooled.items() if v}
    run = args.work / f"{args.stem}.json"          # what localize_flights.py recorded about the run
    flights_run = json.loads(run.read_text()) if run.is_file() else {}
    record = {"command": " ".join(["python", *sys.argv]), "flights": [str(f) for f in files],
              "flights_run": {k: flights_run.get(k) for k in ("command", "date", "machine", "model_sha256")},
              "sigma_scale": SIGMA_SCALE, "ratios": table}
    lines = [f"# Position and velocity sigma against the truth ({len(files)} synthetic flights)", "",
             f"Command: `{record['command']}`; the flights: `{flights_run.get('command')}` "
             f"(model sha256 {str(flights_run.get('model_sha256'))[:12]}, {flights_run.get('date')}).",
             f"SIGMA_SCALE = {SIGMA_SCALE}. An honest per-axis 1-sigma has 68.3 % of |error| / sigma <= 1.", "",
             "| quantity | axis samples | within 1 sigma | " + " | ".join(f"q{q:g} of abs(err)/sigma" for q in QUANTILES)
             + " |", "|---|---:|---:|" + "---:|" * len(QUANTILES)]
    lines += [f"| {k} | {v['axis_samples']} | {100 * v['within_1_sigma']:.1f} % | "
              + " | ".join(str(v[f"q{q:g}"]) for q in QUANTILES) + " |" for k, v in table.items()]
    print("\n".join(lines))
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
        args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

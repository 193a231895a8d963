"""The demo flight, localised by the real loop, sent by the real MAVLink sink to simulated autopilots.

For each autopilot profile and message group, ``cvgl-edge localize``'s code path
(:func:`cvgl_edge.localize.run.run_localization`, ``--realtime`` at the mission's 5 fps)
runs over the demo's mission with a trained drone model and sends its fixes over UDP to a
simulated flight controller (tests/support/autopilot_sim.py: ArduPilot 4.6 / PX4 1.16 acceptance
rules under the documented parameters). Reported: messages received, positions fused, what
was rejected and why, resets, and how far the fused positions are from the loop's fixes and
from the truth.

    .venv/bin/python benchmarks/mavlink_autopilot_sim.py --model runs/demo/drone/last.pt \\
        --work /tmp/mavsim --out benchmarks/results/mavlink_autopilot_sim_vm_20261201
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package (tests/support/)

from tests.support.autopilot_sim import AutopilotPeer, SimulatedAutopilot, documented  # noqa: E402
from cvgl_edge.bench.machine import machine_info  # noqa: E402
from cvgl_edge.demo.settings import DemoSettings  # noqa: E402
from cvgl_edge.localize.run import MavlinkRequest, run_localization  # noqa: E402
from cvgl_edge.data.geomap import latlon_to_local  # noqa: E402
from cvgl_edge.localize.loop import LoopSettings  # noqa: E402
from cvgl_edge.data.mission import read_truth, synthetic_mission  # noqa: E402

GROUND_MSL_M = 408.0
RUNS = [("ardupilot", "gps_input", "gps_input"), ("ardupilot", "vision_position_estimate", "local"),
        ("ardupilot", "odometry", "local"), ("px4", "odometry", "local"), ("px4", "hil_gps", "hil_gps")]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(work: Path, model: Path) -> Path:
    """The demo's mission and its index with ``model`` (cached)."""
    from cvgl_edge.localize.index import build_index
    from cvgl_edge.runtime import open_encoder

    spec = DemoSettings(out=str(work)).mission_spec()
    folder = work / "mission"
    if not (folder / "truth.csv").is_file():
        synthetic_mission(folder, spec, video=False, show_progress=False)
    index = folder / "map.idx"
    if not index.is_file():
        encoder = open_encoder(model, "satellite", "torch", "cpu")
        build_index(folder / "map.tif", encoder, index, tile_size=spec.suggested_tile_m, overlap=0.5,
                    show_progress=False, encoder_source=str(model))
    return index


def distances(fused: list, fixes: list[dict], truth: dict) -> tuple[list[float], list[float]]:
    """Per fused position: metres to the nearest loop fix, and to the truth of that fix's frame."""
    to_fix, to_truth = [], []
    for f in fused:
        near = min(fixes, key=lambda r: float(np.hypot(*latlon_to_local(f.lat, f.lon, (r["lat"], r["lon"])))))
        to_fix.append(float(np.hypot(*latlon_to_local(f.lat, f.lon, (near["lat"], near["lon"])))))
        gt = truth[near["frame"]]
        to_truth.append(float(np.hypot(*latlon_to_local(f.lat, f.lon, (gt["view_lat"], gt["view_lon"])))))
    return to_fix, to_truth


def one_run(index: Path, model: Path, work: Path, autopilot: str, message: str, group: str) -> dict:
    port = free_port()
    sim = SimulatedAutopilot(autopilot, documented(autopilot, group))
    peer = AutopilotPeer(sim, port)
    fixes_path = work / f"fixes-{autopilot}-{message}.jsonl"
    link = MavlinkRequest(url=f"udpout:127.0.0.1:{port}", autopilot=autopilot, messages=message,
                          wait_s=5.0, ground_msl_m=GROUND_MSL_M)
    try:
        result = run_localization(index, "synthetic", fixes_path, LoopSettings(), model=model, realtime=True,
                                  mavlink=link, show_progress=False)
        time.sleep(0.5)
    finally:
        peer.close()
    records = [json.loads(line) for line in fixes_path.read_text().splitlines()]
    fixes = [r for r in records if r["lat"] is not None and r["status"] != "no_fix"]
    to_fix, to_truth = distances(sim.fused, fixes, read_truth(index.parent / "truth.csv"))
    return {"autopilot": autopilot, "message": message, "frames": result["frames"],
            "frames_with_position": len(fixes), "received": dict(peer.received), "fused": len(sim.fused),
            "rejected": dict(sim.rejected), "no_fix_messages": sim.no_fix, "ev_waiting": sim.ev_waiting, "resets": sim.resets,
            "yaw_fused": sim.yaw_fused, "aligned": sim.aligned_at is not None or autopilot != "ardupilot"
            or message != "gps_input", "origin": sim.origin, "sink": result["mavlink"],
            "fused_to_loop_fix_m_max": round(max(to_fix), 3) if to_fix else None,
            "fused_to_truth_m_median": round(float(np.median(to_truth)), 1) if to_truth else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    index = prepare(args.work, args.model)
    runs = [one_run(index, args.model, args.work, *run) for run in RUNS]
    record = {"command": " ".join(["python", *sys.argv]), "machine": machine_info(), "ground_msl_m": GROUND_MSL_M,
              "runs": runs}
    info = record["machine"]
    lines = ["# The demo flight through the real loop and MAVLink sink into simulated autopilots", "",
             f"Command: `{record['command']}`. Machine: {info.get('cpu_model')}, {info.get('logical_cores')} cores, "
             f"no GPU; Python {info.get('python')}, torch {info.get('torch')}. The loop plays the mission at its "
             "5 fps (`--realtime`); the sink sends at its default 10 Hz (fixes at once, predictions between); "
             "the simulated autopilots use the documented parameters (`cvgl-edge autopilot-params`).", "",
             "| autopilot | message | frames with a position | received | fused | rejected | no-fix msgs | resets | "
             "max fused-to-fix (m) | median fused-to-truth (m) |", "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in runs:
        received = sum(v for k, v in r["received"].items() if k.lower() == r["message"])
        rejected = "; ".join(f"{k}: {v}" for k, v in r["rejected"].items()) or "none"
        lines.append(f"| {r['autopilot']} | {r['message']} | {r['frames_with_position']} of {r['frames']} | {received} | "
                     f"{r['fused']} | {rejected} | {r['no_fix_messages']} | {r['resets']} | "
                     f"{r['fused_to_loop_fix_m_max']} | {r['fused_to_truth_m_median']} |")
    print("\n".join(lines))
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

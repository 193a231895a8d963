"""Several synthetic flights that end off the map: error on the map, "no fix" off it, pooled.

Why several: one flight's figures hang on a few decisions of the filter (a wrong first
acquisition tracked for a minute moves the p90 by hundreds of metres), so a change to the
loop is judged on flights over different worlds (one seed each), all through the code path
of ``cvgl-edge localize`` (:func:`cvgl_edge.localize.run.run_localization`).

For each seed: ``cvgl-edge index mission --seed S --exit-fraction F`` (the last share of the
frames flies off the map by its nearest edge), ``cvgl-edge index build`` with the model, then
the loop with ``--eval``. Missions and indexes are cached under ``--work`` (an index is
reused only when it was built with the same weights). Writes STEM.json and STEM.md.

    .venv/bin/python benchmarks/localize_flights.py --model runs/drone/last.pt \\
        --seeds 0 1 2 3 4 5 --out benchmarks/results/localize_flights_vm_20261122
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from cvgl_edge.bench.machine import load_average, machine_info
from cvgl_edge.timing import percentile
from cvgl_edge.io import atomic_write, atomic_write_json
from cvgl_edge.localize.run import run_localization
from cvgl_edge.localize.evaluate import split_by_map
from cvgl_edge.localize.loop import LoopSettings
from cvgl_edge.data.mission import MissionSpec, SyntheticMission, read_mission_spec, read_truth, synthetic_mission
from cvgl_edge.progress import console


def prepare_flight(work: Path, seed: int, args: argparse.Namespace, encoder: Any) -> Path:
    """Mission folder and index for one seed (cached per model weights); returns the index path."""
    from cvgl_edge.localize.index import build_index

    folder = work / f"seed{seed}"
    spec = MissionSpec(seed=seed, frames=args.frames, fps=args.fps, exit_fraction=args.exit_fraction)
    if not (folder / "truth.csv").is_file():
        synthetic_mission(folder, spec, video=False, show_progress=False)
    index_path = folder / f"map-{encoder.info.model_sha256[:12]}.idx"
    if not index_path.is_file():
        build_index(folder / "map.tif", encoder, index_path, tile_size=spec.suggested_tile_m, overlap=0.5,
                    show_progress=False, encoder_source=args.model)
    return index_path


def run_flight(index_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The loop over one flight; the on-map / off-map split and the records' errors.

    The fixes go to ``fixes-<index>-<results stem>.jsonl`` beside the index, so runs that
    share the cache but write different results keep their own records.
    """
    folder = index_path.parent
    fixes = folder / f"fixes-{index_path.stem}-{args.out.name}.jsonl"
    result = run_localization(index_path, "synthetic", fixes, LoopSettings(min_similarity=args.min_similarity),
                              model=args.model, threads=args.threads, evaluate=True, show_progress=False)
    records = [json.loads(line) for line in fixes.read_text().splitlines() if line.strip()]
    mission = SyntheticMission(read_mission_spec(folder))
    split = split_by_map(records, read_truth(folder / "truth.csv"), mission, mission.spec.suggested_tile_m / 2)
    return {"fps": result["fps"], "split": split, "plot": result["eval"].get("plot")}


def pooled(flights: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """All flights' frames together: on-map error percentiles and fix rate, off-map no-fix share."""
    errors = [e for f in flights.values() for e in f["split"]["on_map_errors_m"]]
    on_frames = sum(f["split"]["on_map"]["frames"] for f in flights.values())
    off = [f["split"]["off_map"] for f in flights.values()]
    off_frames, off_nofix = sum(o["frames"] for o in off), sum(o["no_fix"] for o in off)
    return {"on_map_frames": on_frames, "on_map_with_position": len(errors),
            "on_map_fix_rate": round(len(errors) / on_frames, 4) if on_frames else None,
            "on_map_median_error_m": round(percentile(errors, 50), 2) if errors else None,
            "on_map_p90_error_m": round(percentile(errors, 90), 2) if errors else None,
            "on_map_within_50m": round(sum(e <= 50.0 for e in errors) / on_frames, 4) if on_frames else None,
            "off_map_frames": off_frames, "off_map_no_fix": off_nofix,
            "off_map_no_fix_share": round(off_nofix / off_frames, 4) if off_frames else None}


def markdown(record: dict[str, Any]) -> str:
    a = record["args"]
    lines = [f"# Flights off the map: {len(record['flights'])} synthetic missions", "",
             f"Model `{a['model']}`; each mission {a['frames']} frames at {a['fps']} fps, the last "
             f"{a['exit_fraction']:.0%} flying off the map by its nearest edge; loop floor "
             f"`--min-similarity {a['min_similarity']}`. On the map: viewed point at least half a tile "
             "inside it. Errors in metres.", "",
             "| seed | on-map frames | with position | median err | p90 err | off-map frames | off map: no fix | fps |",
             "|---|---|---|---|---|---|---|---|"]
    for seed, f in record["flights"].items():
        on, off = f["split"]["on_map"], f["split"]["off_map"]
        lines.append(f"| {seed} | {on['frames']} | {on['with_position']} ({100 * (on['fix_rate'] or 0):.0f} %) | "
                     f"{on.get('median_error_m')} | {on.get('p90_error_m')} | {off['frames']} | {off['no_fix']} "
                     f"({100 * (off['no_fix_share'] or 0):.0f} %) | {f['fps']} |")
    p = record["pooled"]
    lines += [f"| **all** | {p['on_map_frames']} | {p['on_map_with_position']} "
              f"({100 * (p['on_map_fix_rate'] or 0):.0f} %) | {p['on_map_median_error_m']} | "
              f"{p['on_map_p90_error_m']} | {p['off_map_frames']} | {p['off_map_no_fix']} "
              f"({100 * (p['off_map_no_fix_share'] or 0):.0f} %) | |", "",
              f"On-map frames within 50 m of the truth: {100 * (p['on_map_within_50m'] or 0):.0f} %.", "",
              f"Machine load before/after: {record['load_before']} / {record['load_after']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="drone-view checkpoint (.pt) or ONNX model")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--exit-fraction", type=float, default=0.2)
    p.add_argument("--min-similarity", type=float, default=-1.0, help="loop floor (default -1: none)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", type=Path, default=Path("runs/flights"))
    p.add_argument("--out", type=Path, required=True, help="results stem (.json, .md)")
    args = p.parse_args(argv)
    if not args.model.is_file():
        raise SystemExit(f"model not found: {args.model}")
    args.work.mkdir(parents=True, exist_ok=True)
    from cvgl_edge.runtime import open_encoder

    load_before = load_average()
    flights: dict[int, dict[str, Any]] = {}
    with open_encoder(args.model, "satellite", None, "cpu", threads=args.threads) as encoder:
        model_sha = encoder.info.model_sha256
        index_paths = {seed: prepare_flight(args.work, seed, args, encoder) for seed in args.seeds}
    for seed, index_path in index_paths.items():
        flights[seed] = run_flight(index_path, args)
        console.print(f"seed {seed}: {flights[seed]['split']['on_map']} off map {flights[seed]['split']['off_map']}")
    record = {"script": "benchmarks/localize_flights.py", "command": " ".join([sys.executable, *sys.argv]),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
              "load_before": load_before, "load_after": load_average(), "model_sha256": model_sha,
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "flights": flights, "pooled": pooled(flights)}
    atomic_write_json(record, args.out.with_suffix(".json"))
    atomic_write(args.out.with_suffix(".md"), lambda tmp: tmp.write_text(markdown(record)))
    console.print(markdown(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

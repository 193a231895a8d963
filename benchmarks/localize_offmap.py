"""Off-map flight: does the loop say "no fix" when the drone leaves the map, rather than a wrong fix?

Runs ``cvgl-edge localize``'s code path (:func:`cvgl_edge.localize.run.run_localization`)
twice over a mission with an exit (``cvgl-edge index mission --exit-fraction 0.2``): without
a best-match floor, and with the floor that the first run's ``--eval`` suggests (or
``--min-similarity``). Frames are split by the truth: on the map (the viewed point at least
half a tile inside) and off the map; for off-map frames it counts "no fix" against frames
given a position (each a wrong fix: the drone is not over the map), for on-map frames the
error statistics and the fix rate. Writes STEM.json, STEM.md, STEM.png (floor run) and
STEM_nofloor.png.

    cvgl-edge index mission --out runs/offmap/mission --frames 200 --fps 2 --exit-fraction 0.2
    cvgl-edge index build --map runs/offmap/mission/map.tif --checkpoint runs/drone/last.pt \\
        --out runs/offmap/mission/map.idx --tile-size 87
    .venv/bin/python benchmarks/localize_offmap.py --index runs/offmap/mission/map.idx \\
        --out benchmarks/results/localize_offmap_vm_20261122
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from cvgl_edge.bench.machine import load_average, machine_info
from cvgl_edge.io import atomic_write, atomic_write_json
from cvgl_edge.localize.run import run_localization
from cvgl_edge.localize.evaluate import split_by_map
from cvgl_edge.localize.index import load_index
from cvgl_edge.localize.loop import LoopSettings
from cvgl_edge.data.mission import SyntheticMission, read_mission_spec
from cvgl_edge.progress import console


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, required=True, help="index of a mission with an exit")
    p.add_argument("--out", type=Path, required=True, help="results stem (.json, .md, .png)")
    p.add_argument("--model", type=Path, default=None, help="default: the index's model")
    p.add_argument("--min-similarity", type=float, default=None, help="default: suggested by the no-floor run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", type=Path, default=Path("runs/offmap"))
    args = p.parse_args(argv)

    index = load_index(args.index)
    folder = Path(index.meta["map"]).parent
    mission = SyntheticMission(read_mission_spec(folder))
    from cvgl_edge.data.mission import read_truth

    truth = read_truth(folder / "truth.csv")
    margin = index.meta["tile_size_px"] / 2
    args.work.mkdir(parents=True, exist_ok=True)
    load_before = load_average()
    runs: dict[str, Any] = {}
    floor = args.min_similarity
    for name in ("no_floor", "floor"):
        fixes = args.work / f"fixes_{name}.jsonl"
        value = -1.0 if name == "no_floor" else floor
        result = run_localization(args.index, "synthetic", fixes, LoopSettings(min_similarity=value),
                                  model=args.model, threads=args.threads, evaluate=True, show_progress=False)
        import json

        records = [json.loads(line) for line in fixes.read_text().splitlines() if line.strip()]
        result["split"] = split_by_map(records, truth, mission, margin)
        result["min_similarity"] = value
        runs[name] = result
        if name == "no_floor" and floor is None:
            floor = result["eval"]["similarity"].get("suggested_min_similarity")
            if floor is None:
                raise SystemExit("the no-floor run suggested no --min-similarity (no wrong or no correct matches)")
        console.print(f"{name} ({value}): {result['split']}")
    shutil.copyfile(runs["floor"]["eval"]["plot"], args.out.with_suffix(".png"))
    shutil.copyfile(runs["no_floor"]["eval"]["plot"], args.out.with_name(args.out.name + "_nofloor.png"))
    record = {"script": "benchmarks/localize_offmap.py", "command": " ".join([sys.executable, *sys.argv]),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
              "load_before": load_before, "load_after": load_average(), "index": index.summary(),
              "mission": mission.record()["spec"], "on_map_margin_px": margin, "runs": runs}
    atomic_write_json(record, args.out.with_suffix(".json"))
    atomic_write(args.out.with_suffix(".md"), lambda tmp: tmp.write_text(markdown(record)))
    console.print(f"written: {args.out.with_suffix('.md')}")
    return 0


def markdown(record: dict[str, Any]) -> str:
    ix, ms = record["index"], record["mission"]
    lines = ["# Off-map flight: \"no fix\" vs wrong fixes", "",
             f"Mission: {ms['frames']} frames at {ms['fps']} fps, the last {ms['exit_fraction']:.0%} flying off the "
             f"map by the nearest edge; index {ix['tiles']} tiles of {ix['tile_size_m']:.0f} m ({ix['model_name']}, "
             f"{ix['descriptor_dim']}-d). On-map frames: viewed point at least half a tile inside the map; "
             f"{record['runs']['floor']['split']['edge_frames']} frames within half a tile of the edge are in neither "
             "group.", "",
             "| run | off-map frames | off map: no fix | off map: wrong position | on-map frames | on map: with "
             "position | on-map median err (m) | on-map p90 err (m) | fps |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in record["runs"].items():
        sp, on = r["split"], r["split"]["on_map"]
        off = sp["off_map"]
        lines.append(f"| {name} (min_similarity {r['min_similarity']}) | {off['frames']} | {off['no_fix']} "
                     f"({100 * (off['no_fix_share'] or 0):.0f} %) | {off['with_position']} | {on['frames']} | "
                     f"{on['with_position']} ({100 * (on['fix_rate'] or 0):.0f} %) | {on.get('median_error_m')} | "
                     f"{on.get('p90_error_m')} | {r['fps']} |")
    sim = record["runs"]["no_floor"]["eval"]["similarity"]
    lines += ["", f"Best-match cosine without a floor: correct {sim.get('correct_similarity')}, wrong "
                  f"{sim.get('wrong_similarity')}; suggested --min-similarity {sim.get('suggested_min_similarity')}.",
              "", "Trajectories: `" + Path(record["command"].split("--out ")[-1].split()[0]).name + ".png` (floor), "
              "`..._nofloor.png`.", "", f"Machine load before/after: {record['load_before']} / {record['load_after']}",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

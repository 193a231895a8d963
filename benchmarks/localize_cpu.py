"""Localisation loop on this CPU: error, fix rate, loop rate and per-stage latency; search vs index size.

Parts (each recorded with its settings in one JSON, a Markdown table and a PNG):

* ``loop``: a trained checkpoint (``cvgl-edge train --data synthetic-drone``) on a synthetic mission it
  never saw (``cvgl-edge index mission``, indexed with ``cvgl-edge index build``): every
  frame through the loop with PyTorch, with and without the best-match floor; error
  against truth (metres), fix rate, frames/s, per-stage latency; the trajectory PNG. Then
  the same index through ONNX Runtime (the checkpoint's satellite branch exported here).
* ``small``: the paper-size preset (geossm-small, untrained weights: speed does not depend
  on them) for a few frames with both backends, on a small index of the mission map.
* ``search``: random unit vectors (the descriptor size of the trained model) in a flat
  inner-product index and the compressed IVF-PQ option, 1e3 .. 1e6 tiles: time per query
  (global), windowed search as used while tracking, and the IVF-PQ recall of a noisy copy.

    .venv/bin/python benchmarks/localize_cpu.py --checkpoint runs/drone/last.pt \\
        --mission runs/localize/mission --index runs/localize/mission/map.idx \\
        --out benchmarks/results/localize_cpu_vm_20261122

Threads: torch and FAISS run with ``--threads`` (default 1): on a shared 2-core VM more
threads mostly add contention. The record holds the machine, its load and the command.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from cvgl_edge.bench.machine import load_average, machine_info
from cvgl_edge.timing import percentile
from cvgl_edge.io import atomic_write, atomic_write_json
from cvgl_edge.localize.evaluate import fix_errors, plot_trajectory, similarity_split
from cvgl_edge.data.geomap import read_map
from cvgl_edge.localize.index import TileIndex, build_index, load_index
from cvgl_edge.localize.loop import LoopSettings, run_loop
from cvgl_edge.data.mission import SyntheticMission, read_mission_spec, read_truth
from cvgl_edge.localize.search import TileSearcher
from cvgl_edge.localize.sources import SyntheticSource
from cvgl_edge.progress import console


def loop_run(index: TileIndex, encoder: Any, mission: SyntheticMission, frames: int | None,
             min_similarity: float | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    settings = LoopSettings(hfov_deg=mission.spec.hfov_deg, max_frames=frames,
                            min_similarity=-1.0 if min_similarity is None else min_similarity)
    summary = run_loop(index, encoder, SyntheticSource(mission), [], settings, on_record=records.append)
    return summary.to_dict(), records


def evaluate(records: list[dict[str, Any]], truth: dict, index: TileIndex, mission: SyntheticMission) -> dict:
    inside = [r for r in records if mission.inside_map(r["frame"], margin_px=index.meta["tile_size_px"] / 2)]
    outside = [r for r in records if not mission.inside_map(r["frame"])]
    return {"all": fix_errors([dict(r) for r in records], truth),
            "inside_map": fix_errors([dict(r) for r in inside], truth),
            "outside_map": {"frames": len(outside), "with_position": sum(r["lat"] is not None for r in outside)},
            "similarity": similarity_split(records, truth, index.tiles["lat"], index.tiles["lon"],
                                           0.5 * float(index.meta["tile_size_m"]))}


def part_loop(args: argparse.Namespace, record: dict[str, Any], out: Path) -> None:
    import torch

    from cvgl_edge.export.onnx.exporter import export_branch, save_onnx
    from cvgl_edge.export.onnx.metadata import state_dict_sha256
    from cvgl_edge.models import load_checkpoint
    from cvgl_edge.runtime import model_encoder, open_encoder

    index = load_index(args.index)
    mission = SyntheticMission(read_mission_spec(args.mission))
    truth = read_truth(Path(args.mission) / "truth.csv")
    model = load_checkpoint(args.checkpoint)
    enc = model_encoder(model, "satellite")
    base, recs = loop_run(index, enc, mission, None, None)
    floor = args.min_similarity
    if floor is None:
        floor = evaluate(recs, truth, index, mission)["similarity"].get("suggested_min_similarity")
    floored, frecs = loop_run(index, enc, mission, None, floor)
    runs = {"torch_no_floor": {**base, "min_similarity": None, "eval": evaluate(recs, truth, index, mission)},
            "torch_floor": {**floored, "min_similarity": floor, "eval": evaluate(frecs, truth, index, mission)}}
    title = "min_similarity {}: median {} m, p90 {} m, fix rate {}".format(
        floor, *(runs["torch_floor"]["eval"]["all"].get(k) for k in ("median_error_m", "p90_error_m", "fix_rate")))
    plot_trajectory(out.with_suffix(".png"), read_map(index.meta["map"]), frecs, truth, title=title)
    plot_trajectory(out.with_name(out.name + "_nofloor.png"), read_map(index.meta["map"]), recs, truth,
                    title="no floor: median {} m, p90 {} m, fix rate {}".format(
                        *(runs["torch_no_floor"]["eval"]["all"].get(k)
                          for k in ("median_error_m", "p90_error_m", "fix_rate"))))
    onnx_path = Path(args.work) / "nano-satellite.onnx"
    save_onnx(export_branch(model, "satellite", model_sha256=state_dict_sha256(model)), onnx_path)
    ort_enc = open_encoder(onnx_path, "satellite", threads=args.threads)
    ort, orecs = loop_run(index, ort_enc, mission, args.ort_frames, floor)
    runs["onnxruntime_floor"] = {**ort, "min_similarity": floor, "eval": evaluate(orecs, truth, index, mission)}
    ort_enc.close()
    record["loop"] = {"checkpoint": str(args.checkpoint), "index": str(args.index), "mission": str(args.mission),
                      "index_summary": index.summary(), "mission_spec": mission.record()["spec"],
                      "torch_threads": torch.get_num_threads(), "runs": runs,
                      "plot": str(out.with_suffix(".png")), "plot_no_floor": str(out.with_name(out.name + "_nofloor.png"))}
    train_json = Path(args.checkpoint).with_suffix(".json")
    if train_json.is_file():
        record["training"] = json.loads(train_json.read_text())


def part_small(args: argparse.Namespace, record: dict[str, Any]) -> None:
    """geossm-small: a few frames per backend against a small index (built with the same encoder)."""
    import torch

    from cvgl_edge.models import build_model
    from cvgl_edge.runtime import model_encoder, open_encoder

    mission = SyntheticMission(read_mission_spec(args.mission))
    tile = mission.spec.suggested_tile_m
    crop = Path(args.work) / "small_map.tif"
    from cvgl_edge.data.geomap import write_geotiff

    gm = read_map(Path(args.mission) / "map.tif")
    side = int(2 * tile)                          # 2x2 tiles at no overlap: the loop's costs, not search's
    r0 = c0 = gm.shape[0] // 2 - side // 2
    a = mission.map_affine()
    write_geotiff(crop, gm.image[r0:r0 + side, c0:c0 + side], (a[0], 0.0, a[2] + c0 * a[0], 0.0, a[4], a[5] + r0 * a[4]))
    out: dict[str, Any] = {"frames": args.small_frames, "note": "untrained weights; index of 4 tiles", "runs": {}}
    torch.manual_seed(0)
    encoders = {"torch": lambda: model_encoder(build_model("geossm-small").eval(), "satellite")}
    if args.small_onnx and Path(args.small_onnx).is_file():
        encoders["onnxruntime"] = lambda: open_encoder(args.small_onnx, "satellite", threads=args.threads)
        out["onnx"] = str(args.small_onnx)
    for name, make in encoders.items():
        enc = make()
        idx = build_index(crop, enc, Path(args.work) / f"small_{name}.idx", tile_size=tile, overlap=0.0,
                          batch_size=1, show_progress=False)
        summary, _ = loop_run(idx, enc, mission, args.small_frames, None)
        out["runs"][name] = {**summary, "input_size": list(enc.info.input_size),
                             "descriptor_dim": enc.info.descriptor_dim}
        enc.close()
        console.print(f"geossm-small {name}: {summary['latency_ms']['encode']}")
    record["small"] = out


def part_search(args: argparse.Namespace, record: dict[str, Any], dim: int) -> None:
    import faiss

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    biggest = max(sizes)
    x = np.empty((biggest, dim), np.float32)
    for i in range(0, biggest, 100_000):
        chunk = rng.standard_normal((min(100_000, biggest - i), dim)).astype(np.float32)
        x[i:i + len(chunk)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    for n in sizes:
        data = x[:n]
        truth_ids = rng.choice(n, args.queries, replace=False)
        noisy = data[truth_ids] + 0.5 / math.sqrt(dim) * rng.standard_normal((args.queries, dim)).astype(np.float32)
        q = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
        row: dict[str, Any] = {"tiles": n, "descriptor_dim": dim}
        flat = faiss.IndexFlatIP(dim)
        flat.add(data)
        row["flat"] = {**_time_queries(lambda v, index=flat: index.search(v, 10), q), "bytes": n * dim * 4,
                       "recall_at_1": _recall(flat, q, truth_ids)}
        # Windowed search (tracking): tiles on a square grid, 30 m apart, a 300 m window.
        grid = int(math.ceil(math.sqrt(n)))
        east = (np.arange(n) % grid) * 30.0
        north = (np.arange(n) // grid) * 30.0
        lat0, lon0 = 47.0, 8.0
        tiles = {"lat": lat0 + north / 111_320.0, "lon": lon0 + east / (111_320.0 * math.cos(math.radians(lat0))),
                 "rows": np.zeros(n, np.int32), "cols": np.zeros(n, np.int32), "bounds": np.zeros((n, 4))}
        index = TileIndex(flat, tiles, {"kind": "flat", "descriptor_dim": dim, "origin": [lat0, lon0]})
        searcher = TileSearcher(index)
        cx, cy = float(east.mean()), float(north.mean())
        win = _time_queries(lambda v, s=searcher: s.window_search(v[0], cx, cy, 300.0, 10), q)
        row["window_300m"] = {**win, "tiles_in_window": int(len(searcher.window_ids(cx, cy, 300.0)))}
        if n >= 1000:
            t0 = time.perf_counter()
            train = data[rng.choice(n, min(n, args.ivf_train), replace=False)]
            nlist = int(max(1, min(int(4 * math.sqrt(n)), n // 39)))
            ivf = faiss.index_factory(dim, f"IVF{nlist},PQ64np", faiss.METRIC_INNER_PRODUCT)  # as make_faiss
            ivf.train(train)
            ivf.add(data)
            ivf.nprobe = min(nlist, 16)
            build_s = time.perf_counter() - t0
            row["ivfpq"] = {**_time_queries(lambda v: ivf.search(v, 10), q), "nlist": nlist, "pq_m": 64,
                            "nprobe": ivf.nprobe, "train_vectors": len(train), "build_s": round(build_s, 1),
                            "bytes": int(faiss.serialize_index(ivf).nbytes), "recall_at_1": _recall(ivf, q, truth_ids)}
            del ivf
        del flat, searcher, index
        rows.append(row)
        console.print(f"search {n}: flat {row['flat']['p50_ms']} ms, window {row['window_300m']['p50_ms']} ms, "
                      f"ivfpq {row.get('ivfpq', {}).get('p50_ms')} ms")
    record["search"] = {"threads": args.threads, "queries": args.queries, "rows": rows,
                        "note": "query = a stored vector plus noise (cos ~0.9), recall@1 = that vector ranked first"}


def _time_queries(fn, q: np.ndarray) -> dict[str, float]:
    fn(q[:1])
    times = []
    for i in range(len(q)):
        t0 = time.perf_counter()
        fn(q[i:i + 1])
        times.append((time.perf_counter() - t0) * 1e3)
    return {"p50_ms": round(percentile(times, 50), 4), "p90_ms": round(percentile(times, 90), 4)}


def _recall(index: Any, q: np.ndarray, truth_ids: np.ndarray) -> float:
    _, ids = index.search(q, 1)
    return round(float(np.mean(ids[:, 0] == truth_ids)), 4)


def markdown(record: dict[str, Any]) -> str:
    lines = ["# Localisation loop on the CPU VM", "", "Commands (parts merge into one record):", "",
             *[f"    {c}" for c in record.get("commands", [record["command"]])], "",
             f"Machine: {record['machine'].get('cpu_model')}, {record['machine'].get('usable_cores')} usable cores, "
             f"load before/after {record['load_before']} / {record['load_after']}", ""]
    if "loop" in record:
        lp = record["loop"]
        ix = lp["index_summary"]
        lines += ["## Loop on an unseen synthetic mission (trained geossm-nano)", "",
                  f"Index: {ix['tiles']} tiles of {ix['tile_size_m']:.0f} m, {ix['descriptor_dim']}-d; "
                  f"{lp['runs']['torch_no_floor']['frames']} frames; torch threads {lp['torch_threads']}.", "",
                  "| run | frames | fps | median err (m) | p90 err (m) | fix rate | inside: fix rate | "
                  "off map: with position | encode p50 (ms) | search p50 (ms) | total p50 (ms) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in lp["runs"].items():
            ev, lat = r["eval"], r["latency_ms"]
            lines.append(f"| {name} (floor {r['min_similarity']}) | {r['frames']} | {r['fps']} | "
                         f"{ev['all'].get('median_error_m')} | {ev['all'].get('p90_error_m')} | "
                         f"{ev['all'].get('fix_rate')} | {ev['inside_map'].get('fix_rate')} | "
                         f"{ev['outside_map']['with_position']}/{ev['outside_map']['frames']} | "
                         f"{lat['encode']['p50']} | {lat['search']['p50']} | {lat['total']['p50']} |")
        sim = lp["runs"]["torch_no_floor"]["eval"]["similarity"]
        lines += ["", f"Best-match cosine (no floor): correct {sim.get('correct_similarity')}, "
                      f"wrong {sim.get('wrong_similarity')}; suggested floor {sim.get('suggested_min_similarity')}.",
                  "", f"Trajectory: `{Path(lp['plot']).name}` (with floor), `{Path(lp['plot_no_floor']).name}`.", ""]
        stages = lp["runs"]["torch_floor"]["latency_ms"]
        lines += ["Per-stage latency, torch (ms): " + ", ".join(f"{k} p50 {v['p50']} / p90 {v['p90']}"
                                                              for k, v in stages.items()), ""]
    if "small" in record:
        lines += ["## geossm-small (paper size), a few frames", "", "| backend | input | frames | fps | "
                  "preprocess p50 | encode p50 | search p50 | total p50 (ms) |", "|---|---|---|---|---|---|---|---|"]
        for name, r in record["small"]["runs"].items():
            lat = r["latency_ms"]
            lines.append(f"| {name} | {r['input_size']} | {r['frames']} | {r['fps']} | {lat['preprocess']['p50']} | "
                         f"{lat['encode']['p50']} | {lat['search']['p50']} | {lat['total']['p50']} |")
        lines.append("")
    if "search" in record:
        lines += [f"## Search time vs index size ({record['search']['threads']} thread)", "",
                  "| tiles | flat p50 (ms) | flat MB | window 300 m p50 (ms) | IVF-PQ p50 (ms) | IVF-PQ MB | "
                  "IVF-PQ recall@1 |", "|---|---|---|---|---|---|---|"]
        for r in record["search"]["rows"]:
            iv = r.get("ivfpq", {})
            lines.append(f"| {r['tiles']:,} | {r['flat']['p50_ms']} | {r['flat']['bytes'] / 1e6:.0f} | "
                         f"{r['window_300m']['p50_ms']} | {iv.get('p50_ms')} | "
                         f"{iv['bytes'] / 1e6:.1f} | {iv.get('recall_at_1')} |" if iv else
                         f"| {r['tiles']:,} | {r['flat']['p50_ms']} | {r['flat']['bytes'] / 1e6:.0f} | "
                         f"{r['window_300m']['p50_ms']} | - | - | - |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--mission", type=Path)
    p.add_argument("--index", type=Path)
    p.add_argument("--out", type=Path, required=True, help="results stem (writes .json, .md, .png)")
    p.add_argument("--work", type=Path, default=Path("runs/localize/bench"))
    p.add_argument("--parts", default="loop,small,search")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--min-similarity", type=float, default=None, help="default: suggested by the no-floor run")
    p.add_argument("--ort-frames", type=int, default=60)
    p.add_argument("--small-frames", type=int, default=3)
    p.add_argument("--small-onnx", type=Path, default=None, help="an exported geossm-small satellite ONNX")
    p.add_argument("--sizes", default="1e3,1e4,1e5,1e6")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--ivf-train", type=int, default=20_000)
    p.add_argument("--dim", type=int, default=512)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    json_path = args.out.with_suffix(".json")
    record: dict[str, Any] = json.loads(json_path.read_text()) if json_path.is_file() else {}
    command = " ".join([sys.executable, *sys.argv])
    record["commands"] = [c for c in record.get("commands", []) if c != command] + [command]
    record.update({"script": "benchmarks/localize_cpu.py", "command": command,
                   "machine": machine_info(), "load_before": load_average(), "threads": args.threads,
                   "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    seconds = record.setdefault("part_seconds", {})
    for name, run in (("loop", lambda: part_loop(args, record, args.out)), ("small", lambda: part_small(args, record)),
                      ("search", lambda: part_search(args, record, args.dim))):
        if name in parts:
            t0 = time.perf_counter()
            run()
            seconds[name] = round(time.perf_counter() - t0, 1)
            console.print(f"part {name}: {seconds[name]} s")
            atomic_write_json(record, json_path)
    record["load_after"] = load_average()
    atomic_write_json(record, json_path)
    atomic_write(args.out.with_suffix(".md"), lambda tmp: tmp.write_text(markdown(record)))
    console.print(f"written: {json_path}, {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The demo's stages, each returning the JSON-able record metrics.json keeps for it.

Every stage can be re-entered: training resumes from its last.pt, the index build from
its finished chunks, and the runner (:mod:`cvgl_edge.demo.run`) skips stages whose record
and files are already there when ``--resume`` is given.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cvgl_edge.data.mission import synthetic_mission
from cvgl_edge.demo.settings import DEMO_MODEL, DemoSettings
from cvgl_edge.errors import CvglError
from cvgl_edge.eval.embed import embed_pairs
from cvgl_edge.eval.evaluate import metrics_record
from cvgl_edge.eval.metrics import cross_view_metrics
from cvgl_edge.localize.index import build_index
from cvgl_edge.localize.loop import LoopSettings
from cvgl_edge.localize.run import run_localization
from cvgl_edge.progress import console
from cvgl_edge.runtime import open_encoder


def train_stage(settings: DemoSettings, kind: str, resume: bool) -> dict[str, Any]:
    """Train one of the two models (``kind`` "ground" or "drone"); untrained baseline first on a fresh run."""
    from cvgl_edge.train.loop import Trainer

    start = time.perf_counter()
    cfg = settings.train_config() if kind == "ground" else settings.drone_config()
    trainer = Trainer(cfg, resume=resume and (Path(cfg.out) / "last.pt").is_file())
    baseline = None
    if trainer.step == 0:
        query, satellite = embed_pairs(trainer.pair_model, trainer.val_set, device=trainer.device,
                                       show_progress=settings.show_progress,
                                       description=f"untrained {kind} model")
        baseline = cross_view_metrics(query, satellite)
    result = trainer.run()
    if not result.final_metrics:
        return {"interrupted": True, "steps": result.steps, "checkpoint": str(result.last_checkpoint)}
    return metrics_record(
        result.final_metrics, model=DEMO_MODEL, model_config=trainer.model.config.to_dict(),
        params=sum(p.numel() for p in trainer.model.parameters()), data=cfg.data, polar=cfg.polar,
        query_view=trainer.query_view, loss=cfg.loss, lr=cfg.lr,
        train_pairs=len(trainer.train_set), val_pairs=len(trainer.val_set), chance_r1=100.0 / len(trainer.val_set),
        untrained=baseline, steps=result.steps, train_seconds=round(result.seconds, 1),
        total_seconds=round(time.perf_counter() - start, 1), checkpoint=str(result.last_checkpoint),
        interrupted=result.interrupted,
    )


def export_stage(settings: DemoSettings, checkpoints: dict[str, Path]) -> dict[str, Any]:
    """ONNX fp32 export + verification (the `cvgl-edge export` code path) of each model's branches.

    The ground model: both branches; the drone model: its aerial ("satellite") branch, the one
    the loop runs. Each model gets its own folder (both are geossm-nano, so file names would clash).
    """
    from cvgl_edge.export.pipeline import ExportRequest, run_export

    start = time.perf_counter()
    files = []
    for kind, branch in (("ground", "both"), ("drone", "satellite")):
        if kind not in checkpoints or (kind == "ground" and not settings.export_ground):
            continue
        request = ExportRequest(checkpoint=checkpoints[kind], out=settings.out_dir / "export" / kind, branch=branch,
                                precision="fp32", verify_pairs=settings.verify_pairs)
        for report in run_export(request):
            ver = report.get("verification", {})
            files.append({"model": kind, "branch": report["branch"], "file": report["file"],
                          "bytes": report.get("file_bytes"), "parity_cosine_min": report["parity"]["cosine_min"],
                          "verification": ver.get("status"), "r1_drop": ver.get("r1_drop"),
                          "cosine_min": ver.get("cosine_min"), "verify_pairs": ver.get("pairs"),
                          "verify_report": ver.get("report")})
    loop_model = next((f["file"] for f in files if f["model"] == "drone"), None)
    return {"files": files, "loop_model": loop_model, "precision": "fp32",
            "seconds": round(time.perf_counter() - start, 1)}


def mission_stage(settings: DemoSettings) -> dict[str, Any]:
    """The synthetic map (GeoTIFF) and flight with ground truth (frames are rendered again by the loop)."""

    start = time.perf_counter()
    folder = settings.out_dir / "mission"
    mission = synthetic_mission(folder, settings.mission_spec(), video=False, images=False,
                                show_progress=settings.show_progress)
    rec = mission.record()
    return {"folder": str(folder), "map": str(folder / "map.tif"), "truth": str(folder / "truth.csv"),
            "frames": mission.spec.frames, "fps": mission.spec.fps, "map_px": mission.spec.map_px,
            "metres_per_px": mission.spec.metres_per_px, "tile_m": rec["suggested_tile_m"],
            "seconds": round(time.perf_counter() - start, 1)}


def index_stage(settings: DemoSettings, model: Path, mission: dict[str, Any]) -> dict[str, Any]:
    """Embed the mission map's tiles with the exported aerial branch (ONNX Runtime); resumable."""

    start = time.perf_counter()
    out = Path(mission["folder"]) / "map.idx"
    with open_encoder(model, "satellite", threads=settings.threads) as encoder:
        index = build_index(mission["map"], encoder, out, tile_size=mission["tile_m"], overlap=0.5,
                            batch_size=32, show_progress=settings.show_progress, encoder_source=model)
    summary = index.summary()
    return {"index": str(out), "tiles": summary["tiles"], "tile_size_m": summary["tile_size_m"],
            "descriptor_dim": summary["descriptor_dim"], "model": str(model),
            "seconds": round(time.perf_counter() - start, 1)}


def localize_stage(settings: DemoSettings, model: Path, index: dict[str, Any]) -> dict[str, Any]:
    """The loop over the synthetic flight (ONNX Runtime for an .onnx model), evaluated against the
    truth (``localize --eval``)."""

    start = time.perf_counter()
    folder = settings.out_dir / "localize"
    folder.mkdir(parents=True, exist_ok=True)
    result = run_localization(Path(index["index"]), "synthetic", folder / "fixes.jsonl", LoopSettings(),
                              model=model, threads=settings.threads, evaluate=True,
                              show_progress=settings.show_progress)
    result["seconds_total"] = round(time.perf_counter() - start, 1)
    return result


def require(path: str | Path | None, what: str) -> Path:
    """A file an earlier stage should have written (a clear error if a partial run removed it)."""
    if path is None or not Path(path).is_file():
        raise CvglError(f"{what} not found ({path}); run the demo again without --resume")
    return Path(path)


def note(message: str) -> None:
    console.print(f"[bold cyan]demo[/bold cyan] {message}")

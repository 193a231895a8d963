"""Run the demo's stages in order, keep OUT/metrics.json current after each, and continue with --resume.

OUT/metrics.json keeps the ground->satellite record at its top level (R@1, directions,
untrained, steps, ... as before) and one section per later stage: ``drone``, ``export``,
``mission``, ``index``, ``localize``; ``completed`` lists the finished stages and
``summary`` the lines printed at the end.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cvgl_edge.demo import stages
from cvgl_edge.demo.settings import STAGES, DemoSettings
from cvgl_edge.demo.summary import summary_lines
from cvgl_edge.errors import CvglError
from cvgl_edge.io import atomic_write_json

METRICS = "metrics.json"


def _previous(settings: DemoSettings, resume: bool) -> dict[str, Any]:
    """The record of an earlier run with the same settings (only with --resume)."""
    path = settings.out_dir / METRICS
    if not resume or not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except ValueError:
        return {}
    mine = json.loads(json.dumps(_settings_record(settings)))
    return record if record.get("settings") == mine else {}


def _settings_record(settings: DemoSettings) -> dict[str, Any]:
    return {k: v for k, v in asdict(settings).items() if k not in ("show_progress", "out", "threads", "device")}


def _done(record: dict[str, Any], stage: str) -> bool:
    """A stage counts as done when it is listed as completed and the files it wrote are still there."""
    if stage not in record.get("completed", []):
        return False
    section = record if stage == "ground" else record.get(stage, {})
    paths = {"ground": [section.get("checkpoint")], "drone": [section.get("checkpoint")],
             "export": [f.get("file") for f in section.get("files", [])],
             "mission": [section.get("map"), section.get("truth")], "index": [section.get("index")],
             "localize": [section.get("out")]}[stage]
    return all(p and Path(p).is_file() for p in paths)


def run_demo(settings: DemoSettings, resume: bool = False) -> dict[str, Any]:
    """Every stage (see :mod:`cvgl_edge.demo.stages`); writes and returns OUT/metrics.json's record."""
    start = time.perf_counter()
    out = settings.out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CvglError(f"cannot create the demo folder {out}: {exc.strerror}") from exc
    record: dict[str, Any] = _previous(settings, resume)
    record["settings"] = _settings_record(settings)
    completed: list[str] = [s for s in record.get("completed", []) if _done(record, s)]
    seconds: dict[str, float] = record.get("stage_seconds", {})

    def save() -> None:
        record["completed"], record["stage_seconds"] = completed, seconds
        atomic_write_json(record, out / METRICS)

    def stage(name: str, work) -> bool:
        """Run ``work()`` unless already done; False when training was interrupted."""
        if name in completed:
            stages.note(f"{name}: done in an earlier run, skipped")
            return True
        # what depends on this stage is redone too (e.g. a new export means a new index)
        completed[:] = [s for s in completed if STAGES.index(s) < STAGES.index(name)]
        t0 = time.perf_counter()
        result = work()
        seconds[name] = round(time.perf_counter() - t0, 1)
        if result.get("interrupted"):
            record["interrupted"], record["steps"] = True, result["steps"]
            record["interrupted_stage"] = name
            save()
            return False
        if name == "ground":
            record.update(result)
        else:
            record[name] = result
        completed.append(name)
        save()
        return True

    stages.note("1/6 training the ground->satellite model (street panoramas vs satellite tiles)")
    if not stage("ground", lambda: stages.train_stage(settings, "ground", resume)):
        return record
    record.pop("interrupted", None)
    if settings.localize:
        stages.note("2/6 training the drone-view model the localisation loop uses (drone frames vs map tiles)")
        if not stage("drone", lambda: stages.train_stage(settings, "drone", resume)):
            return record
        record.pop("interrupted", None)
    if settings.export:
        stages.note("3/6 exporting to ONNX and verifying every file against its checkpoint")
        checkpoints = {"ground": Path(record["checkpoint"])}
        if "drone" in record:
            checkpoints["drone"] = Path(record["drone"]["checkpoint"])
        stage("export", lambda: stages.export_stage(settings, checkpoints))
    if settings.localize:
        # the verified ONNX file through ONNX Runtime; without the export stage, the checkpoint (PyTorch)
        loop_model = stages.require(record["export"].get("loop_model") if settings.export
                                    else record["drone"].get("checkpoint"), "the drone-view model")
        stages.note("4/6 writing the synthetic mission (map + flight with ground truth)")
        stage("mission", lambda: stages.mission_stage(settings))
        stages.note("5/6 indexing the map tiles with the exported model (ONNX Runtime)")
        stage("index", lambda: stages.index_stage(settings, loop_model, record["mission"]))
        stages.note("6/6 localising the flight with ONNX Runtime and comparing with the truth")
        stage("localize", lambda: stages.localize_stage(settings, loop_model, record["index"]))
    record.pop("interrupted", None)
    record["total_seconds"] = round(sum(seconds.values()), 1)  # every stage, earlier runs' included
    record["wall_seconds_this_run"] = round(time.perf_counter() - start, 1)
    record["summary"] = summary_lines(record, settings)
    save()
    return record

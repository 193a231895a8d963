"""One run of the localisation loop as ``cvgl-edge localize`` does it (the demo and the
benchmarks/ scripts run it too): the MAVLink request, the run itself under ``OUT.lock``, its
progress bar and its ``--eval``.

Heavy modules (faiss, rasterio, pymavlink, an encoder's runtime) are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from cvgl_edge.data.geomap import read_map
from cvgl_edge.data.mission import read_truth
from cvgl_edge.errors import CvglError
from cvgl_edge.localize.autopilot import parse_messages, profile
from cvgl_edge.localize.evaluate import fix_errors, plot_trajectory, similarity_split
from cvgl_edge.localize.index import load_index
from cvgl_edge.localize.loop import run_loop
from cvgl_edge.localize.mavlink_sink import MavlinkSettings, MavlinkSink
from cvgl_edge.localize.sinks import JsonlSink
from cvgl_edge.localize.sources import check_source_options, open_source
from cvgl_edge.locks import hold_output
from cvgl_edge.progress import console, make_progress
from cvgl_edge.runtime import check_backend, open_encoder


def open_satellite_encoder(model: Path, backend: Optional[str], device: str, threads: Optional[int]) -> Any:
    """The satellite-branch encoder of a .pt, .onnx or .engine file (``backend``: from the suffix when None)."""

    if not model.exists():
        raise CvglError(f"model not found: {model}")
    return open_encoder(model, "satellite", check_backend(backend) if backend else None, device, threads=threads)


def _truth_path(source: str, mission_folder: Optional[Path], truth: Optional[Path]) -> Path:
    if truth is not None:
        return truth
    candidates = []
    if source == "synthetic" and mission_folder is not None:
        candidates.append(mission_folder / "truth.csv")
    elif not source.startswith("camera:"):
        p = Path(source)
        candidates += [p / "truth.csv", p.parent / "truth.csv"] if p.is_dir() else [p.parent / "truth.csv"]
    for c in candidates:
        if c.is_file():
            return c
    raise CvglError("--eval needs ground truth: pass --truth truth.csv (frame, lat, lon columns)")


@dataclass
class MavlinkRequest:
    """The MAVLink options of `cvgl-edge localize`, checked before any work; the index adds the origin."""

    url: str
    autopilot: str = "ardupilot"
    messages: Optional[str] = None
    rate_hz: float = 10.0
    wait_s: Optional[float] = None
    system_id: int = 1
    component_id: int = 197
    ground_msl_m: Optional[float] = None

    def check(self, source: str, altitude: Optional[float]) -> None:
        """Everything a user can get wrong, in one line each (the URL and rates: MavlinkSettings.check)."""
        if self.ground_msl_m is None:
            raise CvglError("--mavlink needs --ground-elevation: the ground's height above mean sea level at the map "
                            "(m); GPS altitude and the EKF origin are MSL")
        if altitude is None and source != "synthetic":
            raise CvglError("--mavlink needs --altitude (m above ground) for frames without altitude telemetry: "
                            "the autopilot takes 3-D positions only")
        self.settings((0.0, 0.0)).check()

    def settings(self, origin: tuple[float, float]) -> MavlinkSettings:
        chosen = profile(self.autopilot)
        return MavlinkSettings(url=self.url, autopilot=chosen, messages=parse_messages(self.messages, chosen),
                               map_origin=origin, ground_msl_m=float(self.ground_msl_m or 0.0), rate_hz=self.rate_hz,
                               system_id=self.system_id, component_id=self.component_id,
                               wait_heartbeat_s=self.wait_s)


def run_localization(index_path: Path, source: str, out: Path, settings: Any, *, model: Optional[Path] = None,
                     backend: Optional[str] = None, device: str = "cpu", threads: Optional[int] = None,
                     mavlink: Optional[MavlinkRequest] = None, realtime: bool = False,
                     fps: float = 5.0, evaluate: bool = False, truth: Optional[Path] = None,
                     show_progress: bool = True, camera_timeout_s: float = 30.0) -> dict[str, Any]:
    """One loop run as ``cvgl-edge localize`` does it (also used by the demo); returns its summary record.

    ``settings`` is a :class:`cvgl_edge.localize.loop.LoopSettings`; a synthetic mission
    source supplies the camera's field of view when ``settings.hfov_deg`` is None.
    Everything is checked (settings, index, truth file) before ``OUT.lock`` is taken, and the
    lock is held for the whole run: a second run on the same ``out`` is refused in one line
    instead of interleaving its fixes with this one's.
    """
    import time
    from contextlib import ExitStack, closing


    settings.check()
    check_source_options(fps, camera_timeout_s)
    index = load_index(index_path)
    model_path = model or (Path(index.meta["encoder_source"]) if index.meta.get("encoder_source") else None)
    if model_path is None:
        raise CvglError("say which model to run with --model (the index does not record one)")
    if not model_path.exists():
        raise CvglError(f"model not found: {model_path}")
    mission_folder = Path(index.meta["map"]).parent if index.meta.get("map") else None
    truth_file = _truth_path(source, mission_folder, truth) if evaluate else None
    truth_rows = read_truth(truth_file) if truth_file is not None else None
    with hold_output(out, "localize run"):
        with ExitStack() as stack:
            encoder = stack.enter_context(closing(open_satellite_encoder(model_path, backend, device, threads)))
            index.check_encoder(encoder.info)
            src = stack.enter_context(closing(open_source(
                source, mission_folder=mission_folder, realtime=realtime, fps=fps,
                on_event=lambda msg: console.print(f"[yellow]{msg}"), camera_timeout_s=camera_timeout_s)))
            if settings.hfov_deg is None and getattr(src, "hfov_deg", None) is not None:
                settings.hfov_deg = src.hfov_deg  # the synthetic mission knows its camera
            link = stack.enter_context(closing(MavlinkSink(mavlink.settings(index.origin)))) if mavlink else None
            sinks = [stack.enter_context(closing(JsonlSink(out)))] + ([link] if link else [])
            records: list[dict[str, Any]] = []
            summary = _loop_with_progress(index, encoder, src, sinks, settings, records, show_progress)
        floor = settings.min_similarity if settings.min_similarity is not None else index.meta.get("min_similarity")
        result: dict[str, Any] = {"index": str(index_path), "model": str(model_path), "source": source,
                                  "backend": encoder.info.backend, "out": str(out), "min_similarity": floor,
                                  "hfov_deg": settings.hfov_deg, **summary.to_dict()}
        if link is not None:
            result["mavlink"] = {"url": mavlink.url, "autopilot": mavlink.autopilot, **link.state.summary()}
        if truth_rows is not None:
            result["eval"] = _evaluate(records, truth_rows, truth_file, index, out)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return result


def _loop_with_progress(index: Any, encoder: Any, src: Any, sinks: list[Any], settings: Any,
                        records: list[dict[str, Any]], show_progress: bool) -> Any:
    """``run_loop`` under a progress bar; every record is also appended to ``records`` (for --eval)."""

    total = settings.max_frames or (len(src.mission) if hasattr(src, "mission") else
                                    len(src.files) if hasattr(src, "files") else None)
    with make_progress(transient=True) as bar:
        task = bar.add_task(f"localising {src.name}", total=total, stats="", visible=show_progress)

        def on_record(rec: dict[str, Any]) -> None:
            records.append(rec)
            pos = f"{rec['lat']:.6f},{rec['lon']:.6f}" if rec["lat"] is not None else "-"
            bar.update(task, advance=1, stats=f"{rec['status']} {pos} conf {rec['confidence']:.2f} "
                                              f"{rec['latency_ms']['total']:.0f} ms")

        return run_loop(index, encoder, src, sinks, settings, on_record)


def _evaluate(records: list[dict[str, Any]], truth: dict[int, dict[str, float]], truth_file: Path, index: Any,
              out: Path) -> dict[str, Any]:

    ev = fix_errors(records, truth)
    ev["truth"] = str(truth_file)
    ev["similarity"] = similarity_split(records, truth, index.tiles["lat"], index.tiles["lon"],
                                        0.5 * float(index.meta["tile_size_m"]))
    map_path = Path(index.meta.get("map") or "")
    if map_path.is_file():
        plot = out.with_suffix(".png")
        plot_trajectory(plot, read_map(map_path), records, truth,
                        title=f"median {ev.get('median_error_m')} m, p90 {ev.get('p90_error_m')} m")
        ev["plot"] = str(plot)
    return ev

"""``cvgl-edge index build|info|set|mission``, ``cvgl-edge localize`` and ``cvgl-edge autopilot-params``.

Heavy modules (torch, faiss, rasterio, pymavlink) are imported inside the commands so
that ``cvgl-edge --help`` stays fast. Everything a user can get wrong is checked before
any output file is created, so a refused run leaves nothing half-written. The loop run itself
is :func:`cvgl_edge.localize.run.run_localization`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from cvgl_edge import checks
from cvgl_edge.cli.common import BACKENDS_HELP, write_json
from cvgl_edge.data.geomap import read_map
from cvgl_edge.data.mission import MissionSpec, synthetic_mission
from cvgl_edge.data.tiles import plan_tiles
from cvgl_edge.errors import CvglError
from cvgl_edge.io import check_output_folder, check_outputs
from cvgl_edge.localize.autopilot import parameters_for, parse_messages, profile
from cvgl_edge.localize.index import KINDS, build_index, load_index, set_min_similarity
from cvgl_edge.localize.loop import LoopSettings
from cvgl_edge.localize.run import MavlinkRequest, open_satellite_encoder, run_localization
from cvgl_edge.localize.sources import check_source_options
from cvgl_edge.progress import console

index_app = typer.Typer(help="Build and inspect satellite tile indexes.\n\n"
                             "Also makes a synthetic map and drone flight to try them on.",
                        no_args_is_help=True)


@index_app.command("build")
def index_build(
    map_path: Path = typer.Option(..., "--map", help="GeoTIFF, or an image with a world file (.pgw/.jgw/.wld) or --corners."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Model: checkpoint .pt, ONNX .onnx or engine .engine (satellite branch)."),
    out: Path = typer.Option(..., "--out", help="Index file to write (e.g. map.idx)."),
    tile_size: float = typer.Option(90.0, help="Tile side (in --unit); match the camera's ground footprint."),
    overlap: float = typer.Option(0.5, help="Tile overlap: < 1 a fraction of the tile, >= 1 in --unit."),
    unit: str = typer.Option("m", help="Unit of --tile-size/--overlap: m or px."),
    kind: str = typer.Option("flat", help="flat (exact inner product) or ivfpq (compressed, for large areas)."),
    nlist: Optional[int] = typer.Option(None, help="ivfpq: number of inverted lists (default ~4*sqrt(tiles))."),
    pq_m: Optional[int] = typer.Option(None, help="ivfpq: PQ sub-quantisers (must divide the descriptor size)."),
    corners: Optional[str] = typer.Option(None, help="NORTH,WEST,SOUTH,EAST of a plain north-up image (degrees)."),
    crs: Optional[str] = typer.Option(None, help="CRS of a world file's coordinates (default lon/lat degrees), e.g. EPSG:32632."),
    backend: Optional[str] = typer.Option(None, help=f"{BACKENDS_HELP} (default: from the model's suffix)."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    threads: Optional[int] = typer.Option(None, min=1, help="CPU threads for the encoder."),
    batch_size: int = typer.Option(32, min=1, help="Tiles per encoder call."),
    min_similarity: Optional[float] = typer.Option(None, help="Default best-match cosine floor stored in the index (see `localize --eval`)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the index summary to this JSON file."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Cut a map into tiles and embed them (resumable).

    The map is georeferenced; tiles are embedded with the satellite encoder."""

    check_outputs({"--out": out, "--json": json_out}, {"--map": map_path, "--checkpoint": checkpoint})
    if kind not in KINDS:
        raise CvglError(f"unknown --kind {kind!r}; choose {', '.join(KINDS)}")
    if min_similarity is not None:
        checks.min_similarity(min_similarity)
    geomap = read_map(map_path, corners, crs)
    plan_tiles(geomap, tile_size, overlap, unit)  # refuse a bad tiling before loading the model
    encoder = open_satellite_encoder(checkpoint, backend, device, threads)
    with encoder:
        batch = min(batch_size, encoder.max_batch or batch_size)
        index = build_index(geomap, encoder, out, tile_size=tile_size, overlap=overlap, unit=unit, kind=kind,
                            batch_size=batch, nlist=nlist, pq_m=pq_m, show_progress=progress,
                            encoder_source=checkpoint, min_similarity=min_similarity,
                            on_event=lambda msg: console.print(f"[yellow]{msg}"))
    summary = index.summary()
    console.print(f"{summary['tiles']} tiles of {summary['tile_size_m']:.1f} m ({summary['kind']}, "
                  f"{summary['descriptor_dim']}-d, model {summary['model_name']}) -> {out}")
    write_json(summary, json_out, said="written:")


@index_app.command("info")
def index_info(
    index_path: Path = typer.Argument(..., help="Index file written by `cvgl-edge index build`."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the summary to this JSON file."),
) -> None:
    """Check an index file (checksum) and print what it holds."""
    import json


    check_outputs({"--json": json_out}, {"INDEX": index_path})
    summary = load_index(index_path).summary()
    typer.echo(json.dumps(summary, indent=2))
    write_json(summary, json_out, said="written:")


@index_app.command("set")
def index_set(
    index_path: Path = typer.Argument(..., help="Index file written by `cvgl-edge index build`."),
    min_similarity: Optional[float] = typer.Option(None, help="Best-match cosine floor for `localize` (see its --eval)."),
    clear_min_similarity: bool = typer.Option(False, help="Remove the stored floor."),
) -> None:
    """Change an index's stored loop defaults.

    No re-embedding; the index file is rewritten atomically."""

    if min_similarity is None and not clear_min_similarity:
        raise CvglError("nothing to set: pass --min-similarity X or --clear-min-similarity")
    set_min_similarity(index_path, None if clear_min_similarity else min_similarity)
    console.print(f"{index_path}: min_similarity = {None if clear_min_similarity else min_similarity}")


@index_app.command("mission")
def index_mission(
    out: Path = typer.Option(..., "--out", help="Folder for map.tif, frames/, flight.mp4, telemetry.csv, truth.csv."),
    seed: int = typer.Option(0, help="Seed of the world and the flight."),
    map_px: int = typer.Option(1536, min=64, help="Map side in pixels (1 m per pixel)."),
    frames: int = typer.Option(150, min=1, help="Frames to render."),
    fps: float = typer.Option(5.0, help="Frame rate of the flight."),
    speed: float = typer.Option(12.0, help="Ground speed, m/s."),
    altitude: float = typer.Option(150.0, help="Altitude above ground, m."),
    tilt: float = typer.Option(0.0, help="Camera tilt from nadir, degrees (0 = nadir)."),
    exit_fraction: float = typer.Option(0.0, help="Share of the flight spent flying off the map (by the nearest edge)."),
    video: bool = typer.Option(True, help="Also write flight.mp4."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Write a synthetic map and drone flight to try the loop on.

    Deterministic (seeded), with ground truth."""

    check_output_folder(out, "--out")
    spec = MissionSpec(seed=seed, map_px=map_px, frames=frames, fps=fps, speed_mps=speed, altitude_m=altitude,
                       tilt_deg=tilt, exit_fraction=exit_fraction)
    synthetic_mission(out, spec, video=video, show_progress=progress)
    console.print(f"mission written to {out}; index it with --tile-size {spec.suggested_tile_m:g} "
                  f"(the frames' footprint), then `cvgl-edge localize --source synthetic` or --source {out}/frames")


def autopilot_params_command(
    autopilot: str = typer.Option("ardupilot", help="ardupilot or px4."),
    mavlink_messages: Optional[str] = typer.Option(None, help="The messages `localize --mavlink-messages` sends (default: the autopilot's default)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Autopilot parameters that `localize --mavlink` needs.

    With why each is needed; set them before flight."""
    import json


    chosen = profile(autopilot)
    messages = parse_messages(mavlink_messages, chosen)
    params = parameters_for(chosen, messages)
    if json_out:
        typer.echo(json.dumps([{"name": p.name, "value": p.value, "why": p.why} for p in params], indent=2))
        return
    console.print(autopilot_params_table(chosen.name, messages, params))


def autopilot_params_table(autopilot: str, messages: tuple[str, ...], params: Any) -> Any:
    """The `autopilot-params` table: name and value on one line each, the reason wraps (80 columns)."""
    from rich.table import Table

    table = Table(title=f"{autopilot} parameters for {', '.join(messages)}")
    table.add_column("parameter", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("why", overflow="fold")
    for p in params:
        table.add_row(p.name, f"{p.value:g}", p.why)
    return table


def localize_command(
    index_path: Path = typer.Option(..., "--index", help="Index file written by `cvgl-edge index build`."),
    source: str = typer.Option(..., help="Frames: a video file, a folder of images, camera:N (or camera:URL), or synthetic."),
    out: Path = typer.Option(..., help="Fixes as JSON lines (one per frame)."),
    model: Optional[Path] = typer.Option(None, help="Encoder: .pt, .onnx or .engine (default: the one the index was built with)."),
    backend: Optional[str] = typer.Option(None, help=f"{BACKENDS_HELP} (default: from the model's suffix)."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    threads: Optional[int] = typer.Option(None, min=1, help="CPU threads for the encoder."),
    mavlink: Optional[str] = typer.Option(None, help="Send fixes over MAVLink, e.g. udpout:127.0.0.1:14550 or /dev/ttyACM0,115200 (needs --ground-elevation and --altitude)."),
    autopilot: str = typer.Option("ardupilot", help="Autopilot the MAVLink output is shaped for: ardupilot (4.5+) or px4 (1.14+); README lists the parameters each needs."),
    mavlink_messages: Optional[str] = typer.Option(None, help="Comma-separated: ardupilot: gps_input (default), vision_position_estimate, odometry; px4: odometry (default), vision_position_estimate, hil_gps."),
    mavlink_rate: float = typer.Option(10.0, help="MAVLink position rate (Hz; ardupilot 5 to 20, px4 6 to 20: slower and the autopilot times the source out, faster and it drops samples)."),
    mavlink_wait: Optional[float] = typer.Option(None, help="Refuse to start unless the chosen autopilot's heartbeat (not a ground station's) arrives within this many seconds."),
    mavlink_sysid: int = typer.Option(1, help="MAVLink system id to send as: the vehicle's (PX4 takes HIL_GPS only from its own MAV_SYS_ID)."),
    mavlink_compid: int = typer.Option(197, help="MAVLink component id (197: visual-inertial odometry)."),
    ground_elevation: Optional[float] = typer.Option(None, help="Ground height above mean sea level at the map (m): GPS messages carry MSL altitude and the EKF origin is set at this height."),
    realtime: bool = typer.Option(False, help="Play a video/folder at its frame rate, dropping frames the loop cannot keep up with."),
    hfov: Optional[float] = typer.Option(None, help="Camera horizontal field of view, degrees (with altitude: crop the tile footprint)."),
    altitude: Optional[float] = typer.Option(None, help="Altitude above ground (m) when the frames carry none."),
    heading: Optional[float] = typer.Option(None, help="Camera heading (deg) when the frames carry none."),
    fps: float = typer.Option(5.0, help="Frame rate of a folder of images without telemetry."),
    camera_timeout: float = typer.Option(30.0, help="Seconds a lost camera (camera:N/URL) is retried before the run ends; 0 waits for ever (the autopilot flies on meanwhile)."),
    top_k: int = typer.Option(10, min=2, help="Candidates per search."),
    min_similarity: Optional[float] = typer.Option(None, help="Best-match cosine below this gives no fix (default: the index's; -1 disables)."),
    max_frames: Optional[int] = typer.Option(None, min=1, help="Stop after this many frames."),
    evaluate: bool = typer.Option(False, "--eval", help="Compare with ground truth: error in metres, fix rate, fps; a PNG plot."),
    truth: Optional[Path] = typer.Option(None, help="Ground truth CSV for --eval (default: truth.csv of the mission)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the run summary (and --eval results) to this JSON file."),
    progress: bool = typer.Option(True, help="Show progress."),
) -> None:
    """Locate camera frames against a tile index.

    Emits filtered fixes as JSON lines and, with --mavlink, to an autopilot.

    One run per --out at a time (a second is refused). An unreadable frame of a folder is
    skipped and counted; NaN or infinite telemetry is unknown for that frame (see the records'
    ``telemetry_ignored``).
    """

    check_outputs({"--out": out, "--json": json_out, "--eval plot": out.with_suffix(".png") if evaluate else None},
                  {"--index": index_path, "--model": model, "--truth": truth,
                   "--source": Path(source) if Path(source).exists() else None})
    settings = LoopSettings(top_k=top_k, hfov_deg=hfov, altitude_m=altitude, heading_deg=heading,
                            max_frames=max_frames, min_similarity=min_similarity).check()
    check_source_options(fps, camera_timeout)
    link = None
    if mavlink:
        link = MavlinkRequest(url=mavlink, autopilot=autopilot, messages=mavlink_messages, rate_hz=mavlink_rate,
                              wait_s=mavlink_wait, system_id=mavlink_sysid, component_id=mavlink_compid,
                              ground_msl_m=ground_elevation)
        link.check(source, altitude)
    result = run_localization(index_path, source, out, settings, model=model, backend=backend, device=device,
                              threads=threads, mavlink=link, realtime=realtime, fps=fps,
                              evaluate=evaluate, truth=truth, show_progress=progress,
                              camera_timeout_s=camera_timeout)
    console.print(f"{result['frames']} frames in {result['seconds']:.1f} s ({result['fps']} fps): "
                  f"{result['fixes']} fixes, {result['predicted']} predicted, {result['no_fix']} without a fix, "
                  f"{result['dropped']} dropped, {result['skipped']} skipped (unreadable), "
                  f"{result['telemetry_ignored']} with telemetry ignored (not finite) -> {out}")
    if evaluate:
        ev = result["eval"]
        console.print(f"error median {ev.get('median_error_m')} m, p90 {ev.get('p90_error_m')} m; "
                      f"{100 * (ev['fix_rate'] or 0):.0f}% frames with a position; plot: {ev.get('plot')}")
        sim = ev["similarity"]
        if "suggested_min_similarity" in sim:
            console.print(f"best-match cosine: correct p50 {sim['correct_similarity']['p50']}, wrong p50 "
                          f"{sim['wrong_similarity']['p50']}; suggested --min-similarity "
                          f"{sim['suggested_min_similarity']} (keeps {100 * sim['correct_kept']:.0f}% correct, "
                          f"{100 * sim['wrong_kept']:.0f}% wrong)")
    write_json(result, json_out, said="written:")

"""One ``cvgl-edge bench`` run from checked options to the finished record.

Order of work: check every option (nothing loaded yet) -> load the model (checkpoint, or a
seeded preset) -> decide which variants can run here (one line per skipped one) -> count
Params/FLOPs -> export missing artifacts into the cache -> open both branch encoders of
every variant -> time pre-processing -> time all cells interleaved -> (Jetson) power ->
R@1 of every variant on the fixed evaluation set -> record.

SOURCE may also be an export folder or one of its .onnx / .engine files
(:mod:`cvgl_edge.bench.exported`): then nothing is loaded or exported, the model is what the
files record, and PyTorch is never imported (the deployment install has none). A checkpoint or
a preset needs PyTorch, imported where it is used.
"""

from __future__ import annotations

import copy
import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cvgl_edge.bench import accuracy as acc
from cvgl_edge.bench import exported as exports
from cvgl_edge.bench import plan, tegrastats
from cvgl_edge.bench.anchors import anchor_rows
from cvgl_edge.bench.clocks import HostClock, clock_for
from cvgl_edge.bench.jetson import clock_warning, jetson_info
from cvgl_edge.bench.machine import load_average, machine_info
from cvgl_edge.bench.memory import MemoryProbe, rss_mb
from cvgl_edge.bench.preprocess import time_preprocess
from cvgl_edge.bench.record import SCHEMA, summarize
from cvgl_edge.bench.runner import Cell, RunPolicy, run_interleaved, run_once
from cvgl_edge.errors import CvglError
from cvgl_edge.eval.evaluate import check_same_export, trained_data_options
from cvgl_edge.export.sample_images import sample_images
from cvgl_edge.extras import is_missing_torch, needs
from cvgl_edge.progress import console, make_progress
from cvgl_edge.runtime import model_encoder, open_encoder
from cvgl_edge.runtime.artifacts import backend_for

if TYPE_CHECKING:
    import torch


@dataclass
class BenchRequest:
    """The options of ``cvgl-edge bench`` (see command.py for their help texts)."""

    checkpoint: Path | None = None  # a checkpoint, or an export folder / .onnx / .engine file
    model: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    backend: str | None = None  # None: torch, or for an export its files' backend (a folder: onnxruntime)
    device: str = "cpu"
    precision: str = "fp32"
    branch: str = "both"
    batch_sizes: str | None = None
    policy: RunPolicy = field(default_factory=RunPolicy)
    threads: int | None = None
    torch_mode: str = "eager"
    eval_data: str | None = None
    eval_pairs: int = 100
    artifacts: Path | None = None
    estimate: str | None = None
    power_seconds: float = 5.0
    seed: int = 0
    show_progress: bool = True
    command: str = "cvgl-edge bench"


@dataclass
class Checked:
    """Options after parsing: what to run."""

    variants: list[plan.Variant]
    device: str
    branches: list[str]
    batch_sizes: list[int]
    estimate_devices: list[str]
    exported: Path | None = None     # SOURCE: an export folder or one of its files
    exported_model: str | None = None  # the <model> part of its file names


def check_request(request: BenchRequest) -> Checked:
    """Every option parsed and checked before any work (one-line CvglError otherwise)."""
    if (request.checkpoint is None) == (request.model is None):
        raise CvglError("give a CHECKPOINT or --model PRESET (one of them), or an export folder / .onnx / "
                        ".engine file")
    exported = Path(request.checkpoint) if exports.is_exported(request.checkpoint) else None
    if request.overrides and request.checkpoint is not None and exported is None:
        raise CvglError("--set applies to --model presets only (a checkpoint fixes its model)")
    device = plan.parse_device(request.device)
    backends = plan.parse_backends(request.backend or (backend_for(exported) if exported else "torch"))
    precisions = plan.parse_precisions(request.precision)
    branches = plan.parse_branch(request.branch)
    batch_sizes = plan.parse_batch_sizes(request.batch_sizes, device)
    request.policy.check()
    if request.eval_pairs < 0:
        raise CvglError("--eval-pairs must be >= 0 (0 skips the accuracy check)")
    if request.threads is not None and request.threads < 1:
        raise CvglError("--threads must be >= 1")
    if request.power_seconds <= 0:
        raise CvglError("--power-seconds must be > 0")
    if exported is not None:
        model = exports.check_exported(exported, request, backends)
        return Checked(plan.variants(backends, precisions), device, branches, batch_sizes, [], exported, model)
    if request.checkpoint is not None and not Path(request.checkpoint).is_file():
        raise CvglError(f"checkpoint not found: {request.checkpoint}")
    require_torch(request)
    estimate_devices: list[str] = []
    if request.estimate:
        from cvgl_edge.bench.estimate import check_device

        estimate_devices = [check_device(name) for name in plan.split_list(request.estimate, "--estimate")]
    return Checked(plan.variants(backends, precisions), device, branches, batch_sizes, estimate_devices)


def require_torch(request: BenchRequest) -> None:
    """A checkpoint or a preset is a PyTorch model: without PyTorch, one line says which extra
    benchmarks it and that exported files need none."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        if not is_missing_torch(exc):
            raise
        what = f"the checkpoint {Path(request.checkpoint).name}" if request.checkpoint else f"--model {request.model}"
        raise CvglError(needs(f"benchmarking {what}") + " (an export folder or its .onnx / .engine files "
                        "run without it)") from None


@dataclass
class LoadedModel:
    """The benchmarked model: the PyTorch model (checkpoint or preset), or what exported files record."""

    model: Any  # torch.nn.Module; None for exported files (nothing is loaded)
    sha256: str
    checkpoint: Path | None
    random_weights: bool | None  # None: exported files (their weights' origin is not recorded)
    eval_data: str
    polar: bool
    name: str
    input_sizes: dict[str, tuple[int, int]]
    descriptor_dim: int
    exported: Path | None = None


def load_model(request: BenchRequest) -> LoadedModel:
    """The benchmarked model in fp32 on the CPU (cost counting and exports start from it)."""
    import torch  # a checkpoint or a preset is a PyTorch model

    from cvgl_edge.export.onnx.metadata import state_dict_sha256
    from cvgl_edge.models import build_model
    from cvgl_edge.models.checkpoint import model_from_payload, read_checkpoint

    if request.checkpoint is not None:
        payload = read_checkpoint(request.checkpoint)
        model = model_from_payload(payload, str(request.checkpoint))
        data, polar = trained_data_options(payload, request.eval_data)
        random_weights = "bench_note" in payload  # a preset checkpoint written by this command
    else:
        torch.manual_seed(request.seed)
        model = build_model(request.model, **request.overrides).eval()
        data, polar, random_weights = request.eval_data or "synthetic", False, True
    sizes = {view: tuple(int(n) for n in model.config.input_size(view)) for view in ("ground", "satellite")}
    return LoadedModel(model, state_dict_sha256(model), request.checkpoint, random_weights, data, polar,
                       name=model.model_name, input_sizes=sizes, descriptor_dim=int(model.descriptor_dim))


def exported_model(first: OpenVariant, request: BenchRequest, source: Path) -> LoadedModel:
    """The model the first opened variant's files record; evaluation data synthetic unless given,
    polar-transformed when the satellite input is not square (as ``cvgl-edge eval`` of exported files)."""
    info = {view: encoder.info for view, encoder in first.encoders.items()}
    sizes = {view: tuple(int(n) for n in info[view].input_size) for view in ("ground", "satellite")}
    height, width = sizes["satellite"]
    return LoadedModel(None, str(info["ground"].model_sha256), None, None, request.eval_data or "synthetic",
                       height != width, name=info["ground"].model_name, input_sizes=sizes,
                       descriptor_dim=int(info["ground"].descriptor_dim), exported=source)


@dataclass
class OpenVariant:
    variant: plan.Variant
    encoders: dict[str, Any]
    record: dict[str, Any]


def open_variant(variant: plan.Variant, loaded: LoadedModel, request: BenchRequest, checked: Checked,
                 folder: Callable[[], Path], checkpoint: Callable[[], Path]) -> OpenVariant:
    """Both branch encoders of one variant (exporting its artifacts first where needed)."""
    from cvgl_edge.bench.artifacts import ensure_artifacts  # exports with PyTorch and onnx

    rdev = plan.runtime_device(checked.device)
    record: dict[str, Any] = {"name": variant.name, "backend": variant.backend, "precision": variant.precision}
    before = rss_mb()
    if variant.backend == "torch":
        import torch  # the torch backend runs the PyTorch model itself

        if request.threads:
            torch.set_num_threads(request.threads)
        model = copy.deepcopy(loaded.model)  # the encoder moves it to the device and keeps it
        encoders = {view: model_encoder(model, view, rdev, variant.precision, request.torch_mode)
                    for view in ("ground", "satellite")}
        record["source"] = str(loaded.checkpoint) if loaded.checkpoint else f"preset {request.model} (in memory)"
    else:
        files, provenance = ensure_artifacts(variant, checkpoint(), folder(), loaded.name,
                                             loaded.sha256, max(checked.batch_sizes))
        encoders = {view: open_encoder(path, view, variant.backend, rdev, variant.precision, threads=request.threads)
                    for view, path in files.items()}
        record["source"] = {view: str(path) for view, path in files.items()}
        record["artifacts"] = provenance
    after = rss_mb()
    record["load_rss_mb"] = round(after - before, 1) if before is not None and after is not None else None
    record["encoders"] = {view: enc.info.to_dict() for view, enc in encoders.items()}
    check_weights(variant, encoders, loaded.sha256)
    return OpenVariant(variant, encoders, record)


def check_weights(variant: plan.Variant, encoders: dict[str, Any], sha256: str) -> None:
    for view, enc in encoders.items():
        if enc.info.model_sha256 and enc.info.model_sha256 != sha256:
            raise CvglError(f"{variant.name} {view} encoder holds other weights than the benchmarked model")


def open_exported_variant(variant: plan.Variant, checked: Checked, request: BenchRequest) -> OpenVariant:
    """Both branch encoders of one variant from the files already in the export (nothing exported)."""
    assert checked.exported is not None and checked.exported_model is not None
    files = exports.variant_files(checked.exported, checked.exported_model, variant)
    record: dict[str, Any] = {"name": variant.name, "backend": variant.backend, "precision": variant.precision}
    before = rss_mb()
    encoders: dict[str, Any] = {}
    try:
        for view, path in files.items():
            encoders[view] = open_encoder(path, view, variant.backend, plan.runtime_device(checked.device),
                                          variant.precision, threads=request.threads)
        check_same_export(encoders)
    except BaseException:
        for encoder in encoders.values():
            encoder.close()
        raise
    after = rss_mb()
    record["source"] = {view: str(path) for view, path in files.items()}
    record["artifacts"] = {"folder": str(next(iter(files.values())).parent), "exported": [], "reused": list(files)}
    record["load_rss_mb"] = round(after - before, 1) if before is not None and after is not None else None
    record["encoders"] = {view: enc.info.to_dict() for view, enc in encoders.items()}
    return OpenVariant(variant, encoders, record)


def input_batches(sizes: dict[str, tuple[int, int]], branches: list[str],
                  batch_sizes: list[int]) -> dict[str, np.ndarray]:
    """Realistic normalised inputs per branch at ``sizes`` ({view: (H, W)}), as many as the largest
    batch (a few distinct synthetic images, repeated: content does not change the cost of this model)."""
    largest = max(batch_sizes)
    out = {}
    for view in branches:
        distinct = sample_images(view, tuple(sizes[view]), min(largest, 4))
        out[view] = np.ascontiguousarray(np.resize(distinct, (largest, *distinct.shape[1:])), dtype=np.float32)
    return out


def machine_block(command: str, device: str, with_torch: bool = True) -> dict[str, Any]:
    info = machine_info(with_torch)
    torch = sys.modules.get("torch")  # a checkpoint's run has it; exported files never import it
    versions = {"torch": torch.__version__} if torch is not None else {}
    for module in ("onnxruntime", "tensorrt", "tensorrt_rtx"):
        try:
            versions[module] = plan.package_version(module) if _installed(module) else None
        except Exception:  # noqa: BLE001
            versions[module] = None
    info["versions"] = {k: v for k, v in versions.items() if v}
    info["load_average_before"] = load_average()
    info["command"] = command
    if device == "jetson":
        info["jetson"] = jetson_info()
    return info


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run_bench(request: BenchRequest) -> dict[str, Any]:
    """Run the benchmark; the record (JSON-ready). Progress and notes go to the console."""
    checked = check_request(request)
    source = checked.exported
    env = plan.probe_environment() if source is None else exports.exported_environment(checked.device)
    plan.check_device_available(checked.device, env)
    machine = machine_block(request.command, checked.device, with_torch=source is None)
    if checked.device == "jetson":
        warning = clock_warning(machine["jetson"])
        if warning:
            console.print(f"[yellow]warning[/yellow]: {warning}")

    skipped: list[dict[str, str]] = []
    runnable = []
    for variant in checked.variants:
        reason = plan.skip_reason(variant, checked.device, env)
        if reason:
            skipped.append({"variant": variant.name, "reason": reason})
        else:
            runnable.append(variant)
    if not runnable:  # the error line says it all: no separate skip lines
        raise CvglError("no variant can run here: " + "; ".join(f"{s['variant']}: {s['reason']}" for s in skipped))
    for skip in skipped:
        console.print(f"[yellow]skipped[/yellow] {skip['variant']}: {skip['reason']}")

    loaded: LoadedModel | None = None
    cost: dict[str, Any] = {}
    if source is None:
        with console.status("loading the model"):
            loaded = load_model(request)
        if loaded.random_weights:
            console.print("[yellow]note[/yellow]: random (seeded preset) weights, no checkpoint given: "
                          "speed is real, R@1 is near chance")
        cost = counted_cost(loaded.model)
        opener = _checkpoint_opener(request, checked, loaded)
    else:
        def opener(variant: plan.Variant) -> OpenVariant:
            return open_exported_variant(variant, checked, request)

    opened: list[OpenVariant] = []
    failed: list[dict[str, str]] = []
    try:
        for variant in runnable:
            try:
                item = opener(variant)
                if source is not None:
                    if loaded is None:  # the first variant opened says what the model is
                        loaded = exported_model(item, request, source)
                        cost = exports.exported_cost(item.encoders)
                    _check_or_close(item, loaded.sha256)
                opened.append(item)
            except CvglError as error:
                reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
                failed.append({"variant": variant.name, "reason": reason})
        if not opened:
            reasons = "; ".join(f"{s['variant']}: {s['reason']}" for s in failed)
            raise CvglError(f"no variant could be opened: {reasons}")
        assert loaded is not None
        for failure in failed:
            console.print(f"[yellow]skipped[/yellow] {failure['variant']}: {failure['reason']}")
        skipped += failed
        on_gpu = plan.runtime_device(checked.device) == "cuda"
        # exported files: CUDA events and torch.cuda memory figures would import PyTorch; the host
        # clock around the encoder's synchronised calls times them, GPU memory is not read
        clock = clock_for(checked.device) if source is None else HostClock()
        record = _measure(request, checked, loaded, opened, cost, clock, MemoryProbe(cuda=on_gpu and source is None),
                          acc, time_preprocess)
        if source is not None and on_gpu:
            record["settings"]["notes"].append("exported files on CUDA: host clock around synchronised calls, "
                                               "no GPU memory figures (both need PyTorch)")
            gpu = next((enc.info.extra.get("gpu") for item in opened for enc in item.encoders.values()
                        if isinstance(enc.info.extra.get("gpu"), dict)), None)
            if gpu and not machine.get("gpu"):
                machine["gpu"] = gpu.get("name")
    finally:
        for item in opened:
            for encoder in item.encoders.values():
                encoder.close()
    machine["load_average_after"] = load_average()
    record.update({
        "schema": SCHEMA, "command": request.command, "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine, "skipped": skipped,
    })
    if checked.estimate_devices:
        from cvgl_edge.bench.estimate import estimate  # FLOPs counting side: PyTorch

        precisions = list(dict.fromkeys(v.precision for v in checked.variants))
        record["estimates"] = [estimate(cost["branches"][view], dev, p)
                               for dev in checked.estimate_devices for p in precisions for view in checked.branches]
    record["anchors"] = anchor_rows()
    summarize(record)
    return _ordered(record)


def counted_cost(model: torch.nn.Module) -> dict[str, Any]:
    """Params and FLOPs of both branches, counted with PyTorch (``models.cost``)."""
    from cvgl_edge.models.cost import FLOP_CONVENTION, model_cost, params_total  # PyTorch's counters

    cost: dict[str, Any] = {"params_total": params_total(model), "flop_convention": FLOP_CONVENTION, "branches": {}}
    for view in ("ground", "satellite"):
        with console.status(f"counting Params and FLOPs of the {view} branch"):
            cost["branches"][view] = model_cost(model, view, batch=1)
    return cost


def _checkpoint_opener(request: BenchRequest, checked: Checked,
                       loaded: LoadedModel) -> Callable[[plan.Variant], OpenVariant]:
    """Opens a checkpoint's (or preset's) variants, exporting missing files into the artifacts folder."""
    from cvgl_edge.bench.artifacts import default_folder, preset_checkpoint  # exports with PyTorch and onnx

    folder_cache: dict[str, Path] = {}

    def folder() -> Path:
        if "folder" not in folder_cache:
            folder_cache["folder"] = Path(request.artifacts) if request.artifacts else default_folder(loaded.sha256)
            folder_cache["folder"].mkdir(parents=True, exist_ok=True)
        return folder_cache["folder"]

    def checkpoint() -> Path:
        return loaded.checkpoint or preset_checkpoint(loaded.model, folder(), request.seed)

    def opener(variant: plan.Variant) -> OpenVariant:
        return open_variant(variant, loaded, request, checked, folder, checkpoint)

    return opener


def _check_or_close(item: OpenVariant, sha256: str) -> None:
    """An exported variant from other weights than the first one opened is closed and refused."""
    try:
        check_weights(item.variant, item.encoders, sha256)
    except CvglError:
        for encoder in item.encoders.values():
            encoder.close()
        raise


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")  # not imported for exported files
    return torch.get_num_threads() if torch is not None else None


def _measure(request: BenchRequest, checked: Checked, loaded: LoadedModel, opened: list[OpenVariant],
             cost: dict[str, Any], clock: Any, probe: Any, acc: Any, time_preprocess: Any) -> dict[str, Any]:
    """Pre-processing, interleaved timing, power (Jetson) and accuracy of the opened variants."""
    inputs = input_batches(loaded.input_sizes, checked.branches, checked.batch_sizes)
    cells: list[Cell] = []
    notes: list[str] = []
    for item in opened:
        for view in checked.branches:
            encoder = item.encoders[view]
            for batch in checked.batch_sizes:
                if encoder.max_batch is not None and batch > encoder.max_batch:
                    notes.append(f"{item.variant.name} {view}: batch {batch} > the engine's max batch "
                                 f"{encoder.max_batch}, not run")
                    continue
                cells.append(Cell(item.variant.name, view, batch, encoder, encoder.check_images(inputs[view][:batch])))
    for note in notes:
        console.print(f"[yellow]note[/yellow]: {note}")

    preprocess = {}
    with console.status("timing pre-processing (decode, resize, normalise)"):
        for view in checked.branches:
            preprocess[view] = time_preprocess(view, tuple(loaded.input_sizes[view]))

    rounds = _timed(cells, request, clock, probe)
    power = _power(cells, request, clock) if checked.device == "jetson" else {}

    accuracy_set = None
    reference = None
    accuracy: dict[str, dict[str, Any]] = {}
    if request.eval_pairs > 0:
        with console.status(f"building the evaluation set ({request.eval_pairs} {loaded.eval_data} val pairs)"):
            eval_set = acc.build_eval_set(loaded.input_sizes, loaded.eval_data, loaded.polar, request.eval_pairs)
        accuracy_set = eval_set.describe()
        for item in opened:
            with console.status(f"R@1 of {item.variant.name} on {eval_set.pairs} pairs"):
                accuracy[item.variant.name], descriptors = acc.variant_accuracy(item.encoders, eval_set, reference)
            reference = reference if reference is not None else descriptors

    variants = []
    for item in opened:
        entry = dict(item.record)
        entry["cells"] = [c.summary() for c in cells if c.variant == item.variant.name]
        entry["accuracy"] = accuracy.get(item.variant.name)
        if item.variant.name in power:
            entry["power"] = power[item.variant.name]
        variants.append(entry)
    p = request.policy
    timing = (f"{p.warmup} warm-up run(s) per cell, then interleaved rounds (each unfinished cell once per round, "
              f"rotated order) " + (f"until {p.runs} timed runs per cell" if p.runs is not None else
                                    f"until each cell has >= {p.min_runs} runs and >= {p.min_seconds:g} s of encoder "
                                    f"time (at most {p.max_runs} runs)") +
              f"; {rounds} rounds; clock {clock.name}; encoder = forward + synchronize")
    return {
        "model": {
            "name": loaded.name, "checkpoint": str(loaded.checkpoint) if loaded.checkpoint else None,
            "exported": str(loaded.exported) if loaded.exported else None,
            "preset": request.model, "overrides": request.overrides, "random_weights": loaded.random_weights,
            "seed": request.seed if loaded.checkpoint is None and loaded.exported is None else None,
            "model_sha256": loaded.sha256,
            "input_sizes": {v: list(loaded.input_sizes[v]) for v in ("ground", "satellite")},
            "descriptor_dim": int(loaded.descriptor_dim),
        },
        "settings": {
            "device": checked.device, "runtime_device": plan.runtime_device(checked.device),
            "branches": checked.branches, "batch_sizes": checked.batch_sizes,
            "variants": [v.name for v in checked.variants], "warmup": p.warmup, "runs": p.runs,
            "min_seconds": p.min_seconds, "min_runs": p.min_runs, "max_runs": p.max_runs, "rounds": rounds,
            "threads": request.threads, "torch_threads": _torch_threads(), "torch_mode": request.torch_mode,
            "clock": clock.name, "memory_peak_scope": probe.peak_scope, "timing": timing, "notes": notes,
        },
        "cost": cost, "preprocess": preprocess, "accuracy_set": accuracy_set, "variants": variants,
    }


def _timed(cells: list[Cell], request: BenchRequest, clock: Any, probe: Any) -> int:
    policy = request.policy
    if not request.show_progress:
        return run_interleaved(cells, policy, clock, probe)
    with make_progress(transient=True) as progress:
        warm = progress.add_task("warm-up", total=policy.warmup * len(cells), stats="") if policy.warmup else None
        timed = progress.add_task("timed runs", total=sum(policy.expected_runs(c) for c in cells), stats="")

        def on_run(cell: Cell, is_timed: bool) -> None:
            if not is_timed:
                progress.advance(warm, 1)
                return
            progress.update(timed, advance=1, total=sum(policy.expected_runs(c) for c in cells),
                            stats=f"{cell.variant} {cell.branch} b{cell.batch}: {cell.times['encoder'][-1]:.1f} ms")

        return run_interleaved(cells, policy, clock, probe, on_run)


def _power(cells: list[Cell], request: BenchRequest, clock: Any) -> dict[str, list[dict[str, Any]]]:
    """Jetson: each variant's branches at the smallest batch, run back to back for
    ``power_seconds`` inside a tegrastats sampler (power needs sustained load to read)."""
    import time


    smallest: dict[tuple[str, str], Cell] = {}
    for cell in cells:
        key = (cell.variant, cell.branch)
        if key not in smallest or cell.batch < smallest[key].batch:
            smallest[key] = cell
    out: dict[str, list[dict[str, Any]]] = {}
    for (variant, branch), cell in smallest.items():
        probe_cell = Cell(cell.variant, cell.branch, cell.batch, cell.encoder, cell.images)
        with console.status(f"power: {variant} {branch} batch {cell.batch} for {request.power_seconds:g} s"):
            with tegrastats.TegrastatsSampler() as sampler:
                start = time.perf_counter()
                while time.perf_counter() - start < request.power_seconds:
                    run_once(probe_cell, clock, timed=True)
                seconds = time.perf_counter() - start
        queries = probe_cell.runs * cell.batch
        out.setdefault(variant, []).append({
            "branch": branch, "batch": cell.batch, "seconds": round(seconds, 2), "items": queries,
            "summary": tegrastats.summarize(sampler.samples, seconds, queries),
        })
    return out


_ORDER = ("schema", "command", "date", "machine", "model", "settings", "cost", "summary", "variants", "skipped",
          "preprocess", "accuracy_set", "anchors", "estimates")


def _ordered(record: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys in reading order (JSON diffs stay readable)."""
    return {**{k: record[k] for k in _ORDER if k in record}, **{k: v for k, v in record.items() if k not in _ORDER}}

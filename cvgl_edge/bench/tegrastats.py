"""tegrastats on Jetson: parse its lines, sample it during timed runs, summarise power and load.

Line formats handled (Orin modules, JetPack 5 = L4T 35 and JetPack 6 = L4T 36; older Jetsons
parse too, best effort):

- optional leading timestamp ``MM-DD-YYYY HH:MM:SS`` (JetPack 6 prints it);
- ``RAM used/totalMB (lfb ...)``, ``SWAP used/totalMB (cached NMB)``;
- ``CPU [l%@f,l%@f,off,...]`` (``off`` = core offline);
- ``EMC_FREQ l%@f`` (JetPack 6 often omits it when not root);
- GPU: ``GR3D_FREQ l%`` (JetPack 6, no clock), ``GR3D_FREQ l%@f`` or ``l%@[f0,f1]`` (one clock per
  GPC) and, on JetPack 5, ``GR3D2_FREQ l%@f`` for the second GPC. ``gpu_load_percent`` is the
  ``GR3D_FREQ`` figure (NVIDIA documents it as aggregated over GPCs on recent releases);
- temperatures ``name@42.5C`` (capitalised ``CPU@`` on JetPack 5, lower-case ``cpu@`` on 6);
- power rails ``NAME cur/avg`` in mW (``mW`` suffix on Orin, none on older Jetsons):
  Orin Nano / NX: ``VDD_IN`` (module input), ``VDD_CPU_GPU_CV``, ``VDD_SOC``;
  AGX Orin: ``VDD_GPU_SOC``, ``VDD_CPU_CV``, ``VIN_SYS_5V0``, ``VDDQ_VDD2_1V8AO`` and no module-input
  rail, so module power there is the sum of those rails (it under-reads the module input a
  little: regulator losses before the sensed rails are not seen).

The sampler runs ``tegrastats --interval N`` as a child process (no root needed on Orin for
these fields) and parses its stdout on a thread. Not run on a Jetson here: the parser is
tested on recorded lines from Orin Nano, Orin NX and AGX Orin, the sampler on a fake
``tegrastats`` script.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import threading
import time
from types import TracebackType
from typing import Any

from cvgl_edge.errors import CvglError

#: rails whose sum is the module power when no VDD_IN rail exists (AGX Orin)
AGX_ORIN_MODULE_RAILS = ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO")
#: module input rails, preferred in this order
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")

_TIMESTAMP = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB(?: \(cached (\d+)MB\))?")
_CPU = re.compile(r"\bCPU \[([^\]]*)\](?:@(\d+))?", re.IGNORECASE)
_EMC = re.compile(r"\bEMC_FREQ (?:(\d+)%)?(?:@(\d+))?")
_GR3D = re.compile(r"\b(GR3D\d*)(?:_FREQ)? (\d+)%(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"(?<![\w@%])([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")


def _cpu_cores(body: str, shared_freq: str | None) -> tuple[list[int | None], list[int | None]]:
    loads: list[int | None] = []
    freqs: list[int | None] = []
    for item in (part.strip() for part in body.split(",")):
        if not item or item == "off":
            loads.append(None)
            freqs.append(None)
            continue
        load, _, freq = item.partition("@")
        loads.append(int(load.rstrip("%")) if load.rstrip("%").isdigit() else None)
        freq = freq or (shared_freq or "")
        freqs.append(int(freq) if freq.isdigit() else None)
    return loads, freqs


def module_power(rails: dict[str, dict[str, int]]) -> tuple[float | None, str | None]:
    """(instantaneous module power in mW, how it was obtained) from parsed rails."""
    for name in INPUT_RAILS:
        if name in rails:
            return float(rails[name]["current_mw"]), name
    present = [name for name in AGX_ORIN_MODULE_RAILS if name in rails]
    if present:
        return float(sum(rails[name]["current_mw"] for name in present)), "+".join(present)
    return None, None


def parse_line(line: str) -> dict[str, Any]:
    """One tegrastats line -> dict; CvglError if the line carries no RAM figure (not a stats line)."""
    ram = _RAM.search(line)
    if ram is None:
        raise CvglError(f"not a tegrastats line: {line.strip()[:80]!r}")
    out: dict[str, Any] = {
        "timestamp": None, "ram_used_mb": int(ram.group(1)), "ram_total_mb": int(ram.group(2)),
        "swap_used_mb": None, "swap_total_mb": None, "swap_cached_mb": None,
        "cpu_load_percent": [], "cpu_freq_mhz": [], "emc_load_percent": None, "emc_freq_mhz": None,
        "gpu_load_percent": None, "gpu_freq_mhz": [], "gpu_engines": {},
        "temperatures_c": {}, "rails_mw": {}, "module_power_mw": None, "module_power_source": None,
    }
    if stamp := _TIMESTAMP.search(line):
        out["timestamp"] = stamp.group(1)
    if swap := _SWAP.search(line):
        out["swap_used_mb"], out["swap_total_mb"] = int(swap.group(1)), int(swap.group(2))
        out["swap_cached_mb"] = int(swap.group(3)) if swap.group(3) else None
    if cpu := _CPU.search(line):
        out["cpu_load_percent"], out["cpu_freq_mhz"] = _cpu_cores(cpu.group(1), cpu.group(2))
    if emc := _EMC.search(line):
        out["emc_load_percent"] = int(emc.group(1)) if emc.group(1) else None
        out["emc_freq_mhz"] = int(emc.group(2)) if emc.group(2) else None
    for engine in _GR3D.finditer(line):
        name, load, freqs = engine.group(1), int(engine.group(2)), engine.group(3)
        out["gpu_engines"][name] = {"load_percent": load,
                                    "freq_mhz": [int(f) for f in freqs.split(",") if f] if freqs else []}
    if "GR3D" in out["gpu_engines"]:
        out["gpu_load_percent"] = out["gpu_engines"]["GR3D"]["load_percent"]
        out["gpu_freq_mhz"] = out["gpu_engines"]["GR3D"]["freq_mhz"]
    out["temperatures_c"] = {name: float(value) for name, value in _TEMP.findall(line)}
    out["rails_mw"] = {name: {"current_mw": int(cur), "average_mw": int(avg)}
                       for name, cur, avg in _RAIL.findall(line)}
    out["module_power_mw"], out["module_power_source"] = module_power(out["rails_mw"])
    return out


def summarize(samples: list[dict[str, Any]], seconds: float, queries: int) -> dict[str, Any]:
    """Mean module power (W), energy (J) and energy per query, peak RAM, mean GPU load.

    Energy = mean power x ``seconds`` (the timed window the samples cover); per query divides
    by ``queries``. Power is the module's (VDD_IN, or the AGX Orin rail sum), so it includes
    the CPU, memory and everything else running, not just the GPU.
    """
    powers = [s["module_power_mw"] for s in samples if s.get("module_power_mw") is not None]
    loads = [s["gpu_load_percent"] for s in samples if s.get("gpu_load_percent") is not None]
    rams = [s["ram_used_mb"] for s in samples if s.get("ram_used_mb") is not None]
    temps = [max(s["temperatures_c"].values()) for s in samples if s.get("temperatures_c")]
    rails: dict[str, list[int]] = {}
    for s in samples:
        for name, value in s.get("rails_mw", {}).items():
            rails.setdefault(name, []).append(value["current_mw"])
    mean_w = statistics.fmean(powers) / 1e3 if powers else None
    energy = mean_w * seconds if mean_w is not None else None
    sources = {s["module_power_source"] for s in samples if s.get("module_power_source")}
    return {
        "samples": len(samples),
        "seconds": seconds,
        "queries": queries,
        "power_source": "/".join(sorted(sources)) or None,
        "mean_power_w": mean_w,
        "max_power_w": max(powers) / 1e3 if powers else None,
        "energy_j": energy,
        "energy_per_query_j": energy / queries if energy is not None and queries > 0 else None,
        "peak_ram_mb": max(rams) if rams else None,
        "ram_total_mb": samples[-1]["ram_total_mb"] if samples else None,
        "mean_gpu_load_percent": statistics.fmean(loads) if loads else None,
        "max_temperature_c": max(temps) if temps else None,
        "mean_rails_w": {name: statistics.fmean(v) / 1e3 for name, v in rails.items()},
    }


class TegrastatsSampler:
    """``with TegrastatsSampler(100) as s: run()`` -> ``s.samples`` (parsed lines) and ``s.summary``.

    Starts ``tegrastats --interval N`` on enter, stops it on exit (SIGTERM, then SIGKILL after
    2 s). Lines that are not stats lines are counted in ``skipped`` and ignored.
    """

    def __init__(self, interval_ms: int = 100, executable: str = "tegrastats") -> None:
        if interval_ms < 1:
            raise CvglError(f"tegrastats interval must be >= 1 ms, got {interval_ms}")
        self.interval_ms = interval_ms
        self.executable = executable
        self.samples: list[dict[str, Any]] = []
        self.skipped = 0
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> "TegrastatsSampler":
        path = shutil.which(self.executable)
        if path is None:
            raise CvglError(f"{self.executable} not found on PATH: power sampling needs a Jetson "
                            "(JetPack's tegrastats); run without it or on the device")
        try:
            self._proc = subprocess.Popen(
                [path, "--interval", str(self.interval_ms)], stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True, bufsize=1,
            )
        except OSError as exc:
            raise CvglError(f"could not start {path}: {exc}") from None
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                sample = parse_line(line)
            except CvglError:
                self.skipped += 1
                continue
            sample["t"] = time.monotonic()
            with self._lock:
                self.samples.append(sample)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stopped_at = time.monotonic()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=2)

    @property
    def seconds(self) -> float:
        """Length of the sampled window (enter to exit, or to now while running)."""
        if self.started_at is None:
            return 0.0
        return (self.stopped_at or time.monotonic()) - self.started_at

    def summary(self, queries: int, seconds: float | None = None) -> dict[str, Any]:
        """``summarize`` over the samples; ``seconds`` defaults to the sampled window."""
        with self._lock:
            samples = list(self.samples)
        return summarize(samples, self.seconds if seconds is None else seconds, queries)

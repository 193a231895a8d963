"""Facts about the Jetson a benchmark ran on: module, L4T/JetPack, TensorRT, power mode, clocks.

Recorded with every Jetson run because latency and power depend on them: the nvpmodel mode
caps clocks and cores, and without ``jetson_clocks`` DVFS moves clocks during a run.
Every probe tolerates a missing file or tool (the field is then None). ``root`` lets tests
point the file probes at a fake filesystem; commands are found on PATH.

Sources of the formats: /etc/nv_tegra_release (``# R36 (release), REVISION: 4.4, ...``),
``nvpmodel -q`` (``NV Power Mode: MAXN`` then the mode id), ``jetson_clocks --show``
(``cpuN: Online=1 ... MinFreq=a MaxFreq=b CurrentFreq=c``, ``GPU MinFreq=.. MaxFreq=..``,
``EMC ... FreqOverride=0|1``; needs root), sysfs cpufreq/devfreq min/max as the non-root
fallback. Not run on a Jetson here: tested against recorded outputs and fake files.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

#: L4T release -> JetPack (NVIDIA's JetPack archive / release notes); unknown releases map to None
JETPACK_FOR_L4T = {
    "35.1.0": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "35.6.1": "5.1.5",
    "36.2.0": "6.0 DP",
    "36.3.0": "6.0",
    "36.4.0": "6.1",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
    "38.2.0": "7.0",
}
_RELEASE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")
_TRT_DEFINE = re.compile(r"#define\s+NV_TENSORRT_(MAJOR|MINOR|PATCH|BUILD)\s+(\d+)")
_TRT_HEADERS = ("usr/include/aarch64-linux-gnu/NvInferVersion.h", "usr/include/x86_64-linux-gnu/NvInferVersion.h",
                "usr/include/NvInferVersion.h")
_FREQS = re.compile(r"MinFreq=(\d+)\s+MaxFreq=(\d+)(?:\s+CurrentFreq=(\d+))?")


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_text(errors="replace")
    except OSError:
        return None


def _run(*cmd: str, timeout: float = 10.0) -> str | None:
    """stdout+stderr of a command found on PATH, or None if missing/failed to start/timed out."""
    path = shutil.which(cmd[0])
    if path is None:
        return None
    try:
        done = subprocess.run([path, *cmd[1:]], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout or "") + (done.stderr or "")


def device_model(root: str | Path = "/") -> str | None:
    """/proc/device-tree/model, e.g. 'NVIDIA Jetson Orin Nano Developer Kit'."""
    text = _read(Path(root), "proc/device-tree/model")
    if text is None:
        return None
    return text.replace("\x00", "").strip() or None


def l4t_release(root: str | Path = "/") -> str | None:
    """'36.4.4' from /etc/nv_tegra_release ('# R36 (release), REVISION: 4.4, ...')."""
    text = _read(Path(root), "etc/nv_tegra_release")
    match = _RELEASE.search(text or "")
    if match is None:
        return None
    revision = match.group(2).split(".")
    revision += ["0"] * (2 - len(revision))
    return ".".join([match.group(1), *revision[:2]])


def jetpack_for(l4t: str | None) -> str | None:
    """JetPack version of an L4T release where the mapping is known, else None."""
    return JETPACK_FOR_L4T.get(l4t or "")


def is_jetson(root: str | Path = "/") -> bool:
    """True on an NVIDIA Jetson (L4T release file, or a Jetson/Tegra device-tree model)."""
    root = Path(root)
    if (root / "etc/nv_tegra_release").is_file():
        return True
    model = device_model(root) or ""
    return "jetson" in model.lower() or "tegra" in model.lower()


def tensorrt_version(root: str | Path = "/") -> str | None:
    """TensorRT version from NvInferVersion.h under ``root``, else the importable ``tensorrt``."""
    for rel in _TRT_HEADERS:
        text = _read(Path(root), rel)
        if text:
            parts = dict(_TRT_DEFINE.findall(text))
            if "MAJOR" in parts and "MINOR" in parts:
                return ".".join(parts[k] for k in ("MAJOR", "MINOR", "PATCH", "BUILD") if k in parts)
    try:
        return str(importlib.import_module("tensorrt").__version__)
    except Exception:  # absent or broken install: unknown
        return None


def parse_nvpmodel(output: str | None) -> dict[str, Any] | None:
    """``nvpmodel -q`` output -> {'name': 'MAXN_SUPER', 'id': 2}; None if unrecognised."""
    if not output:
        return None
    match = re.search(r"NV Power Mode:\s*(\S+)", output)
    if match is None:
        return None
    tail = output[match.end():].split()
    mode_id = next((int(tok) for tok in tail if tok.isdigit()), None)
    return {"name": match.group(1), "id": mode_id}


def parse_jetson_clocks(output: str | None) -> dict[str, Any] | None:
    """``jetson_clocks --show`` -> {'pinned': bool, 'cpus': n, ...}; None if it printed no clocks."""
    if not output:
        return None
    cpus = []
    gpu = emc_override = None
    for line in output.splitlines():
        line = line.strip()
        freqs = _FREQS.search(line)
        if re.match(r"cpu\d+:", line) and freqs and "Online=0" not in line:
            cpus.append((int(freqs.group(1)), int(freqs.group(2))))
        elif line.startswith("GPU ") and freqs:
            gpu = (int(freqs.group(1)), int(freqs.group(2)))
        elif line.startswith("EMC ") and "FreqOverride=" in line:
            emc_override = line.rsplit("FreqOverride=", 1)[1].split()[0] == "1"
    if not cpus and gpu is None:
        return None
    cpu_pinned = all(lo == hi for lo, hi in cpus)
    gpu_pinned = gpu is None or gpu[0] == gpu[1]
    return {
        "pinned": cpu_pinned and gpu_pinned and emc_override is not False,
        "cpu_pinned": cpu_pinned, "gpu_pinned": gpu_pinned if gpu else None, "emc_override": emc_override,
        "cpus_online": len(cpus), "gpu_min_max_hz": list(gpu) if gpu else None,
        "method": "jetson_clocks --show",
    }


def _sysfs_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def clocks_from_sysfs(root: str | Path = "/") -> dict[str, Any] | None:
    """Pinned = every online CPU's scaling_min_freq == scaling_max_freq and the GPU devfreq's too."""
    root = Path(root)
    cpus = []
    for cpufreq in sorted(root.glob("sys/devices/system/cpu/cpu[0-9]*/cpufreq")):
        lo, hi = _sysfs_int(cpufreq / "scaling_min_freq"), _sysfs_int(cpufreq / "scaling_max_freq")
        if lo is not None and hi is not None:
            cpus.append((lo, hi))
    gpu = None
    for dev in sorted(root.glob("sys/class/devfreq/*")):
        if any(tag in dev.name for tag in ("gpu", "ga10b", "gv11b", "gp10b")):
            lo, hi = _sysfs_int(dev / "min_freq"), _sysfs_int(dev / "max_freq")
            if lo is not None and hi is not None:
                gpu = (lo, hi)
                break
    if not cpus and gpu is None:
        return None
    cpu_pinned = all(lo == hi for lo, hi in cpus)
    gpu_pinned = gpu is None or gpu[0] == gpu[1]
    return {
        "pinned": cpu_pinned and gpu_pinned, "cpu_pinned": cpu_pinned,
        "gpu_pinned": gpu_pinned if gpu else None, "emc_override": None, "cpus_online": len(cpus),
        "gpu_min_max_hz": list(gpu) if gpu else None, "method": "sysfs min_freq == max_freq",
    }


def jetson_info(root: str | Path = "/") -> dict[str, Any]:
    """Everything above in one dict (JSON-safe); fields are None where a probe found nothing."""
    jetson = is_jetson(root)
    l4t = l4t_release(root)
    info: dict[str, Any] = {
        "is_jetson": jetson,
        "model": device_model(root),
        "l4t": l4t,
        "jetpack": jetpack_for(l4t),
        "tensorrt": tensorrt_version(root),
        "nvpmodel": None,
        "clocks": None,
    }
    if jetson:
        info["nvpmodel"] = parse_nvpmodel(_run("nvpmodel", "-q"))
        info["clocks"] = parse_jetson_clocks(_run("jetson_clocks", "--show")) or clocks_from_sysfs(root)
    return info


def clock_warning(info: dict[str, Any]) -> str | None:
    """A one-line warning when a Jetson's clocks are not (known to be) pinned, else None."""
    if not info.get("is_jetson"):
        return None
    clocks = info.get("clocks")
    if clocks is None:
        return ("could not tell whether clocks are pinned (jetson_clocks --show needs root, sysfs "
                "unreadable): latency and power may vary with DVFS")
    if not clocks.get("pinned"):
        return ("clocks are not pinned (jetson_clocks is not active): latency and power vary with DVFS; "
                "run `sudo jetson_clocks` before benchmarking")
    return None

"""Jetson facts on a fake filesystem and fake nvpmodel / jetson_clocks tools (no Jetson here)."""

import os
import stat

import pytest

from cvgl_edge.bench.jetson import (
    clock_warning, clocks_from_sysfs, jetpack_for, jetson_info, l4t_release, parse_jetson_clocks,
    parse_nvpmodel, tensorrt_version,
)

# Real first line of /etc/nv_tegra_release on an Orin NX with nvidia-jetpack 6.2.1 (a public
# "Jetson System Information" report found with the code search tool).
NV_TEGRA_RELEASE = ("# R36 (release), REVISION: 4.4, GCID: 41062509, BOARD: generic, EABI: aarch64, "
                    "DATE: Mon Jun 16 16:07:13 UTC 2025\n# KERNEL_VARIANT: oot\n")
# `jetson_clocks --show` shapes: cpu lines as printed on an Orin NX (open-rdc/orne-box issue #121),
# GPU/EMC lines as in jetson_stats' emulator (rbonghi/jetson_stats tests/jetson_clocks); values illustrative.
CLOCKS_DVFS = """SOC family:tegra234  Machine:NVIDIA Jetson Orin NX Engineering Reference Developer Kit
Online CPUs: 0-7
cpu0:  Online=1 Governor=schedutil MinFreq=729600 MaxFreq=1984000 CurrentFreq=1728000 IdleStates: WFI=1 c7=1
cpu1:  Online=1 Governor=schedutil MinFreq=729600 MaxFreq=1984000 CurrentFreq=1881600 IdleStates: WFI=1 c7=1
GPU MinFreq=306000000 MaxFreq=918000000 CurrentFreq=306000000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=0
NV Power Mode: MAXN
"""
CLOCKS_PINNED = """SOC family:tegra234  Machine:NVIDIA Jetson Orin NX Engineering Reference Developer Kit
Online CPUs: 0-7
cpu0:  Online=1 Governor=schedutil MinFreq=1984000 MaxFreq=1984000 CurrentFreq=1984000 IdleStates: WFI=1
cpu1:  Online=1 Governor=schedutil MinFreq=1984000 MaxFreq=1984000 CurrentFreq=1984000 IdleStates: WFI=1
cpu7:  Online=0 Governor=schedutil MinFreq=729600 MaxFreq=1984000 CurrentFreq=729600 IdleStates: WFI=1
GPU MinFreq=918000000 MaxFreq=918000000 CurrentFreq=918000000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1
NV Power Mode: MAXN
"""


def _fake_root(tmp_path, trt_header=True):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text(NV_TEGRA_RELEASE)
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\x00")
    if trt_header:
        inc = root / "usr/include/aarch64-linux-gnu"
        inc.mkdir(parents=True)
        inc.joinpath("NvInferVersion.h").write_text(
            "#define NV_TENSORRT_MAJOR 10 //!< TensorRT major version.\n#define NV_TENSORRT_MINOR 3\n"
            "#define NV_TENSORRT_PATCH 0\n#define NV_TENSORRT_BUILD 30\n")
    return root


def _tool(bindir, name, text, code=0):
    bindir.mkdir(exist_ok=True)
    script = bindir / name
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{text}EOF\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_release_and_jetpack_mapping(tmp_path):
    root = _fake_root(tmp_path)
    assert l4t_release(root) == "36.4.4"
    assert jetpack_for("36.4.4") == "6.2.1" and jetpack_for("36.4.3") == "6.2"
    assert jetpack_for("35.6.0") == "5.1.4" and jetpack_for("36.9.9") is None
    assert tensorrt_version(root) == "10.3.0.30"


def test_jetson_info_with_fake_tools(tmp_path, monkeypatch):
    root = _fake_root(tmp_path)
    bindir = tmp_path / "bin"
    _tool(bindir, "nvpmodel", "NV Power Mode: MAXN_SUPER\n2\n")
    _tool(bindir, "jetson_clocks", CLOCKS_PINNED)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin:/bin")
    info = jetson_info(root)
    assert info["is_jetson"] and info["model"] == "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"
    assert (info["l4t"], info["jetpack"], info["tensorrt"]) == ("36.4.4", "6.2.1", "10.3.0.30")
    assert info["nvpmodel"] == {"name": "MAXN_SUPER", "id": 2}
    assert info["clocks"]["pinned"] and info["clocks"]["cpus_online"] == 2  # cpu7 offline is ignored
    assert info["clocks"]["method"] == "jetson_clocks --show"
    assert clock_warning(info) is None


def test_unpinned_clocks_warn(tmp_path, monkeypatch):
    root = _fake_root(tmp_path)
    bindir = tmp_path / "bin"
    _tool(bindir, "jetson_clocks", CLOCKS_DVFS)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin:/bin")
    info = jetson_info(root)
    assert info["nvpmodel"] is None  # no nvpmodel on PATH: tolerated
    assert info["clocks"]["pinned"] is False and info["clocks"]["gpu_pinned"] is False
    warning = clock_warning(info)
    assert "not pinned" in warning and "\n" not in warning


def test_non_root_falls_back_to_sysfs(tmp_path, monkeypatch):
    root = _fake_root(tmp_path, trt_header=False)
    bindir = tmp_path / "bin"
    _tool(bindir, "jetson_clocks", "Please run as root\n", code=1)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin:/bin")
    for cpu in ("cpu0", "cpu1"):
        d = root / f"sys/devices/system/cpu/{cpu}/cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_min_freq").write_text("1984000\n")
        (d / "scaling_max_freq").write_text("1984000\n")
    gpu = root / "sys/class/devfreq/17000000.gpu"
    gpu.mkdir(parents=True)
    (gpu / "min_freq").write_text("918000000\n")
    (gpu / "max_freq").write_text("918000000\n")
    info = jetson_info(root)
    assert info["clocks"]["method"].startswith("sysfs") and info["clocks"]["pinned"] is True
    (gpu / "min_freq").write_text("306000000\n")
    assert clocks_from_sysfs(root)["pinned"] is False


def test_nothing_known_is_a_warning_not_a_crash(tmp_path, monkeypatch):
    root = _fake_root(tmp_path, trt_header=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    info = jetson_info(root)
    assert info["clocks"] is None and info["nvpmodel"] is None
    assert "could not tell" in clock_warning(info)


def test_not_a_jetson(tmp_path):
    info = jetson_info(tmp_path)
    assert info["is_jetson"] is False and info["model"] is None and info["l4t"] is None
    assert clock_warning(info) is None


@pytest.mark.parametrize("text, expected", [
    ("NV Power Mode: MAXN\n0\n", {"name": "MAXN", "id": 0}),
    ("NVPM WARN: something\nNV Power Mode: 15W\n1\n", {"name": "15W", "id": 1}),
    ("nvpmodel: permission denied\n", None),
    (None, None),
])
def test_parse_nvpmodel(text, expected):
    assert parse_nvpmodel(text) == expected


def test_parse_jetson_clocks_needs_clock_lines():
    assert parse_jetson_clocks("Please run as root\n") is None
    assert parse_jetson_clocks(CLOCKS_DVFS)["emc_override"] is False

"""tegrastats parsing on recorded Orin lines, the sampler on a fake tegrastats, the summary maths."""

import os
import stat
import sys
import time

import pytest

from cvgl_edge.bench.tegrastats import TegrastatsSampler, parse_line, summarize
from cvgl_edge.errors import CvglError

# Recorded lines (verbatim, public GitHub material found with the code/issue search tools):
# Orin Nano 8GB, JetPack 6 (L4T 36, kernel 5.15.148-tegra, CUDA 12.6): a system report file
# (`lscpu`, `nvidia-smi`, `tegrastats` output of host "jetsson", 2025-01-04); the search index
# did not name its repository.
ORIN_NANO_JP6 = (
    "01-04-2025 16:02:59 RAM 1273/7620MB (lfb 1x4MB) SWAP 286/3810MB (cached 1MB) "
    "CPU [0%@1036,0%@1036,1%@1036,0%@1036,0%@729,0%@729] GR3D_FREQ 0% cpu@45.875C soc2@45.843C "
    "soc0@44.843C gpu@45.437C tj@46.312C soc1@46.312C VDD_IN 4968mW/4968mW VDD_CPU_GPU_CV 436mW/436mW "
    "VDD_SOC 1708mW/1708mW"
)
# 8 GB Orin (6 cores, 2 offline), JetPack 5 format (GR3D2_FREQ, capitalised sensors): the sample
# line quoted in a dashboard's parseTegraStats() comment (public GitHub JS file; repo not named).
ORIN_8GB_JP5 = (
    "01-24-2024 09:17:09 RAM 3503/7337MB (lfb 7x1MB) SWAP 430/3668MB (cached 1MB) "
    "CPU [11%@729,13%@729,9%@729,18%@729,off,off] EMC_FREQ 0%@2133 "
    "GR3D_FREQ 0%@305 GR3D2_FREQ 0%@0 VIC_FREQ 115 APE 174 "
    "CV0@42.718C CPU@44.093C SOC2@42.625C SOC0@43.281C CV1@42.25C GPU@41.343C tj@46.968C SOC1@46.968C "
    "CV2@42.875C VDD_IN 4915mW/4915mW VDD_CPU_GPU_CV 449mW/449mW VDD_SOC 1431mW/1431mW"
)
# Orin NX 16GB (8 cores at 1984 MHz = MAXN_SUPER, 15656 MB), JetPack 6: a line of a tegrastats log
# pasted in a public GitHub notes file ("5.5 Process killed"); repo not named by the index.
ORIN_NX_16GB_JP6 = (
    "08-21-2026 18:23:23 RAM 6567/15656MB (lfb 54x4MB) SWAP 3109/7828MB (cached 5MB) "
    "CPU [31%@1984,54%@1984,50%@1984,64%@1984,54%@1984,55%@1984,55%@1984,100%@1984] GR3D_FREQ 7% "
    "cv0@57.281C cpu@58.937C soc2@54.687C soc0@55.125C cv1@55.437C gpu@54.375C tj@58.937C soc1@56.375C "
    "cv2@54.656C VDD_IN 12673mW/8213mW VDD_CPU_GPU_CV 7050mW/3122mW VDD_SOC 2121mW/1931mW"
)
# AGX Orin 64GB (12 cores, 62780 MB) under a DLA run: Muxindawang/jetson_dla_tutorial, README.md
# (`sudo tegrastats --interval 100 | grep -i dla`, 2025-11-21).
AGX_ORIN_64GB = (
    "11-21-2025 08:49:48 RAM 13983/62780MB (lfb 424x4MB) SWAP 126/31390MB (cached 0MB) "
    "CPU [90%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,"
    "100%@2201,100%@2201,100%@2201] EMC_FREQ 1%@2133 GR3D_FREQ 14%@[407,407] VIC_FREQ 115 "
    "NVDLA0_FREQ @1600 APE 174 CV0@73.625C CPU@77.281C Tboard@62C SOC2@70C Tdiode@62.25C SOC0@69.531C "
    "CV1@72.5C GPU@69.125C tj@77.281C SOC1@68.968C CV2@67.25C VDD_GPU_SOC 3150mW/2971mW "
    "VDD_CPU_CV 14312mW/12415mW VIN_SYS_5V0 4968mW/5048mW VDDQ_VDD2_1V8AO 1091mW/1091mW"
)
# Older Jetson (JetPack 4.6, no power rails, negative-free temps): rbonghi/jetson_stats issue #187.
JETPACK4 = (
    "RAM 1689/3825MB (lfb 339x4MB) SWAP 0/1913MB (cached 0MB) CPU [3%@345,off,off,0%@345,1%@345,1%@345] "
    "EMC_FREQ 0% GR3D_FREQ 0% PLL@50.5C MCPU@50.5C PMIC@50C GPU@50C BCPU@50.5C thermal@50.3C"
)


def test_orin_nano_jetpack6():
    s = parse_line(ORIN_NANO_JP6)
    assert s["timestamp"] == "01-04-2025 16:02:59"
    assert (s["ram_used_mb"], s["ram_total_mb"]) == (1273, 7620)
    assert (s["swap_used_mb"], s["swap_total_mb"], s["swap_cached_mb"]) == (286, 3810, 1)
    assert s["cpu_load_percent"] == [0, 0, 1, 0, 0, 0]
    assert s["cpu_freq_mhz"] == [1036, 1036, 1036, 1036, 729, 729]
    assert s["gpu_load_percent"] == 0 and s["gpu_freq_mhz"] == []
    assert s["emc_load_percent"] is None  # JetPack 6 prints no EMC_FREQ without root
    assert s["temperatures_c"] == {"cpu": 45.875, "soc2": 45.843, "soc0": 44.843, "gpu": 45.437,
                                   "tj": 46.312, "soc1": 46.312}
    assert s["rails_mw"] == {
        "VDD_IN": {"current_mw": 4968, "average_mw": 4968},
        "VDD_CPU_GPU_CV": {"current_mw": 436, "average_mw": 436},
        "VDD_SOC": {"current_mw": 1708, "average_mw": 1708},
    }
    assert s["module_power_mw"] == 4968 and s["module_power_source"] == "VDD_IN"


def test_orin_jetpack5_two_gpcs_and_offline_cores():
    s = parse_line(ORIN_8GB_JP5)
    assert s["cpu_load_percent"] == [11, 13, 9, 18, None, None]
    assert s["cpu_freq_mhz"][-2:] == [None, None]
    assert (s["emc_load_percent"], s["emc_freq_mhz"]) == (0, 2133)
    assert s["gpu_engines"] == {"GR3D": {"load_percent": 0, "freq_mhz": [305]},
                                "GR3D2": {"load_percent": 0, "freq_mhz": [0]}}
    assert s["gpu_freq_mhz"] == [305]
    assert s["temperatures_c"]["CV0"] == 42.718 and s["temperatures_c"]["tj"] == 46.968
    assert "VIC_FREQ" not in s["rails_mw"] and "APE" not in s["rails_mw"]
    assert s["module_power_mw"] == 4915


def test_orin_nx_current_and_average_differ():
    s = parse_line(ORIN_NX_16GB_JP6)
    assert s["ram_total_mb"] == 15656 and len(s["cpu_load_percent"]) == 8
    assert s["cpu_load_percent"][-1] == 100 and set(s["cpu_freq_mhz"]) == {1984}
    assert s["gpu_load_percent"] == 7
    assert s["rails_mw"]["VDD_IN"] == {"current_mw": 12673, "average_mw": 8213}
    assert s["rails_mw"]["VDD_SOC"] == {"current_mw": 2121, "average_mw": 1931}
    assert s["module_power_mw"] == 12673  # the instantaneous reading, not tegrastats' running average
    assert len(s["temperatures_c"]) == 9


def test_agx_orin_has_no_vdd_in_so_module_power_is_the_rail_sum():
    s = parse_line(AGX_ORIN_64GB)
    assert "VDD_IN" not in s["rails_mw"]
    assert set(s["rails_mw"]) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}
    assert s["module_power_mw"] == 3150 + 14312 + 4968 + 1091
    assert s["module_power_source"] == "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+VDDQ_VDD2_1V8AO"
    assert s["gpu_load_percent"] == 14 and s["gpu_freq_mhz"] == [407, 407]
    assert len(s["cpu_load_percent"]) == 12 and s["cpu_load_percent"][0] == 90
    assert s["temperatures_c"]["Tboard"] == 62.0 and "NVDLA0_FREQ" not in s["temperatures_c"]


def test_older_jetson_without_rails():
    s = parse_line(JETPACK4)
    assert s["rails_mw"] == {} and s["module_power_mw"] is None
    assert s["cpu_load_percent"] == [3, None, None, 0, 1, 1]
    assert s["temperatures_c"]["thermal"] == 50.3


def test_non_stats_line_is_rejected():
    with pytest.raises(CvglError, match="not a tegrastats line"):
        parse_line("tegrastats: started")


def test_summarize_energy_per_query():
    samples = [parse_line(ORIN_NANO_JP6), parse_line(ORIN_NX_16GB_JP6)]
    summary = summarize(samples, seconds=2.0, queries=100)
    mean_w = (4968 + 12673) / 2 / 1e3
    assert summary["mean_power_w"] == pytest.approx(mean_w)
    assert summary["energy_j"] == pytest.approx(mean_w * 2.0)
    assert summary["energy_per_query_j"] == pytest.approx(mean_w * 2.0 / 100)
    assert summary["peak_ram_mb"] == 6567 and summary["mean_gpu_load_percent"] == pytest.approx(3.5)
    assert summary["power_source"] == "VDD_IN" and summary["max_temperature_c"] == 58.937
    assert summary["mean_rails_w"]["VDD_SOC"] == pytest.approx((1708 + 2121) / 2 / 1e3)


def test_summarize_without_samples_reports_nothing_measured():
    summary = summarize([], seconds=1.0, queries=10)
    assert summary["samples"] == 0 and summary["mean_power_w"] is None and summary["energy_per_query_j"] is None


def _fake_tegrastats(tmp_path, lines):
    """An executable named tegrastats that prints the given lines every --interval ms, forever."""
    data = tmp_path / "lines.txt"
    data.write_text("\n".join(lines) + "\n")
    script = tmp_path / "bin" / "tegrastats"
    script.parent.mkdir()
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        "interval = int(sys.argv[sys.argv.index('--interval') + 1]) / 1000\n"
        f"lines = open({str(data)!r}).read().splitlines()\n"
        "i = 0\n"
        "while True:\n"
        "    print(lines[i % len(lines)], flush=True)\n"
        "    i += 1\n"
        "    time.sleep(interval)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script.parent


def test_sampler_collects_parsed_samples_from_a_fake_tegrastats(tmp_path, monkeypatch):
    bindir = _fake_tegrastats(tmp_path, ["tegrastats banner", ORIN_NANO_JP6, ORIN_NX_16GB_JP6])
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with TegrastatsSampler(interval_ms=20) as sampler:
        deadline = time.monotonic() + 10
        while len(sampler.samples) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(sampler.samples) >= 4 and sampler.skipped >= 1
    assert {s["ram_total_mb"] for s in sampler.samples} == {7620, 15656}
    assert sampler._proc.poll() is not None  # the child was stopped on exit
    summary = sampler.summary(queries=10)
    assert summary["samples"] == len(sampler.samples)
    assert 4.9 < summary["mean_power_w"] < 12.7 and summary["seconds"] == pytest.approx(sampler.seconds)


def test_sampler_without_tegrastats_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CvglError, match="tegrastats not found on PATH") as info:
        with TegrastatsSampler():
            pass
    assert "\n" not in str(info.value)

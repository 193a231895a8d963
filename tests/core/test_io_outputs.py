"""Outputs are checked before any work, never overwrite an input, and killed writes leave nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cvgl_edge import cli
from cvgl_edge.errors import CvglError
from cvgl_edge.io import atomic_write, check_outputs, remove_stale_temps


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ----------------------------------------------------------------------------- the shared check
def test_an_output_that_is_one_of_the_inputs_is_refused(tmp_path):
    model = tmp_path / "map.tif"
    model.write_bytes(b"GeoTIFF")
    with pytest.raises(CvglError, match=r"--out .*map.tif is also --map: refusing to write over an input"):
        check_outputs({"--out": model}, {"--map": model})
    link = tmp_path / "alias.tif"
    link.symlink_to(model)
    with pytest.raises(CvglError, match="is also --map"):
        check_outputs({"--out": link}, {"--map": model})
    with pytest.raises(CvglError, match="--out and --json are the same file"):
        check_outputs({"--out": tmp_path / "a.json", "--json": tmp_path / "a.json"}, {})
    check_outputs({"--out": tmp_path / "new.idx", "--json": None, "--plot": "-"}, {"--map": model, "--truth": None})


@pytest.mark.parametrize("where, message", [
    ("folder", "is a folder"), ("/proc/cvgl.json", "will not write under /proc"), ("under-a-file", "is a file"),
])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(tmp_path, where, message):
    target = {"folder": tmp_path, "under-a-file": tmp_path / "file.txt" / "out.json"}.get(where, Path(where))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CvglError, match=message):
        check_outputs({"--json": target}, {})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere: permissions cannot refuse it")
def test_an_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(CvglError, match="not writable"):
        check_outputs({"--json": locked / "out.json"}, {})


# ----------------------------------------------------------------------------- killed writes
def test_the_next_write_removes_what_a_killed_writer_left(tmp_path):
    target = tmp_path / "last.pt"
    stale = tmp_path / f".last.pt.{_dead_pid()}.k3x9.tmp"
    old_style = tmp_path / ".last.pt.ab12cd34.tmp"            # written before temp names carried the PID
    live = tmp_path / f".last.pt.{os.getpid()}.zz99.tmp"       # a writer at work (this process)
    for f in (stale, old_style, live):
        f.write_bytes(b"half a checkpoint")
    atomic_write(target, lambda tmp: tmp.write_bytes(b"weights"))
    assert target.read_bytes() == b"weights"
    assert not stale.exists() and not old_style.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live.name])


def test_remove_stale_temps_leaves_other_files_alone(tmp_path):
    other = tmp_path / f".best.pt.{_dead_pid()}.aaaa.tmp"
    other.write_text("x")
    assert remove_stale_temps(tmp_path / "last.pt") == [] and other.exists()


# ----------------------------------------------------------------------------- through the commands
def _main(monkeypatch, capsys, *argv) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["cvgl-edge", *map(str, argv)])
    with pytest.raises(SystemExit) as ended:
        cli.main()
    return ended.value.code, capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["eval", "{ckpt}", "--json", "{ckpt}"], "--json {ckpt} is also SOURCE"),
    (["verify", "{onnx}", "--against", "{ckpt}", "--json", "{onnx}"], "--json {onnx} is also ARTIFACT"),
    (["export", "{ckpt}", "--json", "{ckpt}"], "--json {ckpt} is also CHECKPOINT"),
    (["bench", "{ckpt}", "--json", "{ckpt}"], "--json {ckpt} is also CHECKPOINT"),
    (["eval", "{ckpt}", "--json", "{tmp}"], "is a folder"),
    (["distil", "--teacher", "{ckpt}", "--student", "geossm-nano", "--out", "{tmp}"], "is also --teacher"),
    (["train", "--pretrained", "{ckpt}", "--out", "{tmp}"], "is also --pretrained"),
])
def test_commands_refuse_bad_outputs_in_one_line_before_reading_anything(monkeypatch, capsys, tmp_path, argv, message):
    ckpt, onnx = tmp_path / "last.pt", tmp_path / "m.onnx"
    ckpt.write_bytes(b"not even a checkpoint")     # the check comes before any read
    onnx.write_bytes(b"not an onnx file")
    before = {p: p.read_bytes() for p in (ckpt, onnx)}
    fill = {"{ckpt}": str(ckpt), "{onnx}": str(onnx), "{tmp}": str(tmp_path)}
    code, err = _main(monkeypatch, capsys, *(fill.get(a, a) for a in argv))
    lines = [line for line in err.splitlines() if line.strip()]
    expected = message
    for key, value in fill.items():
        expected = expected.replace(key, value)
    assert code == 2 and len(lines) == 1 and expected in lines[0], err
    assert {p: p.read_bytes() for p in (ckpt, onnx)} == before


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"),
                                     RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")])
def test_a_full_disk_is_one_line_and_the_previous_file_survives(tmp_path, failure):
    target = tmp_path / "last.pt"
    target.write_bytes(b"the good checkpoint")

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise failure
    with pytest.raises(CvglError, match=r"could not write .*last.pt: no space left on the device .* previous file is kept"):
        atomic_write(target, write)
    assert target.read_bytes() == b"the good checkpoint" and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_other_write_errors_are_not_mistaken_for_a_full_disk(tmp_path):
    with pytest.raises(ValueError):
        atomic_write(tmp_path / "x", lambda tmp: (_ for _ in ()).throw(ValueError("bad data")))


def test_index_info_refuses_to_write_its_summary_over_the_index(monkeypatch, capsys, tmp_path):
    idx = tmp_path / "map.idx"
    idx.write_bytes(b"index bytes")
    code, err = _main(monkeypatch, capsys, "index", "info", idx, "--json", idx)
    assert code == 2 and f"--json {idx} is also INDEX" in err and idx.read_bytes() == b"index bytes"


@pytest.mark.parametrize("argv", [["export", "{ckpt}", "--out", "/proc/cvgl"], ["index", "mission", "--out", "/proc/cvgl"],
                                  ["export", "{ckpt}", "--out", "{ckpt}"], ["train", "--out", "/proc/cvgl"]])
def test_an_output_folder_that_cannot_be_one_is_refused_in_one_line(monkeypatch, capsys, tmp_path, argv):
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"x")
    code, err = _main(monkeypatch, capsys, *(str(ckpt) if a == "{ckpt}" else a for a in argv))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: --out ") and "Traceback" not in err, err

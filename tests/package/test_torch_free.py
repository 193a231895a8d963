"""The deployment install runs without PyTorch: `pip install cvgl-edge` is enough to localise.

Each deployment command (``--help``, ``models``, ``doctor``, ``index mission``, ``index build`` from
an exported satellite encoder, ``index info``, ``localize`` with an ONNX file, with MAVLink output
and with a TensorRT engine, ``autopilot-params``, ``eval`` and ``bench`` of an export folder or
file) runs as a real process through the console script, in two environments:

- the main venv with every package of the ``train`` extra made unimportable: a ``sitecustomize.py``
  on PYTHONPATH puts a meta-path finder first that refuses them (as if not installed) and records
  each attempt;
- the second, torch-free venv ``.venv-deploy`` that CI makes (``.ci/run``; skipped without it).

Both report at exit which of those packages got imported and which were tried: nothing, except
``doctor``, which probes for them. The commands that need PyTorch (train, distil, export, verify
against a checkpoint, demo; eval and bench of a checkpoint or a preset) must say in one line which
extra to install. The artifacts come from the main venv, made here: a TINY GeoSSM's two branches
exported to ONNX by the exporter, a checkpoint, a synthetic mission (written by ``index mission``
under test).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cvgl_edge.extras import TRAIN_MODULES
from tests.support.paths import REPO_ROOT
from tests.support.tiny import TINY

ROOT = REPO_ROOT
DEPLOY_CLI = ROOT / ".venv-deploy" / "bin" / "cvgl-edge"
MAIN_CLI = Path(sys.executable).with_name("cvgl-edge")
# 192 m map, 6 frames: ~36 tiles of 58 m (as tests/localize/test_cli.py's mission)
MISSION_ARGS = ["--seed", "2", "--map-px", "192", "--frames", "6", "--fps", "1", "--speed", "16", "--altitude", "100",
                "--no-video", "--no-progress"]
TORCH_NEEDED = 'needs PyTorch: pip install "cvgl-edge[train]"'

SITECUSTOMIZE = textwrap.dedent('''
    """Test hook (tests/package/test_torch_free.py): refuse the train extra's packages, report what was tried."""
    import atexit
    import json
    import os
    import sys

    _BLOCKED = tuple(filter(None, os.environ.get("CVGL_TEST_BLOCK", "").split(",")))
    _attempts = []


    class _NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in _BLOCKED:
                _attempts.append(name)
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    sys.meta_path.insert(0, _NotInstalled())


    @atexit.register
    def _report():
        loaded = sorted({name.split(".")[0] for name in sys.modules} & set(_BLOCKED))
        with open(os.environ["CVGL_TEST_IMPORTS"], "w") as handle:
            json.dump({"loaded": loaded, "attempts": _attempts}, handle)
''')


class Deploy:
    """Runs ``cvgl-edge ARGS`` in one environment and reads back what it imported."""

    def __init__(self, cli: Path, hook: Path, label: str) -> None:
        self.cli, self.hook, self.label = cli, hook, label

    def __call__(self, *args: object, cwd: Path, timeout: float = 300) -> tuple[subprocess.CompletedProcess, dict]:
        report = cwd / "imports.json"
        report.unlink(missing_ok=True)
        path = [str(self.hook), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path),
               "CVGL_TEST_BLOCK": ",".join(TRAIN_MODULES), "CVGL_TEST_IMPORTS": str(report)}
        result = subprocess.run([str(self.cli), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        assert report.is_file(), f"{self.label}: the import hook did not run: {result.stderr[-2000:]}"
        return result, json.loads(report.read_text())


@pytest.fixture(scope="module")
def hook(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("torch_blocker")
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder


@pytest.fixture(scope="module", params=["main venv, train extra blocked", "deploy venv"])
def deploy(request, hook) -> Deploy:
    if request.param == "deploy venv":
        if not DEPLOY_CLI.is_file():
            pytest.skip(f"no torch-free venv at {DEPLOY_CLI.parent.parent} (.ci/run makes it: "
                        "python3 -m venv .venv-deploy && .venv-deploy/bin/pip install -c constraints.txt -e .)")
        probe = subprocess.run([str(DEPLOY_CLI.with_name("python")), "-c", "import torch"], capture_output=True,
                               check=False)
        assert probe.returncode != 0, ".venv-deploy has torch: the deployment install must not pull it in"
        return Deploy(DEPLOY_CLI, hook, request.param)
    cli = MAIN_CLI if MAIN_CLI.is_file() else None
    if cli is None:
        pytest.skip(f"no cvgl-edge console script beside {sys.executable}")
    return Deploy(cli, hook, request.param)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """Made with PyTorch (this process): the TINY model's two exported branches and its checkpoint."""
    import torch

    from cvgl_edge.export.onnx.exporter import export_branch, save_onnx
    from cvgl_edge.models import build_model, save_checkpoint

    root = tmp_path_factory.mktemp("deploy_artifacts")
    (root / "export").mkdir()
    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY).eval()
    onnx_path = save_onnx(export_branch(model, "satellite", 18), root / "export" / "geossm-nano-satellite.onnx")
    save_onnx(export_branch(model, "ground", 18), root / "export" / "geossm-nano-ground.onnx")
    return {"onnx": Path(onnx_path), "export": root / "export", "checkpoint": save_checkpoint(model, root / "tiny.pt"),
            "descriptor_dim": model.descriptor_dim, "params_total": sum(p.numel() for p in model.parameters())}


def fake_engine(folder: Path, descriptor_dim: int, view: str = "satellite") -> Path:
    """An engine file with a complete sidecar (as `export --format engine` writes it): opening it gets
    past every file check to TensorRT itself and the GPU memory, which is what is tested here."""
    engine = folder / f"geossm-nano-{view}.engine"
    blob = b"not a real serialized engine"
    engine.write_bytes(blob)
    sidecar = {"engine_sha256": hashlib.sha256(blob).hexdigest(), "view": view, "model_name": "geossm-nano",
               "model_sha256": "ab" * 32, "descriptor_dim": descriptor_dim, "input_size": TINY[f"{view}_size"],
               "tensorrt": {"flavour": "tensorrt_rtx", "version": _rtx_version()}, "precision": "fp32",
               "gpu": None, "plugin_lib": None}
    Path(f"{engine}.json").write_text(json.dumps(sidecar))
    return engine


def _rtx_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("tensorrt-rtx", "tensorrt_rtx"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "1.7.1"


def ok(result: subprocess.CompletedProcess, imports: dict, what: str) -> None:
    assert result.returncode == 0, f"{what}: {result.stderr[-3000:]}"
    assert imports == {"loaded": [], "attempts": []}, f"{what} imported (or tried) {imports}"


def one_line_error(result: subprocess.CompletedProcess, imports: dict, fragment: str) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert fragment in lines[0], lines[0]
    assert not imports["loaded"], imports
    return lines[0]


def test_deployment_commands_run_without_torch(deploy, artifacts, tmp_path):
    def run(*args):
        return deploy(*args, cwd=tmp_path)

    ok(*run("--help"), "--help")
    result, imports = run("models", "--json")
    ok(result, imports, "models")
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["geossm-small"]["descriptor_dim"] == 6144 and rows["geossm-nano"]["params_m"] == 0.43

    result, imports = run("doctor", "--json")
    assert result.returncode == 0 and not imports["loaded"], result.stderr[-3000:]
    assert {name.split(".")[0] for name in imports["attempts"]} <= set(TRAIN_MODULES)  # it probes for them
    report = json.loads(result.stdout)
    assert report["torch"].startswith("not installed") and 'pip install "cvgl-edge[train]"' in report["torch"]
    assert report["onnxruntime"] != "not installed" and "scan backends available" not in report
    # the backend table's own rules: no PyTorch here, ONNX Runtime runs, engines need a GPU
    assert report["backend torch"] == '.pt/.pth/.ckpt: the torch backend needs PyTorch: pip install "cvgl-edge[train]"'
    assert report["backend onnxruntime"] == ".onnx: can run here"
    assert report["backend tensorrt"].startswith(".engine: TensorRT engines need a CUDA GPU")

    mission, index = tmp_path / "mission", tmp_path / "map.idx"
    ok(*run("index", "mission", "--out", mission, *MISSION_ARGS), "index mission")
    assert len(list((mission / "frames").glob("*.png"))) == 6 and (mission / "map.tif").is_file()

    ok(*run("index", "build", "--map", mission / "map.tif", "--checkpoint", artifacts["onnx"], "--out", index,
            "--tile-size", "58", "--threads", "1", "--no-progress", "--json", tmp_path / "build.json"), "index build")
    built = json.loads((tmp_path / "build.json").read_text())
    assert built["tiles"] == 36 and built["descriptor_dim"] == artifacts["descriptor_dim"]
    result, imports = run("index", "info", index)
    ok(result, imports, "index info")
    assert json.loads(result.stdout)["model_sha256"] == built["model_sha256"]

    fixes, summary = tmp_path / "fixes.jsonl", tmp_path / "run.json"
    ok(*run("localize", "--index", index, "--source", "synthetic", "--out", fixes, "--hfov", "60", "--threads", "1",
            "--eval", "--json", summary, "--no-progress"), "localize")
    record = json.loads(summary.read_text())
    assert record["frames"] == 6 and record["backend"] == "onnxruntime" and record["eval"]["frames"] == 6
    assert Path(record["eval"]["plot"]).is_file()
    assert len(fixes.read_text().splitlines()) == 6

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as autopilot:  # MAVLink out, over UDP, to here
        autopilot.bind(("127.0.0.1", 0))
        autopilot.settimeout(5)
        port = autopilot.getsockname()[1]
        ok(*run("localize", "--index", index, "--source", mission / "frames", "--out", tmp_path / "fixes2.jsonl",
                "--hfov", "60", "--altitude", "100", "--threads", "1", "--no-progress",
                "--mavlink", f"udpout:127.0.0.1:{port}", "--ground-elevation", "120"), "localize --mavlink")
        packet = autopilot.recv(512)
    assert packet[:1] in (b"\xfd", b"\xfe")  # a MAVLink 2 (or 1) frame

    result, imports = run("autopilot-params", "--json")
    ok(result, imports, "autopilot-params")
    assert json.loads(result.stdout)


def test_engine_and_checkpoint_without_torch_are_one_line(deploy, artifacts, tmp_path):
    """A TensorRT engine opens without torch up to TensorRT and the GPU memory (no GPU here); a
    checkpoint says which extra runs it. Neither imports torch."""
    mission, index = tmp_path / "mission", tmp_path / "map.idx"
    ok(*deploy("index", "mission", "--out", mission, *MISSION_ARGS, cwd=tmp_path), "index mission")
    ok(*deploy("index", "build", "--map", mission / "map.tif", "--checkpoint", artifacts["onnx"], "--out", index,
               "--tile-size", "58", "--threads", "1", "--no-progress", cwd=tmp_path), "index build")

    engine = fake_engine(tmp_path, artifacts["descriptor_dim"])
    result, imports = deploy("localize", "--index", index, "--source", "synthetic", "--out", tmp_path / "f.jsonl",
                             "--model", engine, "--device", "cuda", "--no-progress", cwd=tmp_path)
    line = one_line_error(result, imports, "")
    # TensorRT-RTX absent (the deploy venv), no CUDA bindings, or no GPU: whichever comes first here
    assert any(text in line for text in ("no TensorRT Python package", "CUDA Python bindings", "no CUDA GPU")), line
    assert set(imports["attempts"]) <= {"torch"}, imports  # choosing the device memory asks if torch is there
    assert not (tmp_path / "f.jsonl").exists()

    result, imports = deploy("index", "build", "--map", mission / "map.tif", "--checkpoint", artifacts["checkpoint"],
                             "--out", tmp_path / "t.idx", "--tile-size", "58", "--no-progress", cwd=tmp_path)
    one_line_error(result, imports, f"running the checkpoint tiny.pt {TORCH_NEEDED}")
    assert not (tmp_path / "t.idx").exists()


def test_eval_and_bench_of_exported_files_run_without_torch(deploy, artifacts, tmp_path):
    """`eval` and `bench` of an export folder (and of one of its files) never import PyTorch: the
    synthetic data, the numpy batches, ONNX Runtime, the metrics and the bench record are torch-free."""
    export = artifacts["export"]
    result, imports = deploy("eval", export, "--backend", "onnxruntime", "--no-progress", "--json",
                             tmp_path / "eval.json", cwd=tmp_path)
    ok(result, imports, "eval")
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["backend"] == "onnxruntime" and record["data"] == "synthetic" and record["pairs"] == 200
    assert record["descriptor_dim"] == artifacts["descriptor_dim"] and 0 <= record["R@1"] <= 100
    assert set(record["directions"]) == {"ground->satellite", "satellite->ground"}
    assert record["files"]["ground"].endswith("geossm-nano-ground.onnx")

    # CVACT's split file needs SciPy: one line on the deployment install
    from tests.support.fake_datasets import make_cvact

    root = make_cvact(tmp_path / "CVACT")
    result, imports = deploy("eval", export, "--data", f"cvact:{root}", "--no-progress", cwd=tmp_path)
    assert result.returncode == 2 and not imports["loaded"], result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        "error: reading CVACT's ACT_data.mat needs SciPy: pip install \"cvgl-edge[train]\""]

    from tests.support.fake_datasets import make_university1652, make_vigor  # the retrieval protocols' image lists

    for data, headline in ((f"university1652:{make_university1652(tmp_path / 'U')}", "drone->satellite"),
                           (f"vigor:{make_vigor(tmp_path / 'V')}", "ground->satellite")):
        out = tmp_path / f"{headline[0]}.json"
        result, imports = deploy("eval", export, "--data", data, "--split", "test", "--workers", "2",
                                 "--no-progress", "--json", out, cwd=tmp_path)
        assert result.returncode == 0 and not imports["loaded"], result.stderr[-3000:]
        assert set(imports["attempts"]) <= {"torch"}, imports  # --workers: DataLoader where installed, else threads
        protocol = json.loads(out.read_text())
        assert protocol["headline"] == headline and protocol["queries"][headline] > 0

    result, imports = deploy("bench", export, "--backend", "onnxruntime,tensorrt", "--precision", "fp32,int8",
                             "--batch-sizes", "1,2", "--runs", "2", "--warmup", "1", "--eval-pairs", "8",
                             "--json", tmp_path / "bench.json", "--no-progress", cwd=tmp_path)
    ok(result, imports, "bench")
    assert "Params and FLOPs unknown" not in " ".join((result.stdout + result.stderr).split())  # the export records them
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert [v["name"] for v in bench["variants"]] == ["onnxruntime fp32"]
    reasons = {s["variant"]: s["reason"] for s in bench["skipped"]}
    assert set(reasons) == {"onnxruntime int8", "tensorrt fp32", "tensorrt int8"}
    assert "no geossm-nano-ground.int8.onnx" in reasons["onnxruntime int8"]  # nothing is exported
    assert bench["model"]["exported"] == str(export) and bench["model"]["checkpoint"] is None
    assert bench["model"]["descriptor_dim"] == artifacts["descriptor_dim"] and "torch" not in bench["machine"]
    assert "unknown" not in bench["cost"] and bench["cost"]["params_total"] == artifacts["params_total"]
    assert bench["cost"]["branches"]["ground"]["flops"] > 0
    row = bench["summary"][0]
    assert row["query_p50_ms"] > 0 and row["tile_p50_ms"] > 0 and row["queries_per_s"] > 0
    assert row["peak_rss_mb"] > 0 and 0 <= row["R@1"] <= 100
    assert row["params_total_m"] == pytest.approx(artifacts["params_total"] / 1e6, abs=1e-3) and row["gflops_per_query"] > 0
    assert bench["variants"][0]["artifacts"]["exported"] == []

    result, imports = deploy("bench", artifacts["onnx"], "--branch", "satellite", "--batch-sizes", "1", "--runs", "1",
                             "--warmup", "0", "--eval-pairs", "0", "--json", "-", "--no-progress", cwd=tmp_path)
    ok(result, imports, "bench FILE.onnx")
    single = json.loads(result.stdout)
    assert single["settings"]["branches"] == ["satellite"] and single["variants"][0]["cells"][0]["runs"] == 1


def test_eval_of_engines_reaches_tensorrt_without_torch(deploy, artifacts, tmp_path):
    """`eval --backend tensorrt` of an export folder gets to TensorRT and the GPU (none here) without torch."""
    for view in ("ground", "satellite"):
        fake_engine(tmp_path, artifacts["descriptor_dim"], view)
    result, imports = deploy("eval", tmp_path, "--backend", "tensorrt", "--no-progress", cwd=tmp_path)
    line = one_line_error(result, imports, "")
    assert any(text in line for text in ("no TensorRT Python package", "CUDA Python bindings", "no CUDA GPU")), line
    assert set(imports["attempts"]) <= {"torch"}, imports  # choosing the device memory asks if torch is there


@pytest.mark.parametrize("command, what", [
    (["eval", "{checkpoint}"], "evaluating the checkpoint tiny.pt"),
    (["bench", "{checkpoint}"], "benchmarking the checkpoint tiny.pt"),
    (["bench", "--model", "geossm-nano"], "benchmarking --model geossm-nano"),
], ids=["eval", "bench", "bench-preset"])
def test_eval_and_bench_of_a_checkpoint_name_the_extra(deploy, artifacts, tmp_path, command, what):
    values = {"checkpoint": artifacts["checkpoint"]}
    result, imports = deploy(*(part.format(**values) for part in command), cwd=tmp_path)
    line = one_line_error(result, imports, f"{what} {TORCH_NEEDED}")
    assert "run without it" in line  # and that exported files do not need it


@pytest.mark.parametrize("command", [
    ["train", "--max-steps", "1", "--out", "{tmp}/run"],
    ["distil", "--teacher", "{checkpoint}", "--out", "{tmp}/run"],
    ["export", "{checkpoint}", "--out", "{tmp}/run"],
    ["verify", "{onnx}", "--against", "{checkpoint}"],
    ["demo", "--out", "{tmp}/run"],
], ids=lambda command: command[0])
def test_torch_commands_name_the_extra(deploy, artifacts, tmp_path, command):
    values = {"tmp": tmp_path, "checkpoint": artifacts["checkpoint"], "onnx": artifacts["onnx"]}
    result, imports = deploy(*(part.format(**values) for part in command), cwd=tmp_path)
    assert one_line_error(result, imports, "") == f"error: {command[0]} {TORCH_NEEDED}"
    assert not (tmp_path / "run").exists()  # refused before any work


def test_invoked_command_names_the_words_of_a_command_line():
    from cvgl_edge.cli import invoked_command

    assert invoked_command(["index", "build", "--map", "m.tif", "--out", "x"]) == "index build"
    assert invoked_command(["train", "--max-steps", "1"]) == "train"
    assert invoked_command(["--help"]) == invoked_command([]) == "cvgl-edge"

"""Distillation: loss terms on hand-made inputs, the `cvgl-edge distil` command end to end, one-line errors."""

import json
import math
import sys

import pytest
import torch
import torch.nn.functional as F

from cvgl_edge.errors import CvglError
from cvgl_edge.losses import build_loss
from cvgl_edge.losses.distillation import DistillationLoss, relational_kl, relational_loss
from cvgl_edge.models import build_model, load_checkpoint
from cvgl_edge.models.checkpoint import checkpoint_payload
from cvgl_edge.train.config import TrainConfig
from cvgl_edge.train.distil import DistilTrainer, distil_settings

from tests.support.cli import cli
from tests.support.tiny import TINY

STUDENT = ["--set", "depth=1", "--set", "embed_dim=16", "--set", "cga_groups=4",
           "--set", "ground_size=(32, 128)", "--set", "satellite_size=(64, 64)"]


def _unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_relational_kl_matches_hand_computation():
    student = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    teacher = torch.tensor([[0.8, 0.4], [0.0, 1.0]])
    tau = 0.5
    expected = 0.0
    for s_row, t_row in zip(student, teacher):
        p, q = torch.softmax(t_row / tau, 0), torch.softmax(s_row / tau, 0)
        expected += float((p * (p.log() - q.log())).sum()) / 2
    assert math.isclose(float(relational_kl(student, teacher, tau)), expected, rel_tol=1e-5)
    assert float(relational_kl(teacher, teacher, tau)) == pytest.approx(0.0, abs=1e-7)


def test_relational_loss_uses_both_directions_and_only_student_gradients():
    g = _unit([1.0, 0.0], [0.6, 0.8], [0.0, 1.0]).requires_grad_(True)
    s = _unit([0.9, 0.1], [0.5, 0.9], [0.3, 1.0])
    tg, ts = _unit([1.0, 0.1], [0.1, 1.0], [0.7, 0.7]), _unit([1.0, 0.0], [0.0, 1.0], [0.6, 0.6])
    sim_s, sim_t = g @ s.t(), tg @ ts.t()
    rows, cols = relational_kl(sim_s, sim_t, 0.1), relational_kl(sim_s.t(), sim_t.t(), 0.1)
    assert not math.isclose(float(rows.detach()), float(cols.detach()))  # the two directions differ ...
    value = relational_loss(g, s, tg, ts, temperature=0.1)
    assert float(value.detach()) == pytest.approx(0.5 * float((rows + cols).detach()), rel=1e-5)  # ... and are averaged
    value.backward()
    assert g.grad is not None and g.grad.abs().sum() > 0


def test_no_projection_when_dims_match_and_alignment_is_one_minus_cosine():
    loss = DistillationLoss(build_loss("ddal"), student_dim=4, teacher_dim=4, relational_weight=0, align_weight=1)
    assert loss.projection is None and not list(loss.parameters())
    a = _unit([1.0, 0, 0, 0], [0, 1.0, 0, 0])
    t = _unit([1.0, 1.0, 0, 0], [0, 1.0, 0, 0])
    cos = F.cosine_similarity(a, t, dim=1)
    assert float(loss.align(a, t)) == pytest.approx(float((1 - cos).mean()), rel=1e-6)


def test_projection_when_dims_differ_is_trained_through_the_loss():
    loss = DistillationLoss(build_loss("ddal"), student_dim=3, teacher_dim=5, temperature=0.2,
                            relational_weight=0.5, align_weight=2.0)
    assert tuple(loss.projection.weight.shape) == (5, 3)
    gen = torch.Generator().manual_seed(0)
    sg, ss = (F.normalize(torch.randn(4, 3, generator=gen), dim=1).requires_grad_(True) for _ in range(2))
    tg, ts = (F.normalize(torch.randn(4, 5, generator=gen), dim=1) for _ in range(2))
    total = loss(sg, ss, tg, ts)
    terms = loss.last_terms
    expected = terms["task"] + 0.5 * terms["relational"] + 2.0 * terms["align"]
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert loss.projection.weight.grad.abs().sum() > 0 and sg.grad.abs().sum() > 0


def test_bad_weights_are_user_errors():
    with pytest.raises(CvglError, match="temperature"):
        DistillationLoss(build_loss("ddal"), 4, 4, temperature=0)
    with pytest.raises(CvglError, match="weight"):
        DistillationLoss(build_loss("ddal"), 4, 4, align_weight=-1)


def _teacher(path, query_view="ground", **overrides):
    model = build_model("geossm-nano", **{**TINY, **overrides})
    payload = checkpoint_payload(model)
    payload["train_config"] = {"data": "synthetic:8", "polar": False, "query_view": query_view}
    torch.save(payload, path)
    return path


def test_distil_command_end_to_end(tmp_path):
    teacher = _teacher(tmp_path / "teacher.pt")
    out, report = tmp_path / "run", tmp_path / "report.json"
    result = cli("distil", "--teacher", str(teacher), *STUDENT, "--max-steps", "2", "--batch-size", "4",
                 "--warmup-steps", "1", "--out", str(out), "--json", str(report), "--device", "cpu",
                 "--no-progress", "--temperature", "0.2")
    assert result.returncode == 0, result.stderr
    student = load_checkpoint(out / "last.pt")  # an ordinary checkpoint: rebuilds and loads strictly
    assert student.config.depth == 1 and student.descriptor_dim == 64
    payload = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    distil = payload["train_config"]["distil"]
    assert distil["teacher"] == str(teacher) and len(distil["teacher_sha256"]) == 64
    assert distil["temperature"] == 0.2
    assert tuple(payload["loss_state"]["projection.weight"].shape) == (128, 64)  # student 64-d -> teacher 128-d
    record = json.loads(report.read_text())
    teacher_row, student_row = record["report"]["rows"]
    assert teacher_row["model"].startswith("teacher") and "distilled" in student_row["model"]
    for row in (teacher_row, student_row):
        assert {"R@1", "R@5", "R@1%", "params", "gflops_per_query", "cpu_ms_per_query"} <= set(row)
        assert row["params"] > 0 and row["gflops_per_query"] > 0 and row["cpu_ms_per_query"] > 0
    assert student_row["params"] < teacher_row["params"]
    assert student_row["R@1"] == record["R@1"]
    assert "teacher vs distilled student" in result.stdout + result.stderr  # rich console: stderr
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"task", "relational", "align"} <= set(log[0])


def _cli_error(monkeypatch, capsys, *args):
    """`cvgl-edge ARGS` in this process (no interpreter start-up); returns its one stderr line."""
    from cvgl_edge.cli import main

    monkeypatch.setattr(sys, "argv", ["cvgl-edge", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_unknown_student_preset(tmp_path, monkeypatch, capsys):
    teacher = _teacher(tmp_path / "teacher.pt")
    line = _cli_error(monkeypatch, capsys, "distil", "--teacher", str(teacher), "--student", "geossm-huge")
    assert "unknown student preset 'geossm-huge'" in line and "geossm-nano" in line


def test_unreadable_teacher(tmp_path, monkeypatch, capsys):
    bogus = tmp_path / "teacher.pt"
    bogus.write_bytes(b"not a checkpoint")
    line = _cli_error(monkeypatch, capsys, "distil", "--teacher", str(bogus), "--out", str(tmp_path))
    assert "teacher: cannot read checkpoint" in line
    line = _cli_error(monkeypatch, capsys, "distil", "--teacher", str(tmp_path / "missing.pt"))
    assert "teacher: checkpoint not found" in line


def test_teacher_for_other_input_sizes(tmp_path, monkeypatch, capsys):
    teacher = _teacher(tmp_path / "teacher.pt", ground_size=(16, 256))
    line = _cli_error(monkeypatch, capsys, "distil", "--teacher", str(teacher), *STUDENT, "--out", str(tmp_path / "r"))
    assert "ground 16x256 / satellite 64x64" in line and "ground 32x128 / satellite 64x64" in line


def _cfg(tmp_path, teacher, **kw):
    base = dict(model="geossm-nano", model_overrides=dict(TINY), out=str(tmp_path / "run"), max_steps=1,
                batch_size=4, show_progress=False, device="cpu", distil=distil_settings(teacher))
    base.update(kw)
    return TrainConfig(**base)


def test_teacher_for_other_query_view(tmp_path):
    teacher = _teacher(tmp_path / "teacher.pt", query_view="drone")
    with pytest.raises(CvglError, match="trained on drone queries but --data synthetic:8 has ground queries"):
        DistilTrainer(_cfg(tmp_path, teacher, data="synthetic:8"))

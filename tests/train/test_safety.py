"""Training's safety rails: checkpoints never run code, resume logs each step once, bad numbers,
foreign checkpoints, a file as --out and a full disk end as one line."""

import errno
import json

import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.losses import build_loss
from cvgl_edge.models import build_model
from cvgl_edge.models.checkpoint import checkpoint_payload, load_weights_only, save_checkpoint
from cvgl_edge.train.config import TrainConfig
from cvgl_edge.train.loop import Trainer

from tests.support.cli import assert_one_line_error, cli
from tests.support.tiny import TINY

TINY_ARGS = ["--set", "depth=2", "--set", "embed_dim=32", "--ground-size", "32x128",
             "--satellite-size", "64x64", "--data", "synthetic:64", "--batch-size", "8",
             "--max-steps", "2", "--device", "cpu", "--no-progress"]


class _CreatesFile:
    """Unpickling this (weights_only=False) creates ``marker``: the stand-in for planted code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant(path, marker):
    """A checkpoint-shaped file whose unpickling would run code."""
    payload = checkpoint_payload(build_model("geossm-nano", **TINY))
    payload.update(optimizer={}, step=1, payload=_CreatesFile(marker))
    torch.save(payload, path)
    return path


def _cfg(out, **kw):
    base = dict(model="geossm-nano", model_overrides=dict(TINY), data="synthetic:64", out=str(out),
                max_steps=4, batch_size=8, lr=1e-3, warmup_steps=1, save_every=0, log_every=1,
                show_progress=False, device="cpu")
    return TrainConfig(**{**base, **kw})


# ----------------------------------------------------------------- finding 1: no code from checkpoints
def test_a_planted_last_pt_runs_no_code_on_resume(tmp_path):
    marker = tmp_path / "pwned"
    out = tmp_path / "run"
    out.mkdir()
    _plant(out / "last.pt", marker)
    result = cli("train", *TINY_ARGS, "--out", str(out), "--resume")
    assert not marker.exists()
    assert_one_line_error(result, "weights-only")


def test_a_planted_checkpoint_runs_no_code_in_eval_export_distil_or_pretrained(tmp_path):
    marker = tmp_path / "pwned"
    planted = _plant(tmp_path / "model.pt", marker)
    assert_one_line_error(cli("eval", str(planted), "--device", "cpu", "--no-progress"), "weights-only")
    assert_one_line_error(cli("export", str(planted), "--out", str(tmp_path / "exports")), "weights-only")
    assert_one_line_error(cli("distil", "--teacher", str(planted), "--out", str(tmp_path / "d")), "weights-only")
    result = cli("train", *TINY_ARGS, "--pretrained", str(planted), "--out", str(tmp_path / "t"))
    assert_one_line_error(result, "weights-only")
    assert not marker.exists()


def test_the_checkpoints_training_writes_load_weights_only_and_resume(tmp_path):
    cfg = dict(optimizer="asam", loss="infonce+dice", max_steps=2)
    Trainer(_cfg(tmp_path, **cfg)).run(stop_at=1)
    state = load_weights_only(tmp_path / "last.pt")
    assert state["step"] == 1 and "numpy" in state["rng"]
    assert Trainer(_cfg(tmp_path, **cfg), resume=True).step == 1


# ----------------------------------------------------------------- finding 2: each step logged once
def test_a_resumed_run_logs_each_step_once(tmp_path):
    Trainer(_cfg(tmp_path, save_every=2)).run(stop_at=2)
    log = tmp_path / "metrics.jsonl"
    with open(log, "a") as handle:  # what a run killed after step 3 (checkpoint at 2) left behind
        handle.write(json.dumps({"step": 3, "loss": 1.0}) + "\n" + '{"step": 4, "lo')
    Trainer(_cfg(tmp_path, save_every=2), resume=True).run()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]


# ----------------------------------------------------------------- finding 3: one-line errors
@pytest.mark.parametrize("args, fragment", [
    (["--lr", "-1"], "--lr must be > 0"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--weight-decay", "-0.1"], "--weight-decay must be >= 0"),
    (["--loss-param", "gamma=abc"], "gamma must be a finite number, got 'abc'"),
])
def test_bad_train_numbers_are_one_line_errors(tmp_path, args, fragment):
    assert_one_line_error(cli("train", *TINY_ARGS, "--out", str(tmp_path / "run"), *args), fragment)
    assert not (tmp_path / "run").exists()


def test_bad_distil_numbers_are_one_line_errors(tmp_path):
    teacher = tmp_path / "teacher.pt"
    torch.save(checkpoint_payload(build_model("geossm-nano", **TINY)), teacher)
    result = cli("distil", "--teacher", str(teacher), "--temperature", "nan", "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "--temperature must be a finite number > 0")


def test_an_existing_file_as_out_is_a_one_line_error(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    assert_one_line_error(cli("train", *TINY_ARGS, "--out", str(file)), "is not a folder")
    teacher = tmp_path / "teacher.pt"
    torch.save(checkpoint_payload(build_model("geossm-nano", **TINY)), teacher)
    assert_one_line_error(cli("distil", "--teacher", str(teacher), "--out", str(file / "run")), "is a file")
    assert file.read_text() == "keep me"


def test_resuming_another_models_checkpoint_is_a_one_line_error(tmp_path):
    other = build_model("geossm-nano", **{**TINY, "embed_dim": 48})
    payload = checkpoint_payload(other)
    payload.update(optimizer={}, step=1)  # a training checkpoint without train_config (older or foreign)
    torch.save(payload, tmp_path / "last.pt")
    result = cli("train", *TINY_ARGS, "--out", str(tmp_path), "--resume")
    assert_one_line_error(result, "embed_dim=48 (this run: 32)")


def test_resuming_weights_of_another_shape_names_the_mismatch(tmp_path):
    payload = checkpoint_payload(build_model("geossm-nano", **TINY))
    payload["state_dict"] = build_model("geossm-nano", **{**TINY, "embed_dim": 48}).state_dict()
    payload.update(optimizer={}, step=1)
    torch.save(payload, tmp_path / "last.pt")
    with pytest.raises(CvglError, match="does not match the geossm-nano model this run builds: .*shape mism"):
        Trainer(_cfg(tmp_path), resume=True)


def test_resuming_optimizer_state_of_another_run_is_a_user_error(tmp_path):
    payload = checkpoint_payload(build_model("geossm-nano", **TINY))
    payload.update(optimizer={"state": {}}, step=1)
    torch.save(payload, tmp_path / "last.pt")
    with pytest.raises(CvglError, match="cannot resume: .*last.pt holds training state this run cannot take"):
        Trainer(_cfg(tmp_path), resume=True)


@pytest.mark.parametrize("field, value", [
    ("lr", 0.0), ("lr", float("inf")), ("weight_decay", float("nan")), ("rho", -1.0),
    ("clip_norm", -1.0), ("batch_size", 1), ("max_steps", 0), ("epochs", True),
])
def test_train_config_rejects_numbers_no_run_can_use(field, value):
    with pytest.raises(CvglError, match=f"--{field.replace('_', '-')} must be"):
        TrainConfig(**{field: value})


def test_loss_parameters_of_the_wrong_kind_are_user_errors():
    with pytest.raises(CvglError, match="loss ddal: gamma must be a finite number, got 'abc'"):
        build_loss("ddal", gamma="abc")
    with pytest.raises(CvglError, match="learnable must be true or false"):
        build_loss("infonce", learnable="maybe")
    with pytest.raises(CvglError, match="loss dice: scale must be a finite number"):
        build_loss("infonce+dice", **{"dice.scale": float("nan")})
    with pytest.raises(CvglError, match="loss infonce: "):
        build_loss("infonce", init_temperature=0)  # the loss's own arithmetic fails: still one line


# ----------------------------------------------------------------- finding 4: a full disk
@pytest.mark.parametrize("failure", [
    RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 3136 vs 3030"),
    OSError(errno.ENOSPC, "No space left on device"),
])
def test_a_full_disk_during_a_checkpoint_write_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, failure):
    trainer = Trainer(_cfg(tmp_path))
    last = trainer.save()
    before = last.read_bytes()

    def full(obj, target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"partial")
        raise failure

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CvglError) as caught:
        trainer.save()
    message = str(caught.value)
    assert "\n" not in message and str(last) in message
    assert "no space left" in message
    assert last.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_save_checkpoint_is_atomic_and_keeps_the_old_file_when_the_disk_is_full(tmp_path, monkeypatch):
    model = build_model("geossm-nano", **TINY)
    path = save_checkpoint(model, tmp_path / "model.pt")
    before = path.read_bytes()

    def full(obj, target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CvglError, match="no space left"):
        save_checkpoint(model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]

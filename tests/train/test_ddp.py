"""Two-process DDP on the CPU (gloo) through torchrun equals one process on the global batch."""

import subprocess
import sys

import pytest
import torch

ARGS = [
    "train", "--model", "geossm-nano", "--set", "depth=2", "--set", "embed_dim=32",
    "--ground-size", "32x128", "--satellite-size", "64x64", "--data", "synthetic:64",
    "--max-steps", "2", "--device", "cpu", "--no-progress", "--lr", "1e-3", "--warmup-steps", "1",
]


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.slow
def test_ddp_matches_single_process(tmp_path):
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "-m", "cvgl_edge.cli", *ARGS, "--batch-size", "8", "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    single = subprocess.run(
        [sys.executable, "-m", "cvgl_edge.cli", *ARGS, "--batch-size", "16", "--out", str(tmp_path / "one")],
        capture_output=True, text=True, timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    a, b = _weights(tmp_path / "ddp" / "last.pt"), _weights(tmp_path / "one" / "last.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert ddp.stderr.count("steps in") == 1  # only rank 0 reports

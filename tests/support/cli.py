"""The command line as the tests run it: ``cvgl-edge ARGS`` in a subprocess, and its one-line errors.

Shared by every test that drives a command end to end (tests/cli/, tests/bench/, tests/train/,
tests/export/, ...). ``train_cli`` is the VimGeo/LRFR tests' training run, which reuses the
generated synthetic pairs.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: The synthetic generator keys its on-disk cache by spec and generator version, so a fixed
#: folder is safe to share between runs and test files (64x64 pairs: a few MB).
SYNTHETIC_CACHE = Path(tempfile.gettempdir()) / "cvgl-edge-tests-synthetic-64"


def cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "cvgl_edge.cli", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def assert_one_line_error(result, fragment):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in lines[0]


def train_cli(*args: str, timeout: int = 300):
    """``cvgl-edge train ARGS`` with the shared synthetic-data cache."""
    os.environ.setdefault("CVGL_EDGE_CACHE", str(SYNTHETIC_CACHE))
    return cli("train", *args, timeout=timeout)

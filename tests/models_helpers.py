"""Shared by the VimGeo/LRFR tests: a CLI training run that reuses the generated synthetic pairs."""

import os
import tempfile
from pathlib import Path

from test_cli import cli

#: The synthetic generator keys its on-disk cache by spec and generator version, so a fixed
#: folder is safe to share between runs and test files (64x64 pairs: a few MB).
SYNTHETIC_CACHE = Path(tempfile.gettempdir()) / "cvgl-edge-tests-synthetic-64"


def train_cli(*args: str, timeout: int = 300):
    """``cvgl-edge train ARGS`` with the shared synthetic-data cache."""
    os.environ.setdefault("CVGL_EDGE_CACHE", str(SYNTHETIC_CACHE))
    return cli("train", *args, timeout=timeout)

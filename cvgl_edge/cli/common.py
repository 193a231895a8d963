"""What the command modules share: the --data, --backend and --hard-negatives help texts (from the
dataset and backend tables) and the --json writer."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from cvgl_edge.data.registry import DATASETS
from cvgl_edge.io import atomic_write_json
from cvgl_edge.progress import console
from cvgl_edge.runtime.backends import BACKENDS, artifact_backends, backends_help

DATA_HELP = ("Dataset: " + ", ".join(f"'{kind.spec}' ({kind.description})" for kind in DATASETS.values())
             + "; a bare PATH is recognised by its layout. University-1652 and VIGOR have train and test "
             "splits (val = test).")
#: the --backend values, from the backend table
BACKENDS_HELP = backends_help()
#: which suffix means which backend, e.g. ".pt torch, .onnx onnxruntime, .engine tensorrt"
SUFFIXES_HELP = ", ".join(f"{backend.suffix} {backend.name}" for backend in BACKENDS.values())

HARD_NEGATIVES_HELP = ("Hard-negative batches (Sample4Geo): off, gps (geographic neighbours), similarity (descriptor "
                       "neighbours after each evaluation; set --eval-every) or gps+similarity (gps until the first "
                       "evaluation).")


def write_json(record: dict, path: Optional[Path], said: str = "metrics written to") -> None:
    """``--json PATH``: write ``record`` there atomically and print ``<said> PATH`` (nothing without one)."""
    if path is None:
        return
    atomic_write_json(record, path)
    console.print(f"{said} {path}")


def artifact_backends_help() -> str:
    """'onnxruntime (CPU) or tensorrt (GPU)' for commands that take exported files only."""
    names = [f"{b.name} ({'GPU' if b.needs_gpu else 'CPU'})" for b in artifact_backends()]
    return ", ".join(names[:-1]) + f" or {names[-1]}"

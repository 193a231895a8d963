"""What the command modules share: the --data and --hard-negatives help texts and the --json writer."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from cvgl_edge.io import atomic_write_json
from cvgl_edge.progress import console

DATA_HELP = ("Dataset: 'synthetic' (built in), 'synthetic:N' (N training pairs), 'synthetic-drone[:N]' "
             "(north-up nadir drone frames vs tiles, both through the aerial branch, as `localize` uses "
             "them), 'cvusa:PATH', 'cvact:PATH', 'university1652:PATH' (drone <-> satellite), "
             "'vigor:PATH' (same-area) or 'vigor-cross:PATH' (cross-area); a bare PATH is recognised "
             "by its layout. University-1652 and VIGOR have train and test splits (val = test).")

HARD_NEGATIVES_HELP = ("Hard-negative batches (Sample4Geo): off, gps (geographic neighbours), similarity (descriptor "
                       "neighbours after each evaluation; set --eval-every) or gps+similarity (gps until the first "
                       "evaluation).")


def write_json(record: dict, path: Optional[Path], said: str = "metrics written to") -> None:
    """``--json PATH``: write ``record`` there atomically and print ``<said> PATH`` (nothing without one)."""
    if path is None:
        return
    atomic_write_json(record, path)
    console.print(f"{said} {path}")

"""CVUSA (the 44,416-pair subset used by CVM-Net/SAFA/Sample4Geo), as distributed.

Layout::

    ROOT/splits/train-19zl.csv   no header; columns: aerial path, panorama path, annotation path
    ROOT/splits/val-19zl.csv     (paths relative to ROOT, e.g. bingmap/19/0000019.jpg,
                                  streetview/panos/0000019.jpg, streetview/annotations/0000019.png)

Ids are the aerial file names without extension.  CVUSA's split files carry no
coordinates, so lat/lon are NaN.  Panoramas are north-aligned (north in the
middle column), matching the polar transform.
"""

from __future__ import annotations

import csv
from pathlib import Path

from cvgl_edge.data.pairs import PairIndex, check_pairs_exist, require_dir, require_file
from cvgl_edge.errors import CvglError

SPLIT_FILES = {"train": "train-19zl.csv", "val": "val-19zl.csv"}
LAYOUT = "splits/train-19zl.csv"


def looks_like_cvusa(root: Path) -> bool:
    """True when ``root`` holds CVUSA's split files."""
    return any((root / "splits" / name).is_file() for name in SPLIT_FILES.values())


def read_split_csv(csv_path: Path) -> list[tuple[str, str]]:
    """(aerial, panorama) relative paths from one split file; CvglError on malformed lines."""
    rows: list[tuple[str, str]] = []
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                cells = [c.strip() for c in row]
                if not any(cells):
                    continue
                if len(cells) < 2 or not cells[0] or not cells[1]:
                    raise CvglError(f"malformed CVUSA split file {csv_path} line {lineno}: expected "
                                    f"'aerial,panorama,annotation', got {','.join(row)!r}")
                rows.append((cells[0], cells[1]))
    except UnicodeDecodeError as exc:
        raise CvglError(f"malformed CVUSA split file (not UTF-8 text): {csv_path}") from exc
    except csv.Error as exc:
        raise CvglError(f"malformed CVUSA split file {csv_path}: {exc}") from exc
    if not rows:
        raise CvglError(f"CVUSA split file lists no pairs: {csv_path}")
    return rows


def load_cvusa(root: str | Path, split: str, skip_missing: bool = False) -> PairIndex:
    """Pairs of a CVUSA split ("train" or "val"), checking that every listed image exists."""
    root = Path(root)
    if split not in SPLIT_FILES:
        raise CvglError(f"CVUSA has no {split!r} split (valid: {', '.join(SPLIT_FILES)})")
    require_dir(root, "CVUSA dataset")
    require_dir(root / "splits", "CVUSA splits")
    csv_path = root / "splits" / SPLIT_FILES[split]
    require_file(csv_path, "CVUSA split file")
    rows = read_split_csv(csv_path)
    aerial = [root / a for a, _ in rows]
    ground = [root / g for _, g in rows]
    ids = [Path(a).stem for a, _ in rows]
    index = PairIndex("CVUSA", split, ground, aerial, ids)
    return check_pairs_exist(index, skip_missing)

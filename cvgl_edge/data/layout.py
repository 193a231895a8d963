"""Which public dataset layout a folder holds, so ``--data PATH`` works without a scheme.

Why detect: users point at the folder they downloaded; naming the scheme
(``cvusa:PATH``) stays possible and skips detection.  A folder that matches no
layout is a one-line error that says what each layout looks like.
"""

from __future__ import annotations

from pathlib import Path

from cvgl_edge.data.university1652 import looks_like_university1652
from cvgl_edge.data.vigor import looks_like_vigor
from cvgl_edge.errors import CvglError

#: schemes a spec may name explicitly (datasets.build_dataset accepts these)
SCHEME_NAMES = ("synthetic", "synthetic-drone", "cvusa", "cvact", "university1652", "vigor", "vigor-cross")

EXPECTED = ("CVUSA (splits/train-19zl.csv), CVACT (ACT_data.mat), University-1652 "
            "(train/{satellite,drone}/ or test/{query_drone,gallery_satellite}/) or VIGOR "
            "(<City>/panorama/ and splits/<City>/satellite_list.txt); or name one: "
            "cvusa:PATH, cvact:PATH, university1652:PATH, vigor:PATH, vigor-cross:PATH")


def detect_layout(root: Path) -> str:
    """The scheme whose public layout ``root`` holds; CvglError (one line) if none does."""
    if not root.is_dir():
        raise CvglError(f"dataset folder not found: {root}")
    if (root / "splits" / "train-19zl.csv").is_file() or (root / "splits" / "val-19zl.csv").is_file():
        return "cvusa"
    if (root / "ACT_data.mat").is_file():
        return "cvact"
    if looks_like_university1652(root):
        return "university1652"
    if looks_like_vigor(root):
        return "vigor"
    raise CvglError(f"{root} matches no known dataset layout: expected {EXPECTED}")


def resolve_spec(spec: str) -> str:
    """``spec`` itself when it names a scheme; ``<scheme>:<path>`` for a bare dataset folder."""
    head, colon, _ = spec.partition(":")
    if colon and "/" not in head:  # scheme:arg (a known scheme, or an unknown one that build_dataset names)
        return spec
    path = Path(spec).expanduser()
    if spec.strip() and (path.is_dir() or "/" in spec or spec.startswith((".", "~"))):
        return f"{detect_layout(path)}:{path}"
    return spec

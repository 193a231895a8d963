"""Which public dataset layout a folder holds, so ``--data PATH`` works without a scheme.

Why detect: users point at the folder they downloaded; naming the scheme
(``cvusa:PATH``) stays possible and skips detection.  A folder that matches no
layout is a one-line error that says what each layout looks like.
"""

from __future__ import annotations

from pathlib import Path

from cvgl_edge.data.registry import DATASETS, detectable
from cvgl_edge.errors import CvglError

#: schemes a spec may name explicitly (datasets.build_dataset accepts these)
SCHEME_NAMES = tuple(DATASETS)


def expected_layouts() -> str:
    """What each detectable layout looks like, and the schemes that name one explicitly."""
    kinds = detectable()
    layouts = ", ".join(k.layout for k in kinds[:-1]) + f" or {kinds[-1].layout}"
    named = ", ".join(k.spec for k in DATASETS.values() if k.spec.endswith(":PATH"))
    return f"{layouts}; or name one: {named}"


def detect_layout(root: Path) -> str:
    """The scheme whose public layout ``root`` holds; CvglError (one line) if none does."""
    if not root.is_dir():
        raise CvglError(f"dataset folder not found: {root}")
    for kind in detectable():
        if kind.looks_like(root):
            return kind.scheme
    raise CvglError(f"{root} matches no known dataset layout: expected {expected_layouts()}")


def resolve_spec(spec: str) -> str:
    """``spec`` itself when it names a scheme; ``<scheme>:<path>`` for a bare dataset folder."""
    head, colon, _ = spec.partition(":")
    if colon and "/" not in head:  # scheme:arg (a known scheme, or an unknown one that build_dataset names)
        return spec
    path = Path(spec).expanduser()
    if spec.strip() and (path.is_dir() or "/" in spec or spec.startswith((".", "~"))):
        return f"{detect_layout(path)}:{path}"
    return spec

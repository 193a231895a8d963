"""The two views of a dual encoder and their aliases, without PyTorch.

Why here: the runtimes (ONNX Runtime, TensorRT) and the localisation loop pick a branch by
view name as the PyTorch models do ('drone' queries go through the aerial branch), and the
deployment install has no PyTorch to ask ``GeoSSM.canonical_view``.
"""

from __future__ import annotations

from cvgl_edge.errors import CvglError

VIEWS = ("ground", "satellite")
VIEW_ALIASES = {"drone": "satellite"}  # aerial query photos go through the aerial branch


def canonical_view(view: str) -> str:
    """'ground' | 'satellite' (| 'drone' -> 'satellite'); anything else is a CvglError."""
    view = VIEW_ALIASES.get(view, view)
    if view not in VIEWS:
        valid = ", ".join(VIEWS + tuple(VIEW_ALIASES))
        raise CvglError(f"unknown view {view!r}; choose one of: {valid}")
    return view

"""The two views of a dual encoder, their aliases and the retrieval directions, without PyTorch.

Why here: the runtimes (ONNX Runtime, TensorRT) and the localisation loop pick a branch by
view name as the PyTorch models do ('drone' queries go through the aerial branch), and the
deployment install has no PyTorch to ask ``GeoSSM.canonical_view``.
"""

from __future__ import annotations

from cvgl_edge.errors import CvglError

VIEWS = ("ground", "satellite")
VIEW_ALIASES = {"drone": "satellite"}  # aerial query photos go through the aerial branch
#: what a dataset's query images are (drone frames and photos go through the aerial branch)
QUERY_VIEWS = ("ground", "drone")
#: every view an image may be prepared for
IMAGE_VIEWS = VIEWS + tuple(VIEW_ALIASES)


def direction(query_view: str, gallery_view: str) -> str:
    """The name records use for one retrieval direction, e.g. 'drone->satellite'."""
    return f"{query_view}->{gallery_view}"


GROUND_TO_SATELLITE = direction("ground", "satellite")
SATELLITE_TO_GROUND = direction("satellite", "ground")
#: the two directions of paired data (row i of each side is one place); the first is the headline
PAIRED_DIRECTIONS = (GROUND_TO_SATELLITE, SATELLITE_TO_GROUND)


def canonical_view(view: str) -> str:
    """'ground' | 'satellite' (| 'drone' -> 'satellite'); anything else is a CvglError."""
    view = VIEW_ALIASES.get(view, view)
    if view not in VIEWS:
        valid = ", ".join(VIEWS + tuple(VIEW_ALIASES))
        raise CvglError(f"unknown view {view!r}; choose one of: {valid}")
    return view

"""Retrieval protocols: what a dataset's official evaluation ranks, against what, and what counts as a hit.

Paired datasets (synthetic, CVUSA, CVACT) are evaluated pair-to-pair (query i matches
reference i; ``eval.metrics.cross_view_metrics``) and have no protocol here.  University-1652
and VIGOR are not one-to-one: a drone query has one true satellite tile among hundreds of
distractor classes, a satellite query has ~54 true drone photos, a VIGOR panorama has one
positive tile plus three semi-positive tiles that also cover it.  A :class:`RetrievalProtocol`
spells that out so every caller (``cvgl-edge eval``, training-time evaluation, exported
artifacts) scores the same thing and labels it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cvgl_edge.data.image_list import ImageListDataset
from cvgl_edge.errors import CvglError

#: ``variant`` values: the dataset's official protocol, or Sample4Geo's University-1652 one
VARIANTS = ("official", "sample4geo")


@dataclass
class RetrievalProtocol:
    """One retrieval direction of a dataset split.

    ``positives[q]``: gallery indices that are true matches of query q (at least one);
    ``semi_positives[q]`` (VIGOR only, else None): gallery indices that cover the query
    without being its positive: negatives for R@K, hits for the hit rate.
    Images are prepared at ``ground_size`` / ``satellite_size`` (polar-transformed aerial
    views with ``polar``), as the model was trained.
    """

    name: str
    direction: str
    variant: str
    label: str
    query: list[Path]
    query_view: str
    gallery: list[Path]
    gallery_view: str
    positives: list[np.ndarray]
    semi_positives: list[np.ndarray] | None = None
    ground_size: tuple[int, int] = (128, 512)
    satellite_size: tuple[int, int] = (256, 256)
    polar: bool = False
    details: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.positives) != len(self.query):
            raise ValueError("one positives entry per query is required")
        if self.semi_positives is not None and len(self.semi_positives) != len(self.query):
            raise ValueError("one semi-positives entry per query is required")

    def images(self, side: str) -> ImageListDataset:
        """The query or gallery images as a dataset at the model input size."""
        if side not in ("query", "gallery"):
            raise ValueError(f"side must be 'query' or 'gallery', got {side!r}")
        paths = self.query if side == "query" else self.gallery
        view = self.query_view if side == "query" else self.gallery_view
        return ImageListDataset(paths, view, self.ground_size, self.satellite_size, self.polar)

    def describe(self) -> dict[str, object]:
        """JSON-ready summary for records (no image lists)."""
        return {"name": self.name, "direction": self.direction, "variant": self.variant, "label": self.label,
                "queries": len(self.query), "gallery": len(self.gallery), **self.details}


def protocol_summary(protocols: list[RetrievalProtocol]) -> dict[str, object]:
    """``protocol`` entry of a metrics record: the label line and the per-direction facts."""
    return {"label": protocol_label(protocols), "variant": protocols[0].variant,
            "directions": [p.describe() for p in protocols]}


def protocol_label(protocols: list[RetrievalProtocol]) -> str:
    """One line naming every direction's protocol, e.g. for ``cvgl-edge eval`` output."""
    return "; ".join(p.label for p in protocols)


def split_spec(spec: str) -> tuple[str, str]:
    """(scheme, argument) of a dataset spec, scheme lower-cased."""
    scheme, _, arg = spec.partition(":")
    return scheme.strip().lower(), arg.strip()


def build_protocols(spec: str, split: str, ground_size: tuple[int, int] = (128, 512),
                    satellite_size: tuple[int, int] = (256, 256), polar: bool = False,
                    variant: str = "official") -> list[RetrievalProtocol]:
    """The retrieval protocols of ``spec``'s ``split``; empty for paired datasets.

    University-1652: drone->satellite and satellite->drone; VIGOR (``vigor:`` same-area,
    ``vigor-cross:`` cross-area): ground->satellite.  ``variant="sample4geo"`` drops gallery
    classes without a query (University-1652 only).  A bare folder path is resolved by
    :func:`cvgl_edge.data.layout.resolve_spec`.
    """
    from cvgl_edge.data.layout import resolve_spec

    if variant not in VARIANTS:
        raise CvglError(f"unknown protocol variant {variant!r} (valid: {', '.join(VARIANTS)})")
    scheme, arg = split_spec(resolve_spec(spec))
    sizes = {"ground_size": (int(ground_size[0]), int(ground_size[1])),
             "satellite_size": (int(satellite_size[0]), int(satellite_size[1])), "polar": bool(polar)}
    if scheme == "university1652":
        from cvgl_edge.data.university1652 import university1652_protocols

        return university1652_protocols(Path(arg).expanduser(), split, variant, **sizes)
    if variant != "official":
        raise CvglError(f"the {variant} protocol variant applies to University-1652 only; "
                        f"{scheme} data is evaluated with its official protocol")
    if scheme in ("vigor", "vigor-cross"):
        from cvgl_edge.data.vigor import vigor_protocols

        return vigor_protocols(Path(arg).expanduser(), split, cross_area=scheme == "vigor-cross", **sizes)
    return []

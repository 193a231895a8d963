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

#: ``variant`` values: the dataset authors' evaluation code, or Sample4Geo's (``eval.scoring``)
VARIANTS = ("official", "sample4geo")


@dataclass
class RetrievalProtocol:
    """One retrieval direction of a dataset split.

    ``positives[q]``: gallery indices that are true matches of query q (at least one);
    ``semi_positives[q]`` (VIGOR only, else None): gallery indices that cover the query
    without being its positive: negatives for R@K, not counted against the hit rate.
    ``dataset`` (university1652, vigor) and ``variant`` select the scoring rules
    (``eval.scoring``); ``gallery_total`` is the gallery size those rules see when images were
    removed from the ranking (Sample4Geo's University-1652 junk), else None.
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
    dataset: str = ""
    gallery_total: int | None = None

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
        sizes = {"gallery_total": self.gallery_total} if self.gallery_total is not None else {}
        return {"name": self.name, "direction": self.direction, "variant": self.variant, "label": self.label,
                "queries": len(self.query), "gallery": len(self.gallery), **sizes, **self.details}


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

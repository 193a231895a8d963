"""The retrieval protocols of a data spec: the dataset's registry entry builds them.

Why apart from ``data.protocol``: the datasets build :class:`RetrievalProtocol` records, and
this module reaches the datasets (through ``data.registry``); with both in one module the two
would import each other.
"""

from __future__ import annotations

from pathlib import Path

from cvgl_edge.data.layout import resolve_spec
from cvgl_edge.data.protocol import VARIANTS, RetrievalProtocol, split_spec
from cvgl_edge.data.registry import dataset_kind
from cvgl_edge.errors import CvglError


def build_protocols(spec: str, split: str, ground_size: tuple[int, int] = (128, 512),
                    satellite_size: tuple[int, int] = (256, 256), polar: bool = False,
                    variant: str = "official") -> list[RetrievalProtocol]:
    """The retrieval protocols of ``spec``'s ``split``; empty for paired datasets.

    University-1652: drone->satellite and satellite->drone; VIGOR (``vigor:`` same-area,
    ``vigor-cross:`` cross-area): ground->satellite.  ``variant="sample4geo"`` removes gallery
    classes without a query from University-1652's ranking (Sample4Geo's junk images) and
    labels VIGOR with Sample4Geo's rules.  A bare folder path is resolved by
    :func:`cvgl_edge.data.layout.resolve_spec`.
    """
    if variant not in VARIANTS:
        raise CvglError(f"unknown protocol variant {variant!r} (valid: {', '.join(VARIANTS)})")
    scheme, arg = split_spec(resolve_spec(spec))
    kind = dataset_kind(scheme, spec)
    if kind.protocols is None:
        return []
    sizes = {"ground_size": (int(ground_size[0]), int(ground_size[1])),
             "satellite_size": (int(satellite_size[0]), int(satellite_size[1])), "polar": bool(polar)}
    return kind.protocols(Path(arg).expanduser(), split, variant, **sizes)

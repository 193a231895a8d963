"""Data: image I/O and normalisation, the SAFA polar transform, paired augmentation,
CVUSA / CVACT / University-1652 / VIGOR loaders, the deterministic synthetic cross-view
generator, one dataset interface over all of them (``build_dataset``; numpy items), and the
retrieval protocols of the datasets that are not one-to-one (``build_protocols``).

The names below are imported from their modules on first use (PEP 562), not here: the
localisation loop and the runtimes import torch-free modules of this package (images,
normalize, polar, render, ...) on the deployment install, which has no PyTorch (nor SciPy),
and importing any submodule runs this file first.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("PairAugment", "mirror_panorama", "mirror_tile", "roll_panorama", "rotate_tile"), "augment"),
    "load_cvact": "cvact",
    "load_cvusa": "cvusa",
    **dict.fromkeys(("SCHEMES", "CrossViewDataset", "build_dataset", "collate_pairs"), "datasets"),
    **dict.fromkeys(("GeoRef", "utm_to_latlon"), "georef"),
    "ImageListDataset": "image_list",
    **dict.fromkeys(("read_image", "resize", "write_image"), "images"),
    **dict.fromkeys(("detect_layout", "resolve_spec"), "layout"),
    **dict.fromkeys(("MEAN_RGB", "PIXEL_SCALE", "STD_RGB", "from_tensor", "normalize_array", "to_tensor"),
                    "normalize"),
    "polar_transform": "polar",
    "build_protocols": "benchmark_protocols",
    **dict.fromkeys(("RetrievalProtocol", "protocol_label", "protocol_summary"), "protocol"),
    **dict.fromkeys(("render_drone", "render_panorama", "render_tile"), "render"),
    **dict.fromkeys(("SyntheticCrossView", "SyntheticPairs", "SyntheticSpec", "load_or_generate"), "synthetic"),
    "load_vigor": "vigor",
    **dict.fromkeys(("WorldMap", "generate_world"), "worldgen"),
}

__all__ = [
    "MEAN_RGB", "STD_RGB", "PIXEL_SCALE", "to_tensor", "from_tensor", "normalize_array",
    "read_image", "write_image", "resize", "polar_transform",
    "PairAugment", "mirror_panorama", "mirror_tile", "rotate_tile", "roll_panorama",
    "SyntheticCrossView", "SyntheticSpec", "SyntheticPairs", "load_or_generate",
    "WorldMap", "generate_world", "render_tile", "render_panorama", "render_drone",
    "GeoRef", "utm_to_latlon", "load_cvusa", "load_cvact",
    "CrossViewDataset", "build_dataset", "collate_pairs", "SCHEMES",
    "ImageListDataset", "RetrievalProtocol", "build_protocols", "protocol_label", "protocol_summary",
    "detect_layout", "resolve_spec", "load_vigor",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

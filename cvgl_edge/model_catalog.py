"""The model presets in words and numbers, without PyTorch: names, descriptions, input sizes,
descriptor size and parameter count.

Why a table: ``cvgl-edge models`` must list the presets on the deployment install (no PyTorch)
and should not build seven networks to do it. The PyTorch registry (``cvgl_edge.models.presets``)
registers exactly these names with these descriptions; tests/core/test_model_catalog.py builds every
preset and checks the numbers here against the built models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cvgl_edge.errors import CvglError


@dataclass(frozen=True)
class Preset:
    """One preset as ``cvgl-edge models`` lists it (sizes are H, W)."""

    name: str
    description: str
    ground_size: tuple[int, int]
    satellite_size: tuple[int, int]
    descriptor_dim: int
    params_m: float  # parameters in millions, rounded to 2 decimals

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "ground_size": list(self.ground_size), "satellite_size": list(self.satellite_size),
                "descriptor_dim": self.descriptor_dim, "params_m": self.params_m, "description": self.description}


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("geossm-small", "GeoSSM paper model: Vim-Small dual encoder, CGA 6144-d",
           (128, 512), (256, 256), 6144, 50.87),
    Preset("geossm-tiny", "Vim-Tiny dual encoder, CGA 3072-d", (128, 512), (256, 256), 3072, 13.93),
    Preset("geossm-nano", "toy GeoSSM for tests and the demo, CGA 512-d", (64, 256), (128, 128), 512, 0.43),
    Preset("vimgeo-small", "VimGeo paper model: one shared Vim-Small at 384x384, cls readout, 384-d "
           "(descriptor_dim 192|384|768)", (384, 384), (384, 384), 384, 25.56),
    Preset("vimgeo-nano", "toy VimGeo for tests and CPU runs: shared Vim width 64, depth 2, 64x64, 64-d",
           (64, 64), (64, 64), 64, 0.13),
    Preset("lrfr", "LRFR paper model: ConvNeXt-Tiny to stage 3 + GSRA + SALAD 128x64 = 8192-d, shared, 384x384",
           (384, 384), (384, 384), 8192, 12.85),
    Preset("lrfr-nano", "toy LRFR for tests and CPU runs: ConvNeXt 16/32/64, GSRA 4 groups, SALAD 8x8 = 64-d, "
           "64x64", (64, 64), (64, 64), 64, 0.1),
)}


def preset(name: str) -> Preset:
    """The catalogue entry of ``name``; CvglError naming the presets if there is none."""
    if name not in PRESETS:
        raise CvglError(f"unknown model {name!r}; available: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def preset_rows() -> list[dict[str, Any]]:
    """What ``cvgl-edge models --json`` prints: one dict per preset, sorted by name."""
    return [PRESETS[name].row() for name in sorted(PRESETS)]

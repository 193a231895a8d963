"""Registered GeoSSM presets. Importing this module fills the registry.

- geossm-small: the paper's model (Vim-S: width 384, depth 24, middle cls token,
  CGA 24 groups of 16 channels -> 256 x 24 = 6144-d at 128x512 / 256x256).
- geossm-tiny: Vim-T width 192, depth 24, CGA 12 groups of 16 -> 3072-d.
- geossm-nano: a toy size for tests, CI and the demo (width 64, depth 4, 64x256 /
  128x128 inputs, 64 patches, CGA 8 groups of 8 -> 512-d); every option is overridable.
"""

from __future__ import annotations

from typing import Any

from cvgl_edge.models.geossm import GeoSSM, GeoSSMConfig
from cvgl_edge.models.registry import register_model


def _defaults(**changes: Any) -> dict[str, Any]:
    base = GeoSSMConfig().to_dict()
    base.update(changes)
    return GeoSSMConfig.from_dict(base).to_dict()


def _build_geossm(**options: Any) -> GeoSSM:
    return GeoSSM(GeoSSMConfig.from_dict(options))


register_model(
    "geossm-small",
    _defaults(embed_dim=384, depth=24, cga_groups=24),
    "GeoSSM paper model: Vim-Small dual encoder, CGA 6144-d",
)(_build_geossm)
register_model(
    "geossm-tiny",
    _defaults(embed_dim=192, depth=24, cga_groups=12),
    "Vim-Tiny dual encoder, CGA 3072-d",
)(_build_geossm)
register_model(
    "geossm-nano",
    _defaults(embed_dim=64, depth=4, cga_groups=8,
              ground_size=(64, 256), satellite_size=(128, 128)),
    "toy GeoSSM for tests and the demo, CGA 512-d",
)(_build_geossm)

"""Registered model presets (GeoSSM, VimGeo, LRFR). Importing this module fills the registry.

- geossm-small: the paper's model (Vim-S: width 384, depth 24, middle cls token,
  CGA 24 groups of 16 channels -> 256 x 24 = 6144-d at 128x512 / 256x256).
- geossm-tiny: Vim-T width 192, depth 24, CGA 12 groups of 16 -> 3072-d.
- geossm-nano: a toy size for tests, CI and the demo (width 64, depth 4, 64x256 /
  128x128 inputs, 64 patches, CGA 8 groups of 8 -> 512-d); every option is overridable.
- vimgeo-small / vimgeo-nano: VimGeo (seed 001), one shared Vim trunk at 384x384 (models/vimgeo.py).
- lrfr / lrfr-nano: LRFR (seed 002), ConvNeXt-Tiny to stage 3 + GSRA + SALAD (models/lrfr.py).
"""

from __future__ import annotations

from typing import Any

from cvgl_edge.models.geossm import GeoSSM, GeoSSMConfig
from cvgl_edge.models.lrfr import LRFR, LRFRConfig
from cvgl_edge.models.registry import register_model
from cvgl_edge.models.vimgeo import VimGeo, VimGeoConfig


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


# --------------------------------------------------------------------------- VimGeo (seed 001)
def _vimgeo_defaults(**changes: Any) -> dict[str, Any]:
    base = VimGeoConfig().to_dict()
    base.update(changes)
    return VimGeoConfig.from_dict(base).to_dict()


def _build_vimgeo(**options: Any) -> VimGeo:
    return VimGeo(VimGeoConfig.from_dict(options))


register_model(
    "vimgeo-small",
    _vimgeo_defaults(embed_dim=384, depth=24, descriptor_dim=384),
    "VimGeo paper model: one shared Vim-Small at 384x384, cls readout, 384-d (descriptor_dim 192|384|768)",
)(_build_vimgeo)
register_model(
    "vimgeo-nano",
    _vimgeo_defaults(embed_dim=64, depth=2, ground_size=(64, 64), satellite_size=(64, 64), descriptor_dim=64),
    "toy VimGeo for tests and CPU runs: shared Vim width 64, depth 2, 64x64, 64-d",
)(_build_vimgeo)


# --------------------------------------------------------------------------- LRFR (seed 002)
def _lrfr_defaults(**changes: Any) -> dict[str, Any]:
    base = LRFRConfig().to_dict()
    base.update(changes)
    return LRFRConfig.from_dict(base).to_dict()


def _build_lrfr(**options: Any) -> LRFR:
    return LRFR(LRFRConfig.from_dict(options))


register_model(
    "lrfr",
    _lrfr_defaults(),
    "LRFR paper model: ConvNeXt-Tiny to stage 3 + GSRA + SALAD 128x64 = 8192-d, shared, 384x384",
)(_build_lrfr)
register_model(
    "lrfr-nano",
    _lrfr_defaults(convnext_dims=(16, 32, 64), convnext_depths=(1, 1, 2), gsra_groups=4, salad_clusters=8,
                   salad_dim=8, salad_hidden=32, salad_dropout=0.0, ground_size=(64, 64), satellite_size=(64, 64)),
    "toy LRFR for tests and CPU runs: ConvNeXt 16/32/64, GSRA 4 groups, SALAD 8x8 = 64-d, 64x64",
)(_build_lrfr)

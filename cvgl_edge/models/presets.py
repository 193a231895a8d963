"""Registered model presets (GeoSSM, VimGeo, LRFR). Importing this module fills the registry.

- geossm-small: the paper's model (Vim-S: width 384, depth 24, middle cls token,
  CGA 24 groups of 16 channels -> 256 x 24 = 6144-d at 128x512 / 256x256).
- geossm-tiny: Vim-T width 192, depth 24, CGA 12 groups of 16 -> 3072-d.
- geossm-nano: a toy size for tests, CI and the demo (width 64, depth 4, 64x256 /
  128x128 inputs, 64 patches, CGA 8 groups of 8 -> 512-d); every option is overridable.
- vimgeo-small / vimgeo-nano: VimGeo (seed 001), one shared Vim trunk at 384x384 (models/vimgeo.py).
- lrfr / lrfr-nano: LRFR (seed 002), ConvNeXt-Tiny to stage 3 + GSRA + SALAD (models/lrfr.py).

Names and descriptions come from the torch-free catalogue (``cvgl_edge.model_catalog``), which
``cvgl-edge models`` lists without building anything; a preset added here is added there too.
"""

from __future__ import annotations

from typing import Any

from cvgl_edge.model_catalog import preset
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
    preset("geossm-small").description,
)(_build_geossm)
register_model(
    "geossm-tiny",
    _defaults(embed_dim=192, depth=24, cga_groups=12),
    preset("geossm-tiny").description,
)(_build_geossm)
register_model(
    "geossm-nano",
    _defaults(embed_dim=64, depth=4, cga_groups=8,
              ground_size=(64, 256), satellite_size=(128, 128)),
    preset("geossm-nano").description,
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
    preset("vimgeo-small").description,
)(_build_vimgeo)
register_model(
    "vimgeo-nano",
    _vimgeo_defaults(embed_dim=64, depth=2, ground_size=(64, 64), satellite_size=(64, 64), descriptor_dim=64),
    preset("vimgeo-nano").description,
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
    preset("lrfr").description,
)(_build_lrfr)
register_model(
    "lrfr-nano",
    _lrfr_defaults(convnext_dims=(16, 32, 64), convnext_depths=(1, 1, 2), gsra_groups=4, salad_clusters=8,
                   salad_dim=8, salad_hidden=32, salad_dropout=0.0, ground_size=(64, 64), satellite_size=(64, 64)),
    preset("lrfr-nano").description,
)(_build_lrfr)

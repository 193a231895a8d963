"""VimGeo (seed 001): one Vision Mamba shared by drone and satellite views, 384x384 inputs.

VimGeo is GeoSSM's Vim trunk used the way the paper does: ``share_weights=True`` (the
paper's ablation: shared 91.27 vs separate 89.98 D->S R@1), both views at 384x384 (24x24 =
576 patches), and a global descriptor of ``descriptor_dim`` values (ablation: 192 / 384 /
768, best 384 with Vim-S width 384).

Readout and projection (the paper text gives no more detail, so this is our reading): the
descriptor is Vim's own classification feature, the middle cls token after the final norm
(``readout="cls"``; ``mean`` pools the patch tokens instead). When ``descriptor_dim`` equals
the trunk width (the paper's 384 with Vim-S) it is used as is; any other value (192, 768)
adds a learned linear projection (with bias) from the readout to ``descriptor_dim``, which
keeps the backbone identical across the ablation rows. Param count at the paper's setting:
Vim-S at 384x384 without the ImageNet head, ~25.5M (paper: 26.0M).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.models.geossm import GeoSSM, GeoSSMConfig


@dataclass
class VimGeoConfig(GeoSSMConfig):
    """GeoSSMConfig with VimGeo's defaults plus ``descriptor_dim`` (output width after the projection)."""

    ground_size: tuple[int, int] = (384, 384)
    satellite_size: tuple[int, int] = (384, 384)
    share_weights: bool = True
    readout: str = "cls"
    descriptor_dim: int = 384  # type: ignore[assignment]  # a field here, a property in GeoSSMConfig

    def validate(self) -> None:
        super().validate()
        if isinstance(self.descriptor_dim, bool) or not isinstance(self.descriptor_dim, int) or self.descriptor_dim < 1:
            raise CvglError(f"descriptor_dim must be an integer >= 1, got {self.descriptor_dim!r}")

    @property
    def readout_dim(self) -> int:
        """Width of the readout before the optional projection."""
        return GeoSSMConfig.descriptor_dim.fget(self)  # type: ignore[attr-defined]

    @property
    def projected(self) -> bool:
        return self.descriptor_dim != self.readout_dim


class VimGeo(GeoSSM):
    """GeoSSM with a shared trunk by default and an optional projection head to ``descriptor_dim``."""

    def __init__(self, config: VimGeoConfig | Mapping[str, Any] | None = None) -> None:
        if config is None:
            config = VimGeoConfig()
        elif not isinstance(config, VimGeoConfig):
            config = VimGeoConfig.from_dict(config)
        super().__init__(config)
        self.model_name = "vimgeo"
        if config.projected:
            self.head = nn.Linear(config.readout_dim, config.descriptor_dim)
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    def encode(self, images: torch.Tensor, view: str) -> torch.Tensor:
        """Images of one view -> unit-length descriptors (B, descriptor_dim), fp32."""
        self.check_images(images, view)
        patches, cls = self.branch(view)(images, pos_embed=self.view_pos_embed(view))
        features = self.readout(patches, cls)
        if self.config.projected:
            features = self.head(features.to(self.head.weight.dtype))
        return F.normalize(features.float(), dim=-1)

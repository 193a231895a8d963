"""GeoSSM: a Vision-Mamba dual encoder (ground / satellite) with a parameter-free readout.

Each view has its own Vim backbone by default. With ``share_weights=True`` one trunk
serves both views (as VimGeo does); since the two views usually have different patch
grids (8x32 vs 16x16), each view keeps its own position embedding: the trunk's
``pos_embed`` serves the ground view and ``satellite_pos_embed`` the satellite view
(only created when the grids differ). Everything else is shared.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.models.mixer import BACKWARD_DT_BIAS
from cvgl_edge.models.readout import READOUTS, build_readout
from cvgl_edge.models.vim import VisionMamba
from cvgl_edge.models.vim_weights import (
    ClsPosition,
    VimLoadReport,
    load_vim_state_dict,
    read_vim_state_dict,
    resize_pos_embed,
)
from cvgl_edge.views import VIEWS, canonical_view


def _size(value: Any, name: str) -> tuple[int, int]:
    """Accept 128, (128, 512), [128, 512] -> (H, W)."""
    if isinstance(value, int):
        return (value, value)
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise CvglError(f"{name} must be an int or (height, width), got {value!r}") from None
    return (h, w)


@dataclass
class GeoSSMConfig:
    """Everything needed to rebuild a GeoSSM; round-trips through ``to_dict``/``from_dict``."""

    ground_size: tuple[int, int] = (128, 512)
    satellite_size: tuple[int, int] = (256, 256)
    patch_size: int = 16
    embed_dim: int = 384
    depth: int = 24
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    cls_token: bool = True
    readout: str = "cga"
    cga_groups: int = 24
    share_weights: bool = False
    drop_path: float = 0.0
    #: "zero" (official Vim init) or "dt-range" (cvgl-edge before 0.2): see BiMambaMixer
    backward_dt_bias: str = "zero"

    def __post_init__(self) -> None:
        self.ground_size = _size(self.ground_size, "ground_size")
        self.satellite_size = _size(self.satellite_size, "satellite_size")
        self.validate()

    def validate(self) -> None:
        """Reject configs that cannot build a working model, with a one-line reason."""
        for name in ("patch_size", "embed_dim", "depth", "d_state", "d_conv", "expand", "cga_groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise CvglError(f"{name} must be an integer, got {value!r}")
            if value < 1:
                raise CvglError(f"{name} must be >= 1, got {value}")
        for name in ("cls_token", "share_weights"):
            if not isinstance(getattr(self, name), bool):
                raise CvglError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if isinstance(self.drop_path, bool) or not isinstance(self.drop_path, (int, float)):
            raise CvglError(f"drop_path must be a number, got {self.drop_path!r}")
        for view in VIEWS:
            h, w = self.input_size(view)
            if h % self.patch_size or w % self.patch_size:
                raise CvglError(
                    f"{view}_size {h}x{w} is not a multiple of patch_size {self.patch_size}"
                )
        if self.readout not in READOUTS:
            raise CvglError(
                f"unknown readout {self.readout!r}; choose one of: {', '.join(READOUTS)}"
            )
        if self.readout == "cls" and not self.cls_token:
            raise CvglError("readout 'cls' needs cls_token=True")
        if self.readout == "cga":
            if self.cga_groups < 1 or self.embed_dim % self.cga_groups:
                raise CvglError(
                    f"cga_groups={self.cga_groups} must divide embed_dim={self.embed_dim}"
                )
            if self.num_patches("ground") != self.num_patches("satellite"):
                raise CvglError(
                    "the cga readout needs the same number of patches in both views: ground "
                    f"{self.grid('ground')} vs satellite {self.grid('satellite')}"
                )
        if not 0.0 <= self.drop_path < 1.0:
            raise CvglError(f"drop_path must be in [0, 1), got {self.drop_path}")
        if self.backward_dt_bias not in BACKWARD_DT_BIAS:
            raise CvglError(f"backward_dt_bias must be one of {', '.join(BACKWARD_DT_BIAS)}, "
                            f"got {self.backward_dt_bias!r}")

    def input_size(self, view: str) -> tuple[int, int]:
        return self.ground_size if view == "ground" else self.satellite_size

    def grid(self, view: str) -> tuple[int, int]:
        h, w = self.input_size(view)
        return (h // self.patch_size, w // self.patch_size)

    def num_patches(self, view: str) -> int:
        gh, gw = self.grid(view)
        return gh * gw

    @property
    def descriptor_dim(self) -> int:
        if self.readout == "cga":
            return self.num_patches("ground") * self.cga_groups
        return self.embed_dim

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/pickle-safe dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GeoSSMConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CvglError(
                f"unknown GeoSSM option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        return cls(**dict(data))


class GeoSSM(nn.Module):
    """Dual Vim encoder: ``encode(images, view)`` -> L2-normalised (B, descriptor_dim) fp32."""

    def __init__(self, config: GeoSSMConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if config is None:
            config = GeoSSMConfig()
        elif not isinstance(config, GeoSSMConfig):
            config = GeoSSMConfig.from_dict(config)
        self.config = config
        self.model_name = "geossm"  # build_model sets the registry name

        if config.share_weights:
            self.backbone = self._make_backbone("ground")
            if config.grid("satellite") != config.grid("ground"):
                rows = config.num_patches("satellite") + int(config.cls_token)
                self.satellite_pos_embed = nn.Parameter(torch.zeros(1, rows, config.embed_dim))
                nn.init.trunc_normal_(self.satellite_pos_embed, std=0.02)
        else:
            self.ground = self._make_backbone("ground")
            self.satellite = self._make_backbone("satellite")
        self.readout = build_readout(config.readout, config.cga_groups)

    def _make_backbone(self, view: str) -> VisionMamba:
        c = self.config
        return VisionMamba(
            c.input_size(view), patch_size=c.patch_size, embed_dim=c.embed_dim, depth=c.depth,
            cls_token=c.cls_token, drop_path=c.drop_path, d_state=c.d_state, d_conv=c.d_conv,
            expand=c.expand, backward_dt_bias=c.backward_dt_bias,
        )

    @property
    def descriptor_dim(self) -> int:
        return self.config.descriptor_dim

    @property
    def input_sizes(self) -> dict[str, tuple[int, int]]:
        return {view: self.config.input_size(view) for view in VIEWS}

    #: 'ground' | 'satellite' (| 'drone' -> 'satellite'); anything else is a CvglError
    canonical_view = staticmethod(canonical_view)

    def branch(self, view: str) -> VisionMamba:
        """The backbone that encodes ``view`` (the same module for both views when shared).

        To initialise from Vim weights prefer ``load_pretrained``: in shared mode it also
        fills the satellite view's own position embedding.
        """
        view = self.canonical_view(view)
        if self.config.share_weights:
            return self.backbone
        return self.ground if view == "ground" else self.satellite

    def view_pos_embed(self, view: str) -> torch.Tensor | None:
        """The pos_embed override for ``view`` (only the satellite view in shared mode)."""
        if self.config.share_weights and self.canonical_view(view) == "satellite":
            return getattr(self, "satellite_pos_embed", None)
        return None

    def check_images(self, images: torch.Tensor, view: str) -> None:
        view = self.canonical_view(view)
        eh, ew = self.config.input_size(view)
        if images.dim() != 4 or images.shape[1] != 3:
            raise CvglError(
                f"{view} images must be (batch, 3, {eh}, {ew}), got {tuple(images.shape)}"
            )
        h, w = images.shape[-2:]
        if (h, w) != (eh, ew):
            raise CvglError(f"{view} images must be {eh}x{ew} (HxW), got {h}x{w}")

    def encode(self, images: torch.Tensor, view: str) -> torch.Tensor:
        """Images of one view -> unit-length descriptors (B, descriptor_dim), fp32."""
        self.check_images(images, view)
        patches, cls = self.branch(view)(images, pos_embed=self.view_pos_embed(view))
        return F.normalize(self.readout(patches, cls).float(), dim=-1)

    def forward(
        self, ground: torch.Tensor, satellite: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(ground, "ground"), self.encode(satellite, "satellite")

    def load_pretrained(
        self,
        path: str | Path,
        src_cls_position: ClsPosition = "middle",
        trusted: bool = False,
    ) -> dict[str, VimLoadReport]:
        """Initialise every branch from a local official Vim checkpoint (read once)."""
        sd = read_vim_state_dict(path, trusted=trusted)
        if not self.config.share_weights:
            return {
                view: load_vim_state_dict(getattr(self, view), sd, src_cls_position)
                for view in VIEWS
            }
        report = load_vim_state_dict(self.backbone, sd, src_cls_position)
        if hasattr(self, "satellite_pos_embed") and "pos_embed" in sd:
            sat_pos = self.satellite_pos_embed
            mid = self.config.num_patches("satellite") // 2
            with torch.no_grad():
                sat_pos.copy_(resize_pos_embed(
                    sd["pos_embed"], self.config.grid("satellite"), self.config.cls_token,
                    src_cls_position=src_cls_position, fallback_cls_row=sat_pos[:, mid],
                ))
            report.notes.append("satellite_pos_embed resized from the checkpoint pos_embed")
        return {"shared": report}

"""LRFR (seed 002): ConvNeXt cut after stage 3 -> GSRA attention -> SALAD aggregation.

One branch = ``ConvNeXtTrunk`` (stem + 3 stages: 384 channels at stride 16 for the Tiny
widths) -> ``GSRA`` -> ``SALAD`` (128 clusters x 64 dims = 8192-d) -> L2 normalisation.

Weight sharing: the paper describes a single network applied to every input image
(Fig. 1, Sec. II: "we extract local features using a ConvNeXt network for a given input
image"), with the same input size for both views (University-1652: 384x384 drone and
satellite; CVUSA/CVACT: 256x512 ground panoramas and polar-transformed satellite images), so
``share_weights=True`` is the default: one branch serves both views. ``share_weights=False``
gives each view its own branch (then the views may have different input sizes). A shared
branch needs both views at one feature-map size, because GSRA's relation conv reads the
hw x hw relation matrix of that size.

Surface (the same as GeoSSM's, so training, eval, export and the runtime need no special
case): ``config`` (``to_dict``, ``input_size(view)``, ``descriptor_dim``), ``input_sizes``,
``descriptor_dim``, ``canonical_view``, ``check_images``, ``encode(images, view)``,
``forward(ground, satellite)``, ``branch(view)`` and ``load_pretrained(path)`` (torchvision
ConvNeXt-Tiny ImageNet weights from a local file).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.models.convnext import ConvNeXtLoadReport, ConvNeXtTrunk, load_convnext_state_dict, read_state_dict
from cvgl_edge.models.geossm import VIEWS, GeoSSM, _size
from cvgl_edge.models.gsra import GSRA
from cvgl_edge.models.salad import ORDERS as SALAD_ORDERS
from cvgl_edge.models.salad import SALAD


def _ints(value: Any, name: str) -> tuple[int, ...]:
    try:
        items = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise CvglError(f"{name} must be a list of integers, got {value!r}") from None
    if not items or min(items) < 1:
        raise CvglError(f"{name} must be a non-empty list of positive integers, got {list(items)}")
    return items


@dataclass
class LRFRConfig:
    """Everything needed to rebuild an LRFR model; round-trips through ``to_dict``/``from_dict``."""

    ground_size: tuple[int, int] = (384, 384)
    satellite_size: tuple[int, int] = (384, 384)
    share_weights: bool = True
    convnext_dims: tuple[int, ...] = (96, 192, 384)
    convnext_depths: tuple[int, ...] = (3, 3, 9)
    drop_path: float = 0.0
    gsra: bool = True
    gsra_groups: int = 8
    salad_clusters: int = 128
    salad_dim: int = 64
    salad_hidden: int = 512
    salad_iterations: int = 3
    salad_dropout: float = 0.3
    #: descriptor order: "feature-major" (the SALAD reference) or "cluster-major" (cvgl-edge before 0.2)
    salad_order: str = "feature-major"

    def __post_init__(self) -> None:
        self.ground_size = _size(self.ground_size, "ground_size")
        self.satellite_size = _size(self.satellite_size, "satellite_size")
        self.convnext_dims = _ints(self.convnext_dims, "convnext_dims")
        self.convnext_depths = _ints(self.convnext_depths, "convnext_depths")
        self.validate()

    def validate(self) -> None:
        """Reject configs that cannot build a working model, with a one-line reason."""
        for name in ("gsra_groups", "salad_clusters", "salad_dim", "salad_hidden", "salad_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CvglError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("share_weights", "gsra"):
            if not isinstance(getattr(self, name), bool):
                raise CvglError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if len(self.convnext_dims) != len(self.convnext_depths):
            raise CvglError(f"convnext_dims {list(self.convnext_dims)} and convnext_depths "
                            f"{list(self.convnext_depths)} must have one entry per stage")
        for name in ("drop_path", "salad_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise CvglError(f"{name} must be a number in [0, 1), got {value!r}")
        if self.salad_order not in SALAD_ORDERS:
            raise CvglError(f"salad_order must be one of {', '.join(SALAD_ORDERS)}, got {self.salad_order!r}")
        if self.gsra and self.convnext_dims[-1] % self.gsra_groups:
            raise CvglError(f"gsra_groups={self.gsra_groups} must divide the {self.convnext_dims[-1]} "
                            "backbone channels")
        for view in VIEWS:
            h, w = self.input_size(view)
            if h % self.stride or w % self.stride:
                raise CvglError(f"{view}_size {h}x{w} is not a multiple of the backbone stride {self.stride}")
            if self.positions(view) <= self.salad_clusters:
                raise CvglError(f"{view}_size {h}x{w} gives {self.positions(view)} feature positions, SALAD needs "
                                f"more than salad_clusters={self.salad_clusters}")
        if self.share_weights and self.gsra and self.grid("ground") != self.grid("satellite"):
            raise CvglError(f"shared weights need one input size for both views (GSRA is built for one feature "
                            f"map): ground {self.ground_size} vs satellite {self.satellite_size}; "
                            "set both sizes equal or share_weights=false")

    @property
    def stride(self) -> int:
        return 4 * 2 ** (len(self.convnext_dims) - 1)

    def input_size(self, view: str) -> tuple[int, int]:
        return self.ground_size if view == "ground" else self.satellite_size

    def grid(self, view: str) -> tuple[int, int]:
        h, w = self.input_size(view)
        return (h // self.stride, w // self.stride)

    def positions(self, view: str) -> int:
        gh, gw = self.grid(view)
        return gh * gw

    @property
    def descriptor_dim(self) -> int:
        return self.salad_clusters * self.salad_dim

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/pickle-safe dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LRFRConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CvglError(f"unknown LRFR option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**dict(data))


class LRFRBranch(nn.Module):
    """One view's encoder: images -> ConvNeXt features -> GSRA -> SALAD (B, clusters * dim), not normalised."""

    def __init__(self, config: LRFRConfig, view: str) -> None:
        super().__init__()
        c = config
        self.trunk = ConvNeXtTrunk(c.convnext_dims, c.convnext_depths, drop_path=c.drop_path)
        channels = c.convnext_dims[-1]
        self.gsra = GSRA(channels, c.grid(view), c.gsra_groups) if c.gsra else nn.Identity()
        self.salad = SALAD(channels, c.salad_clusters, c.salad_dim, c.salad_hidden, c.salad_iterations,
                           c.salad_dropout, c.salad_order)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.salad(self.gsra(self.trunk(images)))


class LRFR(nn.Module):
    """LRFR encoder(s): ``encode(images, view)`` -> L2-normalised (B, clusters * dim) fp32."""

    canonical_view = staticmethod(GeoSSM.canonical_view)

    def __init__(self, config: LRFRConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if config is None:
            config = LRFRConfig()
        elif not isinstance(config, LRFRConfig):
            config = LRFRConfig.from_dict(config)
        self.config = config
        self.model_name = "lrfr"  # build_model sets the registry name
        if config.share_weights:
            self.backbone = LRFRBranch(config, "ground")
        else:
            self.ground = LRFRBranch(config, "ground")
            self.satellite = LRFRBranch(config, "satellite")

    @property
    def descriptor_dim(self) -> int:
        return self.config.descriptor_dim

    @property
    def input_sizes(self) -> dict[str, tuple[int, int]]:
        return {view: self.config.input_size(view) for view in VIEWS}

    def branch(self, view: str) -> LRFRBranch:
        """The branch that encodes ``view`` (the same module for both views when shared)."""
        view = self.canonical_view(view)
        if self.config.share_weights:
            return self.backbone
        return self.ground if view == "ground" else self.satellite

    check_images = GeoSSM.check_images

    def encode(self, images: torch.Tensor, view: str) -> torch.Tensor:
        """Images of one view -> unit-length descriptors (B, descriptor_dim), fp32."""
        self.check_images(images, view)
        return F.normalize(self.branch(view)(images).float(), dim=-1)

    def forward(self, ground: torch.Tensor, satellite: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(ground, "ground"), self.encode(satellite, "satellite")

    def load_pretrained(self, path: str | Path, trusted: bool = False) -> dict[str, ConvNeXtLoadReport]:
        """Initialise every branch's ConvNeXt from a local torchvision ConvNeXt-Tiny .pth (read once).

        Stage 4 and the classifier in the file are ignored (the trunk ends after stage 3);
        GSRA and SALAD keep their random init. Returns one report per branch.
        """
        state = read_state_dict(path, trusted=trusted)
        if self.config.share_weights:
            return {"shared": load_convnext_state_dict(self.backbone.trunk, state)}
        return {view: load_convnext_state_dict(getattr(self, view).trunk, state) for view in VIEWS}

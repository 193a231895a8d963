"""ConvNeXt trunk (stem + the first stages), state-dict compatible with torchvision's ConvNeXt.

Why our own: torchvision cannot be imported on the CPU machines this project targets
(it is not a dependency), yet users want to start from the public ImageNet weights. The module
tree therefore mirrors ``torchvision.models.convnext`` exactly, so a torchvision
``convnext_tiny`` state dict loads key for key:

- ``features.0``: stem ``Conv2d(3, C0, 4, stride 4)`` (``features.0.0``) + LayerNorm2d (``features.0.1``)
- ``features.{1,3,5,7}``: stages of ``CNBlock``; block ``i`` holds ``block.0`` (7x7 depthwise conv),
  ``block.2`` (LayerNorm, eps 1e-6, channels last), ``block.3`` / ``block.5`` (Linear C->4C, 4C->C),
  and ``layer_scale`` of shape (C, 1, 1) (init 1e-6); ``block.1``/``block.6`` are permutes and
  ``block.4`` is GELU (no parameters)
- ``features.{2,4,6}``: downsampling LayerNorm2d (``.0``) + ``Conv2d(C, 2C, 2, stride 2)`` (``.1``)

ConvNeXt-Tiny: depths 3, 3, 9, 3 at widths 96, 192, 384, 768. LRFR cuts it after stage 3
(``features.0`` .. ``features.5``): 384 channels at stride 16.

The LayerNorms compute in fp32 whatever the activation dtype (one fp32 island each in an
FP16 export, see ``cvgl_edge.export.onnx.fp16``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.models.checkpoint import load_failure_reason, load_weights_only
from cvgl_edge.models.drop_path import DropPath

#: torchvision ConvNeXt-Tiny: (width, depth) of the four stages.
CONVNEXT_TINY_DIMS = (96, 192, 384, 768)
CONVNEXT_TINY_DEPTHS = (3, 3, 9, 3)
LN_EPS = 1e-6


class LayerNormFP32(nn.LayerNorm):
    """LayerNorm over the last dim, statistics and affine in fp32, result in the input dtype."""

    fp32_parameters = "all"  # the FP16 export keeps these weights in fp32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return y.to(x.dtype)


class LayerNorm2d(LayerNormFP32):
    """LayerNorm over channels of an NCHW tensor (torchvision's LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Permute(nn.Module):
    """Parameter-free permute, kept as a module so the block indices match torchvision."""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class CNBlock(nn.Module):
    """x + drop_path(layer_scale * MLP(LN(dwconv7x7(x)))), the MLP in channels-last layout."""

    def __init__(self, dim: int, layer_scale: float = 1e-6, drop_path: float = 0.0) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute((0, 2, 3, 1)),
            LayerNormFP32(dim, eps=LN_EPS),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute((0, 3, 1, 2)),
        )
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), float(layer_scale)))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.layer_scale.to(x.dtype) * self.block(x))


class ConvNeXtTrunk(nn.Module):
    """``features`` = stem, stage 1, (downsample, stage)*; output (B, dims[-1], H/s, W/s), s = 4 * 2^(stages-1)."""

    def __init__(self, dims: Sequence[int] = CONVNEXT_TINY_DIMS[:3], depths: Sequence[int] = CONVNEXT_TINY_DEPTHS[:3],
                 drop_path: float = 0.0, layer_scale: float = 1e-6) -> None:
        super().__init__()
        if len(dims) != len(depths) or not dims:
            raise CvglError(f"convnext dims {list(dims)} and depths {list(depths)} must be equally long, non-empty")
        self.dims, self.depths = tuple(dims), tuple(depths)
        total = sum(depths)
        rates = [drop_path * i / max(total - 1, 1) for i in range(total)]  # torchvision's linear schedule
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, dims[0], kernel_size=4, stride=4),
                                                 LayerNorm2d(dims[0], eps=LN_EPS))]
        done = 0
        for stage, (dim, depth) in enumerate(zip(dims, depths)):
            if stage > 0:
                layers.append(nn.Sequential(LayerNorm2d(dims[stage - 1], eps=LN_EPS),
                                            nn.Conv2d(dims[stage - 1], dim, kernel_size=2, stride=2)))
            layers.append(nn.Sequential(*(CNBlock(dim, layer_scale, rates[done + i]) for i in range(depth))))
            done += depth
        self.features = nn.Sequential(*layers)
        self._init_weights()

    @property
    def stride(self) -> int:
        return 4 * 2 ** (len(self.dims) - 1)

    @property
    def out_channels(self) -> int:
        return self.dims[-1]

    @torch.no_grad()
    def _init_weights(self) -> None:
        """torchvision's init: trunc-normal(0.02) conv/linear weights, zero biases."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)


@dataclass
class ConvNeXtLoadReport:
    """What loading a torchvision ConvNeXt state dict did."""

    loaded: int
    ignored: list[str] = field(default_factory=list)  # later stages / classifier: not part of the trunk
    missing: list[str] = field(default_factory=list)  # trunk keys the file lacks (left at init)
    unexpected: list[str] = field(default_factory=list)  # keys that belong to no ConvNeXt part we know

    def summary(self) -> str:
        return (f"{self.loaded} tensors loaded, {len(self.ignored)} ignored (later stages/classifier), "
                f"{len(self.missing)} missing, {len(self.unexpected)} unexpected")


def read_state_dict(path: str | Path, trusted: bool = False) -> dict[str, torch.Tensor]:
    """A state dict from a local .pth (plain, or wrapped in {"model"|"state_dict": ...}).

    Read weights-only, so the file cannot run code; ``trusted=True`` (Python API only, never
    the CLI) lifts that for files the user vouches for."""
    path = Path(path)
    if not path.is_file():
        raise CvglError(f"ConvNeXt weights not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False) if trusted else load_weights_only(path)
    except Exception as exc:  # noqa: BLE001 - unreadable file is a user problem
        raise CvglError(f"cannot read ConvNeXt weights {path}: {load_failure_reason(exc)}") from exc
    for key in ("model", "state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CvglError(f"{path} holds no state dict of tensors")
    return data


def load_convnext_state_dict(trunk: ConvNeXtTrunk, state: Mapping[str, torch.Tensor]) -> ConvNeXtLoadReport:
    """Copy torchvision-keyed ConvNeXt weights into ``trunk`` (keys ``features.N...``).

    Keys of stages the trunk does not have (``features.6``/``features.7`` for a cut after
    stage 3) and ``classifier.*`` are ignored; a shape mismatch is a CvglError (wrong model
    size); nothing matching at all is a CvglError (not a torchvision ConvNeXt file).
    """
    state = {k.removeprefix("module."): v for k, v in state.items()}
    target = trunk.state_dict()
    kept = len(trunk.features)
    report = ConvNeXtLoadReport(loaded=0)
    chosen: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in target:
            if tuple(value.shape) != tuple(target[key].shape):
                raise CvglError(f"ConvNeXt weight {key} has shape {tuple(value.shape)}, the model wants "
                                f"{tuple(target[key].shape)} (another ConvNeXt size?)")
            chosen[key] = value
        elif key.startswith("classifier.") or _stage_index(key) >= kept:
            report.ignored.append(key)
        else:
            report.unexpected.append(key)
    if not chosen:
        raise CvglError("no ConvNeXt weight matched (expected torchvision keys such as features.0.0.weight)")
    report.missing = sorted(k for k in target if k not in chosen)
    with torch.no_grad():
        for key, value in chosen.items():
            target[key].copy_(value.to(target[key].dtype))
    report.loaded = len(chosen)
    return report


def _stage_index(key: str) -> int:
    """N of a ``features.N.`` key, -1 for anything else."""
    parts = key.split(".")
    if len(parts) > 1 and parts[0] == "features" and parts[1].isdigit():
        return int(parts[1])
    return -1


def convnext_state_dict_template(dims: Sequence[int] = CONVNEXT_TINY_DIMS,
                                 depths: Sequence[int] = CONVNEXT_TINY_DEPTHS,
                                 num_classes: int = 1000) -> dict[str, Any]:
    """Shapes of every tensor of a full torchvision ConvNeXt (all stages + classifier): for
    tests and docs, so a fabricated file can be checked against what torchvision writes."""
    with torch.device("meta"):  # shapes only: no memory, no init cost
        trunk = ConvNeXtTrunk(dims, depths)
    shapes: dict[str, Any] = {k: tuple(v.shape) for k, v in trunk.state_dict().items()}
    shapes.update({"classifier.0.weight": (dims[-1],), "classifier.0.bias": (dims[-1],),
                   "classifier.2.weight": (num_classes, dims[-1]), "classifier.2.bias": (num_classes,)})
    return shapes

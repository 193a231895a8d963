"""Load official Vision Mamba ImageNet checkpoints (a local file the user brought).

The official files hold ``{"model": state_dict, ...}`` with a 14x14 (+cls) position
embedding; the middle-cls models store the cls row at index 196 // 2 = 98 because the
embedding is added after the cls token is inserted mid-sequence. Loading therefore
re-grids the patch rows (bicubic) to the target grid, moves or drops the cls row, ignores
the ImageNet ``head.*``, and refuses (CvglError) tensors whose shapes do not fit.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.models.checkpoint import load_failure_reason, load_weights_only

ClsPosition = Literal["middle", "first"]


@dataclass
class VimLoadReport:
    """What happened to each checkpoint key; ``missing`` are model params left at init."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors"]
        if self.missing:
            parts.append(f"missing {len(self.missing)} ({', '.join(self.missing[:5])})")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)} ({', '.join(self.unexpected[:5])})")
        if self.ignored:
            parts.append(f"ignored {len(self.ignored)}")
        return "; ".join(parts + self.notes)


def read_vim_state_dict(path: str | Path, trusted: bool = False) -> dict[str, torch.Tensor]:
    """Read a checkpoint file (.pth/.pt with {"model": ...} or bare, or .safetensors).

    ``torch.load`` runs with ``weights_only=True`` (argparse.Namespace allowed, as the
    official files carry their training args); ``trusted=True`` (Python API only, never
    the CLI) lifts that for files the user vouches for.
    """
    path = Path(path)
    if not path.is_file():
        raise CvglError(f"Vim checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(path), device="cpu")
        elif trusted:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        else:
            obj = load_weights_only(path, extra_globals=[argparse.Namespace])
    except Exception as exc:  # noqa: BLE001 - any read failure is a user-file problem
        hint = "" if trusted else " (if you trust this file, load it with trusted=True)"
        raise CvglError(f"cannot read Vim checkpoint {path}: {load_failure_reason(exc)}{hint}") from exc
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_ema"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CvglError(f"{path} does not hold a Vim state dict")
    return {_strip_prefix(k): v for k, v in obj.items()}


def _strip_prefix(key: str) -> str:
    for prefix in ("module.", "backbone."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


def _grid_of(rows: int) -> tuple[tuple[int, int], bool] | None:
    """Infer a square grid and whether a cls row is present from a pos_embed length."""
    for has_cls in (False, True):
        side = math.isqrt(rows - int(has_cls))
        if side * side == rows - int(has_cls) and side > 0:
            return (side, side), has_cls
    return None


def resize_pos_embed(
    pos_embed: torch.Tensor,
    dst_grid: tuple[int, int],
    dst_cls: bool,
    src_grid: tuple[int, int] | None = None,
    src_cls_position: ClsPosition = "middle",
    fallback_cls_row: torch.Tensor | None = None,
) -> torch.Tensor:
    """Re-grid a (1, S, D) position embedding to ``dst_grid`` (+ a middle cls row if asked).

    The patch rows are resized by bicubic interpolation on their 2-D grid; the cls row
    (found at N//2 for ``"middle"`` checkpoints, 0 for ``"first"``) is re-inserted at the
    target's middle, dropped when the target has no cls token, or taken from
    ``fallback_cls_row`` (else zeros) when the source has none.
    """
    if pos_embed.dim() != 3 or pos_embed.shape[0] != 1:
        raise CvglError(f"pos_embed must be (1, S, D), got {tuple(pos_embed.shape)}")
    rows, dim = pos_embed.shape[1], pos_embed.shape[2]
    if src_grid is None:
        inferred = _grid_of(rows)
        if inferred is None:
            raise CvglError(f"cannot infer the grid of a pos_embed with {rows} rows; pass src_grid")
        src_grid, src_cls = inferred
    else:
        n = src_grid[0] * src_grid[1]
        if rows not in (n, n + 1):
            raise CvglError(f"pos_embed has {rows} rows, grid {src_grid} needs {n} or {n + 1}")
        src_cls = rows == n + 1
    n_src = src_grid[0] * src_grid[1]

    cls_row = None
    patches = pos_embed
    if src_cls:
        idx = n_src // 2 if src_cls_position == "middle" else 0
        cls_row = pos_embed[:, idx:idx + 1]
        patches = torch.cat([pos_embed[:, :idx], pos_embed[:, idx + 1:]], dim=1)

    if tuple(src_grid) != tuple(dst_grid):
        grid = patches.float().reshape(1, src_grid[0], src_grid[1], dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=tuple(dst_grid), mode="bicubic", align_corners=False)
        patches = grid.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)

    if not dst_cls:
        return patches.contiguous()
    if cls_row is None:
        cls_row = (fallback_cls_row.reshape(1, 1, dim).to(pos_embed.dtype)
                   if fallback_cls_row is not None else pos_embed.new_zeros(1, 1, dim))
    mid = patches.shape[1] // 2
    return torch.cat([patches[:, :mid], cls_row, patches[:, mid:]], dim=1).contiguous()


def load_vim_state_dict(
    backbone: nn.Module,
    state_dict: dict[str, torch.Tensor],
    src_cls_position: ClsPosition = "middle",
    strict: bool = False,
) -> VimLoadReport:
    """Load an official-format Vim state dict into a ``VisionMamba`` (re-gridding pos_embed)."""
    report = VimLoadReport()
    target = backbone.state_dict()
    sd = dict(state_dict)

    for key in [k for k in sd if k.startswith("head.") or k.startswith("head_")]:
        report.ignored.append(key)
        del sd[key]
    if "cls_token" in sd and "cls_token" not in target:
        report.ignored.append("cls_token")
        report.notes.append("checkpoint cls token dropped (model has none)")
        del sd["cls_token"]
    if "pos_embed" in sd and "pos_embed" in target:
        src = sd["pos_embed"]
        dst = target["pos_embed"]
        if src.shape[-1] != dst.shape[-1]:
            _raise_mismatch(sd, target, [("pos_embed", src.shape, dst.shape)])
        has_cls = "cls_token" in target
        sd["pos_embed"] = resize_pos_embed(
            src, backbone.grid, has_cls, src_cls_position=src_cls_position,
            fallback_cls_row=dst[:, backbone.num_patches // 2] if has_cls else None,
        )
        if tuple(sd["pos_embed"].shape) != tuple(src.shape):
            report.notes.append(
                f"pos_embed resized {tuple(src.shape[1:])} -> {tuple(sd['pos_embed'].shape[1:])}"
            )

    mismatched = [(k, v.shape, target[k].shape) for k, v in sd.items()
                  if k in target and tuple(v.shape) != tuple(target[k].shape)]
    if mismatched:
        _raise_mismatch(sd, target, mismatched)

    report.unexpected = sorted(k for k in sd if k not in target)
    report.missing = sorted(k for k in target if k not in sd)
    report.loaded = sorted(k for k in sd if k in target)
    if strict and (report.missing or report.unexpected):
        raise CvglError(f"Vim checkpoint does not match the backbone: {report.summary()}")
    backbone.load_state_dict({k: sd[k] for k in report.loaded}, strict=False)
    return report


def _raise_mismatch(
    sd: dict[str, torch.Tensor],
    target: dict[str, torch.Tensor],
    mismatched: list[tuple[str, torch.Size, torch.Size]],
) -> None:
    shown = ", ".join(f"{k} {tuple(a)} vs model {tuple(b)}" for k, a, b in mismatched[:3])
    hint = ""
    src_w = sd.get("patch_embed.proj.weight")
    dst_w = target.get("patch_embed.proj.weight")
    if src_w is not None and dst_w is not None and src_w.shape[0] != dst_w.shape[0]:
        hint = (f" (checkpoint width {src_w.shape[0]}, model width {dst_w.shape[0]}:"
                " wrong Vim size, e.g. Tiny weights into a Small model?)")
    raise CvglError(
        f"Vim checkpoint shapes do not fit the model: {len(mismatched)} mismatched tensors, "
        f"e.g. {shown}{hint}"
    )


def load_vim_weights(
    backbone: nn.Module,
    path: str | Path,
    src_cls_position: ClsPosition = "middle",
    strict: bool = False,
    trusted: bool = False,
) -> VimLoadReport:
    """Load a local official Vim checkpoint file into ``backbone``; returns what was loaded."""
    return load_vim_state_dict(
        backbone, read_vim_state_dict(path, trusted=trusted), src_cls_position, strict
    )

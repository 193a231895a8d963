"""Embed every pair of a dataset with both branches of a dual encoder (PyTorch, or any runtime Encoder),
or one view's image list (the query or gallery side of a retrieval protocol)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cvgl_edge.progress import progress_bar
from cvgl_edge.views import VIEWS

if TYPE_CHECKING:
    from cvgl_edge.runtime.base import Encoder



@torch.no_grad()
def embed_pairs(
    model: torch.nn.Module,
    dataset: Dataset,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    show_progress: bool = True,
    description: str = "embedding",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ground descriptors, satellite descriptors), row i from dataset item i, on the CPU."""
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    grounds, satellites = [], []
    with progress_bar(description, total=len(dataset), enabled=show_progress) as advance:
        for batch in loader:
            ground = batch["ground"].to(device, non_blocking=True)
            satellite = batch["satellite"].to(device, non_blocking=True)
            grounds.append(model.encode(ground, "ground").float().cpu())
            satellites.append(model.encode(satellite, "satellite").float().cpu())
            advance(ground.shape[0])
    model.train(was_training)
    return torch.cat(grounds), torch.cat(satellites)


def embed_with_encoders(
    encoders: dict[str, "Encoder"],
    dataset: Dataset,
    batch_size: int = 32,
    show_progress: bool = True,
    num_workers: int = 0,
    description: str = "embedding",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``embed_pairs`` for any backend: ``encoders["ground"]`` / ``["satellite"]`` (runtime
    ``Encoder``s, e.g. an ONNX Runtime session per branch) embed every pair; row i from item i.

    Why a twin of ``embed_pairs``: the metrics code takes the same (ground, satellite) CPU
    tensors whichever runtime produced them, so eval and verify compare backends directly.
    Encoders split batches beyond their ``max_batch`` themselves.
    """
    missing = [view for view in VIEWS if view not in encoders]
    if missing:
        raise ValueError(f"embed_with_encoders needs an encoder per view; missing {', '.join(missing)}")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    out: dict[str, list[np.ndarray]] = {view: [] for view in VIEWS}
    with progress_bar(description, total=len(dataset), enabled=show_progress) as advance:
        for batch in loader:
            for view in VIEWS:
                out[view].append(encoders[view].encode_batches(batch[view].numpy(), batch_size))
            advance(len(batch["ground"]))
    ground, satellite = (_stack(out[view], encoders[view].info.descriptor_dim) for view in VIEWS)
    return ground, satellite


@torch.no_grad()
def embed_images(
    model: torch.nn.Module,
    dataset: Dataset,
    view: str,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    show_progress: bool = True,
    description: str = "embedding",
) -> torch.Tensor:
    """Descriptors of every ``{"image": ...}`` item (e.g. an ``ImageListDataset``) as ``view``, on the CPU.

    ``view`` is a model view: "ground", "satellite" or "drone" (the model maps drone to its aerial branch).
    """
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    parts = []
    with progress_bar(description, total=len(dataset), enabled=show_progress) as advance:
        for batch in loader:
            images = batch["image"].to(device, non_blocking=True)
            parts.append(model.encode(images, view).float().cpu())
            advance(images.shape[0])
    model.train(was_training)
    if not parts:
        return torch.zeros((0, int(getattr(model, "descriptor_dim", 0))), dtype=torch.float32)
    return torch.cat(parts)


def embed_images_with_encoders(
    encoders: dict[str, "Encoder"],
    dataset: Dataset,
    view: str,
    batch_size: int = 32,
    show_progress: bool = True,
    num_workers: int = 0,
    description: str = "embedding",
) -> torch.Tensor:
    """``embed_images`` with runtime Encoders keyed "ground" / "satellite"; drone images use "satellite"."""
    from cvgl_edge.runtime.factory import canonical_view

    encoder = encoders[canonical_view(view)]
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    parts: list[np.ndarray] = []
    with progress_bar(description, total=len(dataset), enabled=show_progress) as advance:
        for batch in loader:
            parts.append(encoder.encode_batches(batch["image"].numpy(), batch_size))
            advance(len(batch["image"]))
    return _stack(parts, encoder.info.descriptor_dim)


def embed_view(encoder: "Encoder", dataset: Dataset, view: str, batch_size: int = 32) -> torch.Tensor:
    """Descriptors of one view of every item (for comparing one exported branch with PyTorch)."""
    parts = []
    for start in range(0, len(dataset), batch_size):
        images = np.stack([dataset[i][view].numpy() for i in range(start, min(start + batch_size, len(dataset)))])
        parts.append(encoder.encode_batches(images, batch_size))
    return _stack(parts, encoder.info.descriptor_dim)


def _stack(parts: list[np.ndarray], dim: int) -> torch.Tensor:
    if not parts:
        return torch.zeros((0, dim), dtype=torch.float32)
    return torch.from_numpy(np.ascontiguousarray(np.concatenate(parts), dtype=np.float32))

"""Embed every pair of a dataset with both branches of a dual encoder."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from cvgl_edge.progress import progress_bar


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

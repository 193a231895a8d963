"""Route a dataset's query images to the model view they belong to (ground panorama or drone frame).

Why an adapter instead of changing the model or the embedding code: ``GeoSSM.forward`` and
``embed_pairs`` send batch["ground"] through the ground view. For drone data the query is
an aerial frame that the localisation loop encodes as view "drone" (the aerial branch, see
``GeoSSM.canonical_view``), so training and evaluation wrap the model in :class:`QueryViewModel`,
whose ``forward`` / ``encode`` use the query view in place of "ground". DDP can wrap the adapter
like the model (its parameters are the model's).
"""

from __future__ import annotations

import torch
from torch import nn

from cvgl_edge.data.datasets import dataset_query_view

__all__ = ["QueryViewModel", "dataset_query_view", "for_dataset"]


class QueryViewModel(nn.Module):
    """``model`` with view "ground" answered by ``query_view`` (e.g. "drone")."""

    def __init__(self, model: nn.Module, query_view: str) -> None:
        super().__init__()
        self.model = model
        self.query_view = query_view

    @property
    def input_sizes(self) -> dict[str, tuple[int, int]]:
        return self.model.input_sizes

    @property
    def descriptor_dim(self) -> int:
        return self.model.descriptor_dim

    def encode(self, images: torch.Tensor, view: str) -> torch.Tensor:
        return self.model.encode(images, self.query_view if view == "ground" else view)

    def forward(self, query: torch.Tensor, satellite: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(query, "ground"), self.encode(satellite, "satellite")


def for_dataset(model: nn.Module, dataset: object) -> nn.Module:
    """``model`` itself for ground-panorama data, else the adapter for the dataset's query view."""
    query_view = dataset_query_view(dataset)
    if query_view == "ground":
        return model
    return QueryViewModel(model, query_view)

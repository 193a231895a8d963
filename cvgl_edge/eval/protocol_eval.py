"""Score retrieval protocols (University-1652, VIGOR): embed each side through its view, then rank.

Why a separate path from paired evaluation: the gallery is not the queries' partners (it holds
distractor classes, or every tile of a city), each side may use either branch (drone photos and
satellite tiles both go through the aerial branch), and the true matches come from the protocol.
The embedding function is passed in, so PyTorch checkpoints and exported artifacts are scored by
the same code (the latter without PyTorch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cvgl_edge.data.image_list import ImageListDataset
from cvgl_edge.data.protocol import RetrievalProtocol
from cvgl_edge.eval.embed import embed_images, embed_images_with_encoders
from cvgl_edge.eval.metrics import retrieval_metrics
from cvgl_edge.eval.scoring import SCORINGS, Scoring

if TYPE_CHECKING:
    import numpy as np
    import torch

    from cvgl_edge.runtime.base import Encoder

#: embeds one image list (query or gallery side) -> (N, D) CPU descriptors (a tensor or a numpy array)
Embedder = Callable[[ImageListDataset, str], "torch.Tensor | np.ndarray"]


def model_embedder(model: torch.nn.Module, batch_size: int = 64, device: torch.device | str = "cpu",
                   workers: int = 0, show_progress: bool = True) -> Embedder:
    """Embed image lists with a PyTorch dual encoder (``model.encode(images, view)``)."""
    def embed(dataset: ImageListDataset, description: str) -> torch.Tensor:
        return embed_images(model, dataset, dataset.view, batch_size=batch_size, device=device,
                            num_workers=workers, show_progress=show_progress, description=description)
    return embed


def encoder_embedder(encoders: dict[str, Encoder], batch_size: int = 64, workers: int = 0,
                     show_progress: bool = True) -> Embedder:
    """Embed image lists with runtime Encoders keyed "ground" / "satellite" (drone -> "satellite")."""
    def embed(dataset: ImageListDataset, description: str) -> np.ndarray:
        return embed_images_with_encoders(encoders, dataset, dataset.view, batch_size=batch_size,
                                          show_progress=show_progress, num_workers=workers, description=description)
    return embed


def protocol_scoring(protocol: RetrievalProtocol) -> Scoring:
    """The benchmark script whose rules score ``protocol`` (its dataset and variant)."""
    return SCORINGS[(protocol.dataset, protocol.variant)]


def protocol_metrics(protocols: list[RetrievalProtocol], embed: Embedder) -> dict[str, dict[str, float]]:
    """``{direction: metrics}`` for every protocol, in protocol order (the first is the headline).

    Metrics: R@1/5/10, R@1%, mAP (AP over all true matches), median rank, and ``hit_rate``
    where the protocol has semi-positives (VIGOR), by the rules of the protocol's scoring.
    """
    out: dict[str, dict[str, float]] = {}
    for protocol in protocols:
        source, target = protocol.direction.split("->")
        query = embed(protocol.images("query"), f"{protocol.direction}: {source} queries")
        gallery = embed(protocol.images("gallery"), f"{protocol.direction}: {target} gallery")
        out[protocol.direction] = retrieval_metrics(query, gallery, protocol.positives,
                                                    semi_positives=protocol.semi_positives,
                                                    scoring=protocol_scoring(protocol),
                                                    gallery_size=protocol.gallery_total)
    return out


def protocol_scorings(protocols: list[RetrievalProtocol]) -> dict[str, dict[str, object]]:
    """Record entry ``scoring``: per direction, the script followed and its R@1% K."""
    return {p.direction: protocol_scoring(p).describe(p.gallery_total or len(p.gallery)) for p in protocols}


def protocol_sizes(protocols: list[RetrievalProtocol]) -> dict[str, Any]:
    """Record fields: queries and gallery size per direction, and the scoring rules applied."""
    return {"queries": {p.direction: len(p.query) for p in protocols},
            "gallery": {p.direction: len(p.gallery) for p in protocols},
            "scoring": protocol_scorings(protocols)}

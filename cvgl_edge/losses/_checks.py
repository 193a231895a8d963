"""Input checks shared by the retrieval losses."""

from __future__ import annotations

import torch

from cvgl_edge.errors import CvglError


def similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarities of two aligned L2-normalised batches: (B, dim) x (B, dim) -> (B, B).

    Row i of ``a`` and row i of ``b`` are a positive pair; every other pairing is a negative.
    Computed in fp32 so the exp() terms stay accurate under autocast.
    """
    if a.dim() != 2 or a.shape != b.shape:
        raise CvglError(
            f"loss needs two (batch, dim) descriptor batches of equal shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[0] < 2:
        raise CvglError("loss needs a batch of at least 2 pairs (in-batch negatives)")
    return a.float() @ b.float().t()


def off_diagonal_mask(n: int, device: torch.device) -> torch.Tensor:
    """(n, n) bool, True where i != j (the negatives)."""
    return ~torch.eye(n, dtype=torch.bool, device=device)

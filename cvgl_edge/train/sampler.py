"""Deterministic epoch order so that ``--resume`` replays exactly the same batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from cvgl_edge.train.hard_negatives import neighbour_order, shard


class ResumableSampler(Sampler[int]):
    """Permutation seeded by (seed, epoch), sharded across ranks, starting at a batch offset.

    Drops the ragged tail so every step sees a full batch (contrastive losses
    depend on the number of in-batch negatives).
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        seed: int,
        epoch: int,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = epoch
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size

    @staticmethod
    def batches_per_epoch(dataset_size: int, batch_size: int, world_size: int = 1) -> int:
        return dataset_size // (batch_size * world_size)

    def _indices(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.dataset_size, generator=generator).tolist()
        n_batches = self.batches_per_epoch(self.dataset_size, self.batch_size, self.world_size)
        per_rank = order[self.rank :: self.world_size][: n_batches * self.batch_size]
        return per_rank[self.start_batch * self.batch_size :]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())


class NeighbourSampler(Sampler[int]):
    """Hard-negative epoch order: batches of a seed item and its neighbours (see ``hard_negatives``).

    Same contract as :class:`ResumableSampler`: deterministic from (seed, epoch, neighbour table),
    every item at most once per epoch, ragged tail dropped, ``start_batch`` skips the batches
    already trained on, rank r takes slice r of every global batch of ``batch_size * world_size``.
    ``neighbours`` None gives random batches. The order is built once, here, so a table
    refreshed later never changes an epoch already under way.
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        seed: int,
        epoch: int,
        neighbours: np.ndarray | None,
        class_ids: Sequence[Any] | None = None,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):

        self.batches = neighbour_order(dataset_size, batch_size * world_size, seed, epoch, neighbours, class_ids)
        self._indices = shard(self.batches, batch_size, rank, world_size, start_batch)

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices)

    def __len__(self) -> int:
        return len(self._indices)

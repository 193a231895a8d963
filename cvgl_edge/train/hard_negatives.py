"""Hard-negative batches: fill each batch with a sample and its nearest neighbours (Sample4Geo's scheme).

Why: with random batches almost every in-batch negative is trivially far from the query, so the
contrastive loss stops teaching long before the model separates look-alike places. Sample4Geo
fills batches with *geographic* neighbours first (nearby places look alike) and, once the model
has been evaluated, with *descriptor* neighbours (the places the model itself confuses).

Modes (``--hard-negatives``):

- ``off``: random batches (:class:`~cvgl_edge.train.sampler.ResumableSampler`).
- ``gps``: geographic neighbours for the whole run.
- ``similarity``: random until the first evaluation, then descriptor neighbours.
- ``gps+similarity``: geographic neighbours until the first evaluation, then descriptor neighbours.

Descriptor neighbours are refreshed after every evaluation and take effect at the next epoch
boundary, so an epoch's batches never change half-way (and a resumed run rebuilds them exactly).

Datasets may expose ``class_ids`` (one hashable per item, e.g. the University-1652 class /
satellite image id): two items with the same id are never put in one batch, because each would
be the other's false negative.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cvgl_edge.errors import CvglError

MODES = ("off", "gps", "similarity", "gps+similarity")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise CvglError(f"unknown --hard-negatives {mode!r}; choose from {', '.join(MODES)}")
    return mode


def _top_k_excluding_self(queries: torch.Tensor, base: torch.Tensor, k: int,
                          chunk_elements: int = 1 << 24) -> np.ndarray:
    """(N, k) indices of the k base rows with the largest inner product with each query row,
    row i never listing i. Chunked over queries, so memory stays O(chunk * N + N k)."""
    n = queries.shape[0]
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64)
    rows = max(1, chunk_elements // max(1, base.shape[0]))
    table = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, rows):
        scores = queries[start:start + rows] @ base.T
        own = torch.arange(start, min(start + rows, n), device=scores.device)
        scores[torch.arange(len(own), device=scores.device), own] = -torch.inf
        table[start:start + rows] = torch.topk(scores, k, dim=1).indices.cpu().numpy()
    return table


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Points on the unit sphere: chord distance is monotone in great-circle (haversine) distance."""
    phi, lam = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)


def geographic_neighbours(lat: Sequence[float], lon: Sequence[float], k: int) -> np.ndarray | None:
    """(N, k) nearest items by great-circle distance; rows of items without coordinates are -1.

    Nearest by chord length between points on the unit sphere, which orders pairs exactly as the
    haversine distance does.

    None when no item has coordinates (the caller falls back to random batches).
    """
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    known = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
    if len(known) < 2:
        return None
    # float64: 10 m apart, unit vectors differ by ~1e-12 in their dot product
    points = torch.from_numpy(unit_vectors(lat[known], lon[known]))
    local = _top_k_excluding_self(points, points, k)
    table = np.full((len(lat), local.shape[1]), -1, dtype=np.int64)
    table[known] = known[local]
    return table


def similarity_neighbours(query: torch.Tensor, satellite: torch.Tensor, k: int) -> np.ndarray:
    """(N, k): for item i, the k items j != i whose satellite descriptor is most similar to i's query
    (the references the model confuses with i's true match)."""
    return _top_k_excluding_self(query.float(), satellite.float(), k)


def neighbour_order(
    size: int,
    group: int,
    seed: int,
    epoch: int,
    neighbours: np.ndarray | None,
    class_ids: Sequence[Any] | None = None,
) -> list[list[int]]:
    """The epoch's batches (``size // group`` of them, each of ``group`` items), deterministic from (seed, epoch).

    Seeds come in a random order; each batch is filled with a seed followed by its nearest
    neighbours not used yet this epoch, then the next unused seed and its neighbours, and so on.
    Every item is used at most once; the ragged tail is dropped. Items sharing a class id never
    share a batch (a conflicting seed waits for the next batch). If class constraints strand
    items so that fewer batches form, the last batches are topped up with random class-distinct
    items (seen twice this epoch) so the epoch keeps its length.
    """
    n_batches = size // group
    rng = np.random.default_rng([seed, epoch, 7])
    order = rng.permutation(size)
    if neighbours is not None and neighbours.shape[0] != size:
        raise CvglError(f"neighbour table has {neighbours.shape[0]} rows for a training split of {size} items")
    labels = list(class_ids) if class_ids is not None else None
    used = np.zeros(size, dtype=bool)
    batches: list[list[int]] = []
    batch: list[int] = []
    classes: set[Any] = set()
    deferred: deque[int] = deque()

    def fits(i: int) -> bool:
        return not used[i] and (labels is None or labels[i] not in classes)

    def add(i: int) -> None:
        used[i] = True
        batch.append(i)
        if labels is not None:
            classes.add(labels[i])

    def fill_from(seed_item: int) -> None:
        add(seed_item)
        if neighbours is None:
            return
        for j in neighbours[seed_item]:
            if len(batch) == group:
                return
            if j >= 0 and fits(int(j)):
                add(int(j))

    def flush_if_full() -> None:
        nonlocal batch, classes
        if len(batch) == group:
            batches.append(batch)
            batch, classes = [], set()

    for item in order:
        if len(batches) == n_batches:
            break
        if not batch:  # seeds that clashed with the last batch get the first chance at a fresh one
            for _ in range(len(deferred)):
                waiting = deferred.popleft()
                if used[waiting]:
                    continue
                if fits(waiting):
                    fill_from(waiting)
                    flush_if_full()
                else:
                    deferred.append(waiting)
        item = int(item)
        if used[item]:
            continue
        if not fits(item):
            deferred.append(item)
            continue
        fill_from(item)
        flush_if_full()
    for waiting in deferred:  # last chance for stranded seeds
        if len(batches) == n_batches:
            break
        if fits(waiting):
            fill_from(waiting)
            flush_if_full()
    if len(batches) < n_batches:
        _top_up(batches, batch, n_batches, group, labels, rng)
    return batches


def _top_up(batches: list[list[int]], partial: list[int], n_batches: int, group: int,
            labels: list[Any] | None, rng: np.random.Generator) -> None:
    """Complete the partial batch and add batches of random class-distinct items until n_batches."""
    if labels is None:  # without classes every item seeds or joins a batch: unreachable
        raise RuntimeError("hard-negative batches came out short without class constraints")
    size = len(labels)
    batch = list(partial)
    while len(batches) < n_batches:
        classes = {labels[i] for i in batch} if labels is not None else set()
        for i in rng.permutation(size):
            if len(batch) == group:
                break
            if int(i) not in batch and labels[i] not in classes:
                batch.append(int(i))
                classes.add(labels[i])
        if len(batch) < group:
            raise CvglError(f"the training split has fewer than {group} distinct classes; lower --batch-size")
        batches.append(batch)
        batch = []


def shard(batches: list[list[int]], batch_size: int, rank: int, world_size: int, start_batch: int) -> list[int]:
    """This rank's flat index list: slice ``rank`` of every global batch, from ``start_batch`` on."""
    flat: list[int] = []
    for group in batches[start_batch:]:
        flat.extend(group[rank * batch_size: (rank + 1) * batch_size])
    return flat


class HardNegatives:
    """The neighbour tables of one run and which one each epoch uses (saved with the checkpoint).

    ``gps``: geographic table, rebuilt from the coordinates whenever the run starts.
    ``active``: descriptor table in use; ``pending`` (+ ``pending_epoch``): the table from the
    latest evaluation, promoted when the epoch it was made for starts.
    """

    def __init__(self, mode: str, k: int, dataset: Any, log: Any = print) -> None:
        self.mode = check_mode(mode)
        if k < 1:
            raise CvglError(f"--neighbours must be at least 1, got {k}")
        self.k = int(k)
        self.class_ids = getattr(dataset, "class_ids", None)
        self.active: np.ndarray | None = None
        self.pending: np.ndarray | None = None
        self.pending_epoch: int | None = None
        self.gps: np.ndarray | None = None
        if self.mode in ("gps", "gps+similarity"):
            lat, lon = getattr(dataset, "lat", None), getattr(dataset, "lon", None)
            if lat is not None and lon is not None:
                self.gps = geographic_neighbours(lat, lon, self.k)
            if self.gps is None:
                log("hard negatives: the training data has no coordinates; batches stay random "
                    "until descriptor neighbours exist" if self.mode == "gps+similarity"
                    else "hard negatives: the training data has no coordinates; using random batches")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def uses_similarity(self) -> bool:
        return self.mode in ("similarity", "gps+similarity")

    def table_for_epoch(self, epoch: int) -> np.ndarray | None:
        """The table epoch ``epoch`` is built from (None: random batches)."""
        if self.pending is not None and self.pending_epoch is not None and epoch >= self.pending_epoch:
            self.active, self.pending, self.pending_epoch = self.pending, None, None
        return self.active if self.active is not None else self.gps

    def set_similarity(self, table: np.ndarray, from_epoch: int) -> None:
        """Queue a descriptor table for epoch ``from_epoch`` onwards (the current epoch keeps its batches)."""
        self.pending, self.pending_epoch = np.asarray(table, dtype=np.int64), int(from_epoch)

    def state_dict(self) -> dict[str, Any]:
        def tensor(table: np.ndarray | None) -> torch.Tensor | None:
            return None if table is None else torch.from_numpy(np.ascontiguousarray(table, dtype=np.int64))

        return {"mode": self.mode, "k": self.k, "active": tensor(self.active),
                "pending": tensor(self.pending), "pending_epoch": self.pending_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        def array(value: Any) -> np.ndarray | None:
            return None if value is None else np.asarray(value.numpy() if hasattr(value, "numpy") else value,
                                                         dtype=np.int64)

        self.active, self.pending = array(state.get("active")), array(state.get("pending"))
        self.pending_epoch = state.get("pending_epoch")


def first_epoch_after(step: int, batches_per_epoch: int) -> int:
    """The first epoch whose batches are not yet built when step ``step`` has just finished."""
    return -(-step // batches_per_epoch)

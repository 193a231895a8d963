"""Top-k tile search: global over the whole index, or in a window around a position.

Why a window: once the tracker knows roughly where the drone is, tiles far away can only
produce false matches (repetitive fields, roofs), and searching fewer tiles is faster.
Window candidates come from tile centres sorted by easting (a binary search finds the
east-west band, a mask keeps the disc), so picking them costs O(log N + band), not O(N).
Scoring uses the stored descriptors of a flat index directly; compressed (IVF-PQ) indexes
search through FAISS with an ID selector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cvgl_edge.data.geomap import latlon_to_local
from cvgl_edge.localize.index import TileIndex


@dataclass
class Candidates:
    """Top-k tiles for one query, best first."""

    ids: np.ndarray        # (k,) int64 tile ids
    sims: np.ndarray       # (k,) float32 cosine similarities
    east: np.ndarray       # (k,) tile centres, metres from the index origin
    north: np.ndarray
    searched: int          # how many tiles were compared

    def __len__(self) -> int:
        return int(len(self.ids))


class TileSearcher:
    """Global and windowed top-k over one :class:`TileIndex`."""

    def __init__(self, index: TileIndex) -> None:
        self.index = index
        self.east, self.north = latlon_to_local(index.tiles["lat"], index.tiles["lon"], index.origin)
        self._order = np.argsort(self.east, kind="stable")
        self._east_sorted = self.east[self._order]
        self._desc = index.descriptors()

    def __len__(self) -> int:
        return len(self.index)

    def _result(self, ids: np.ndarray, sims: np.ndarray, searched: int) -> Candidates:
        keep = ids >= 0
        ids, sims = ids[keep].astype(np.int64), sims[keep].astype(np.float32)
        return Candidates(ids, sims, self.east[ids], self.north[ids], searched)

    def global_search(self, query: np.ndarray, k: int = 10) -> Candidates:
        """Best ``k`` tiles of the whole index for one (D,) unit descriptor."""
        q = np.ascontiguousarray(query, np.float32).reshape(1, -1)
        sims, ids = self.index.faiss_index.search(q, min(k, len(self)))
        return self._result(ids[0], sims[0], len(self))

    def window_ids(self, east: float, north: float, radius_m: float) -> np.ndarray:
        """Ids of the tiles whose centre lies within ``radius_m`` of (east, north)."""
        lo = np.searchsorted(self._east_sorted, east - radius_m, side="left")
        hi = np.searchsorted(self._east_sorted, east + radius_m, side="right")
        band = self._order[lo:hi]
        d2 = (self.east[band] - east) ** 2 + (self.north[band] - north) ** 2
        return np.sort(band[d2 <= radius_m * radius_m])

    def window_search(self, query: np.ndarray, east: float, north: float, radius_m: float,
                      k: int = 10) -> Candidates:
        """Best ``k`` tiles within ``radius_m`` of (east, north); empty when the window holds none."""
        ids = self.window_ids(east, north, radius_m)
        if len(ids) == 0:
            return self._result(np.zeros(0, np.int64), np.zeros(0, np.float32), 0)
        q = np.ascontiguousarray(query, np.float32).reshape(-1)
        k = min(k, len(ids))
        if self._desc is not None:
            sims = self._desc[ids] @ q
            top = np.argpartition(-sims, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
            top = top[np.argsort(-sims[top], kind="stable")]
            return self._result(ids[top], sims[top], len(ids))
        import faiss

        params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(ids), nprobe=self.index.faiss_index.nlist)
        sims, found = self.index.faiss_index.search(q.reshape(1, -1), k, params=params)
        return self._result(found[0], sims[0], len(ids))

"""Where the index has imagery: which points lie on the map, and which tiles sit on its edge.

Why the tracker needs this: retrieval can only ever answer with a tile of the map. When
the drone flies past the edge, the best tile is the edge tile it left over, so a match
there says "at this tile *or beyond it*", not "at this tile". Treating it as a plain
position pins the estimate to the edge and keeps sending fixes while the drone is away.
:meth:`MapCoverage.open_sides` tells the filter along which axes a match on a tile is
only such a bound (see :mod:`cvgl_edge.localize.tracker`).

Tiles are cut on the map's pixel grid, so in local metres they form a grid aligned with
east and north (exactly for north-up maps, closely for projected GeoTIFFs); a tile's
neighbour is looked for one stride away, within half a stride.
"""

from __future__ import annotations

import math

import numpy as np

from cvgl_edge.localize.search import TileSearcher


class MapCoverage:
    """Point-on-map and edge-tile tests over the tile centres of one index."""

    def __init__(self, searcher: TileSearcher, tile_m: float, stride_m: float) -> None:
        self.searcher, self.tile_m, self.stride_m = searcher, float(tile_m), max(float(stride_m), 1e-6)

    def contains(self, east: float, north: float) -> bool:
        """True when (east, north) lies on some tile's square (the map's imagery)."""
        half = self.tile_m / 2
        ids = self.searcher.window_ids(east, north, half * math.sqrt(2.0))
        if len(ids) == 0:
            return False
        de = np.abs(self.searcher.east[ids] - east)
        dn = np.abs(self.searcher.north[ids] - north)
        return bool(np.any((de <= half) & (dn <= half)))

    def _has_tile_at(self, east: float, north: float) -> bool:
        return len(self.searcher.window_ids(east, north, self.stride_m / 2)) > 0

    def open_sides(self, tile: int, east: float, north: float) -> tuple[bool, bool]:
        """(east axis, north axis): True where ``tile`` is the last tile towards (east, north).

        An axis is open when the point lies more than half a stride beyond the tile along it
        and no tile follows one stride further that way: a match on this tile then bounds
        the position along that axis instead of measuring it.
        """
        te, tn = float(self.searcher.east[tile]), float(self.searcher.north[tile])
        open_axes = []
        for delta, step in ((east - te, (1.0, 0.0)), (north - tn, (0.0, 1.0))):
            if abs(delta) <= self.stride_m / 2:
                open_axes.append(False)
                continue
            s = math.copysign(self.stride_m, delta)
            open_axes.append(not self._has_tile_at(te + s * step[0], tn + s * step[1]))
        return open_axes[0], open_axes[1]

"""Procedural georeferenced world maps for the synthetic cross-view data.

A :class:`WorldMap` is a north-up raster with three layers that every view is
rendered from:

* ``rgb``: what a satellite sees (ground cover, roads, roofs, crowns, shadows);
* ``height``: metres above ground of buildings and trees (0 on the ground);
* ``street_rgb``: what a street-level camera sees at that spot (the ground
  colour, or the facade / crown colour where something stands);
* ``cover``: what is there (ground, road, water, building, tree), used to put
  street cameras on roads and to tell see-under tree crowns from solid walls.

Content comes from seeded noise and simple geometry (land-use zones, crop
fields, lakes and a river, a street grid and main roads, buildings on lots with
roof and facade colours, forest and single trees, cast shadows).  Style
parameters are drawn per map, so maps differ, which keeps tiles tellable apart.

Everything is composited in uint8 with OpenCV (LUTs, masked copies, polygon
fills): float numpy over multi-megapixel rasters was 10-30x slower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from cvgl_edge.data.georef import GeoRef
from cvgl_edge.data.noise import fractal_noise_u8, noise_crop, value_noise_u8

# Palettes (RGB).  Roofs and facades are paired by index (with some shuffling),
# so a facade colour carries part of the information of the roof seen from above.
_ROOFS = np.array([
    (168, 82, 60), (140, 62, 48), (72, 72, 78), (118, 92, 74), (172, 172, 170),
    (206, 204, 196), (98, 112, 104), (92, 100, 122), (150, 146, 136), (186, 120, 84),
], dtype=np.float32)
_FACADES = np.array([
    (222, 210, 182), (160, 84, 62), (150, 150, 154), (214, 190, 130), (230, 230, 226),
    (120, 146, 176), (196, 170, 150), (110, 120, 132), (200, 200, 190), (236, 206, 170),
], dtype=np.float32)
_FIELDS = np.array([
    (118, 148, 64), (168, 160, 88), (196, 178, 108), (134, 104, 72), (96, 128, 58),
    (152, 170, 90), (110, 88, 62), (180, 150, 96), (86, 116, 70),
], dtype=np.float32)
_GRASS = np.array([(78, 112, 52), (112, 138, 70), (150, 144, 94)], dtype=np.float32)
_CANOPY = np.array([(30, 60, 30), (52, 90, 42), (78, 112, 56)], dtype=np.float32)
_WATER = np.array([[(30, 58, 84), (58, 92, 112)], [(36, 74, 80), (70, 110, 112)]], dtype=np.float32)
_ASPHALT = np.array([(78, 78, 82), (104, 104, 108)], dtype=np.float32)
_PAVEMENT = np.array([(140, 134, 124), (178, 172, 160)], dtype=np.float32)
_DIRT = np.array([(132, 112, 84), (168, 146, 112)], dtype=np.float32)

#: Codes of the ``cover`` layer: what occupies each map pixel.
GROUND, ROAD, WATER, BUILDING, TREE = 0, 1, 2, 3, 4

#: Noise fields are uint8 with mean ~128 and std ~38; thresholds below are in those units.
_SD = 38.0


@dataclass
class WorldMap:
    """A georeferenced procedural map (see the module docstring for the layers)."""

    rgb: np.ndarray         # (H, W, 3) uint8
    height: np.ndarray      # (H, W) uint8, metres
    street_rgb: np.ndarray  # (H, W, 3) uint8
    cover: np.ndarray       # (H, W) uint8, one of GROUND, ROAD, WATER, BUILDING, TREE
    georef: GeoRef
    sun_azimuth: float      # radians clockwise from north, direction towards the sun

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])


def _lut(*colours: np.ndarray) -> np.ndarray:
    """256-entry RGB lookup table interpolating piecewise-linearly through ``colours``."""
    cols = np.asarray(colours, dtype=np.float32)
    x = np.linspace(0.0, len(cols) - 1, 256)
    lo = np.floor(x).astype(int).clip(0, len(cols) - 2) if len(cols) > 1 else np.zeros(256, int)
    frac = (x - lo)[:, None] if len(cols) > 1 else np.zeros((256, 1))
    hi = np.minimum(lo + 1, len(cols) - 1)
    table = cols[lo] * (1 - frac) + cols[hi] * frac
    return np.clip(np.rint(table), 0, 255).astype(np.uint8).reshape(256, 1, 3)


def _tint(noise3: np.ndarray, *colours: np.ndarray) -> np.ndarray:
    """Colour image from a 3-channel copy of a noise field through a colour ramp."""
    return cv2.LUT(noise3, _lut(*colours))


def _paint(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> None:
    """dst[mask] = src[mask] in place (mask: bool or uint8)."""
    m = mask.view(np.uint8) if mask.dtype == np.bool_ else mask
    cv2.copyTo(src, m, dst)


def _rot(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]], dtype=np.float64)


def _field_patchwork(rng: np.random.Generator, shape: tuple[int, int], angle: float) -> np.ndarray:
    """Irregular grid of crop fields with row stripes, rotated by ``angle`` (uint8 RGB)."""
    h, w = shape
    side = int(math.ceil(math.hypot(h, w))) + 4
    canvas = np.zeros((side, side, 3), np.uint8)
    ys = np.concatenate([[0], np.cumsum(rng.integers(36, 110, size=side // 36 + 2))])
    xs = np.concatenate([[0], np.cumsum(rng.integers(36, 110, size=side // 36 + 2))])
    for y0, y1 in zip(ys[:-1], ys[1:]):
        if y0 >= side:
            break
        ids = rng.integers(0, len(_FIELDS), size=len(xs) - 1)
        gains = rng.uniform(0.86, 1.12, size=len(xs) - 1)
        for x0, x1, k, g in zip(xs[:-1], xs[1:], ids, gains):
            if x0 >= side:
                break
            col = tuple(float(c) for c in np.clip(_FIELDS[k] * g, 0, 255))
            cv2.rectangle(canvas, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), col, -1)
    period = int(rng.integers(4, 7))
    canvas[:, ::period] = cv2.convertScaleAbs(canvas[:, ::period], alpha=0.9)
    m = cv2.getRotationMatrix2D((side / 2.0, side / 2.0), math.degrees(angle), 1.0)
    m[:, 2] += ((w - side) / 2.0, (h - side) / 2.0)
    return cv2.warpAffine(canvas, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)


def _lines_across(mask: np.ndarray, angle: float, spacing: float, offset: float, thickness: int) -> None:
    """Draw parallel lines at ``angle`` every ``spacing`` px across the whole mask."""
    h, w = mask.shape
    diag = math.hypot(h, w)
    d = np.array([math.cos(angle), math.sin(angle)])
    nrm = np.array([-d[1], d[0]])
    centre = np.array([w / 2.0, h / 2.0])
    for k in np.arange(-diag / 2 - spacing + offset, diag / 2 + spacing, spacing):
        a = centre + nrm * k - d * diag
        b = centre + nrm * k + d * diag
        cv2.line(mask, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 255, thickness, cv2.LINE_8)


def _random_walk(rng: np.random.Generator, shape: tuple[int, int], step_len: float, turn: float) -> np.ndarray:
    """Points of a smooth random walk from a random point, long enough to cross the map."""
    h, w = shape
    p = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    heading = rng.uniform(0, 2 * np.pi)
    pts = [p.copy()]
    for _ in range(int(2 * max(h, w) / step_len)):
        heading += rng.normal(0.0, turn)
        p = p + step_len * np.array([math.cos(heading), math.sin(heading)])
        pts.append(p.copy())
    return np.round(np.array(pts)).astype(np.int32)


def cast_shadows(height: np.ndarray, sun_azimuth: float, sun_elevation: float, mpp: float) -> np.ndarray:
    """Bool mask of pixels shaded by taller neighbours towards the sun (half-resolution march)."""
    h, w = height.shape
    small = cv2.resize(height, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    dr, dc = -math.cos(sun_azimuth), math.sin(sun_azimuth)  # towards the sun in (row, col)
    rise = 2.0 * mpp * math.tan(sun_elevation)               # metres per half-res pixel
    top = np.zeros_like(small)
    sh, sw = small.shape
    steps = int(min(32, math.ceil(float(small.max(initial=0.0)) / max(rise, 1e-3))))
    for k in range(1, steps + 1):
        oy, ox = int(round(k * dr)), int(round(k * dc))
        src = small[max(0, oy):sh + min(0, oy), max(0, ox):sw + min(0, ox)]
        dst = top[max(0, -oy):sh + min(0, -oy), max(0, -ox):sw + min(0, -ox)]
        np.maximum(dst, src - k * rise, out=dst)
    shadow = (top > small + 0.5).view(np.uint8)
    return cv2.resize(shadow, (w, h), interpolation=cv2.INTER_NEAREST).view(np.bool_)


def _place_buildings(rng: np.random.Generator, shape: tuple[int, int], urban: np.ndarray,
                     blocked: np.ndarray, grid_angle: float, city_level: float, suburb_level: float):
    """Building footprints on a lot grid aligned with the streets; lots never overlap.

    Returns (polygons (n,4,2) float, heights (n,), dense (n,) bool).
    """
    h, w = shape
    lot = float(rng.uniform(24, 32))
    rot = _rot(grid_angle)
    diag = math.hypot(h, w)
    g = np.arange(-diag / 2, diag / 2, lot)
    uu, vv = np.meshgrid(g, g)
    lots = np.stack([uu.ravel(), vv.ravel()], axis=1) @ rot.T + np.array([w / 2.0, h / 2.0])
    lots = lots[(lots[:, 0] > 4) & (lots[:, 0] < w - 5) & (lots[:, 1] > 4) & (lots[:, 1] < h - 5)]
    li = np.round(lots).astype(int)
    u_at = urban[li[:, 1], li[:, 0]].astype(np.float32)
    p_build = np.clip((u_at - (suburb_level - 0.1 * _SD)) / (0.8 * _SD), 0.0, 0.92)
    keep = rng.random(len(lots)) < p_build
    lots, u_at = lots[keep], u_at[keep]
    n = len(lots)
    dense = u_at > city_level
    bw = lot * np.where(dense, rng.uniform(0.55, 0.92, n), rng.uniform(0.36, 0.68, n))
    bh = lot * np.where(dense, rng.uniform(0.55, 0.92, n), rng.uniform(0.36, 0.68, n))
    centres = lots + (lot - np.maximum(bw, bh))[:, None] * rng.uniform(-0.4, 0.4, (n, 2))
    tall = np.clip((u_at - city_level) / _SD, 0, None)
    heights = np.where(dense, rng.uniform(8, 22, n) + 30 * tall * rng.random(n), rng.uniform(4, 9, n))
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    half = np.stack([bw, bh], axis=1)[:, None, :] / 2.0
    polys = centres[:, None, :] + (corners[None] * half) @ rot.T
    probe = np.concatenate([polys, centres[:, None, :]], axis=1)
    pi = np.clip(np.round(probe).astype(int), 0, [w - 1, h - 1])
    ok = ~(blocked[pi[..., 1], pi[..., 0]] > 0).any(axis=1)
    return polys[ok], np.clip(heights[ok], 3, 60), dense[ok]


def _draw_buildings(rng: np.random.Generator, rgb: np.ndarray, height: np.ndarray, polys: np.ndarray,
                    heights: np.ndarray, dense: np.ndarray, sun_azimuth: float) -> np.ndarray:
    """Draw roofs into ``rgb`` and heights into ``height``; return facade colours (n, 3)."""
    n = len(polys)
    roof_idx = np.where(dense, rng.choice([2, 4, 5, 7, 8], n), rng.choice([0, 1, 2, 3, 6, 9], n))
    facade_idx = np.where(rng.random(n) < 0.75, roof_idx, rng.integers(0, len(_FACADES), n))
    roof_cols = np.clip(_ROOFS[roof_idx] * rng.uniform(0.85, 1.12, (n, 1)), 0, 255)
    sun_vec = np.array([math.sin(sun_azimuth), -math.cos(sun_azimuth)])  # (x, y) towards the sun
    ipolys = np.round(polys).astype(np.int32)
    for k in range(n):
        roof = tuple(float(c) for c in roof_cols[k])
        dark = tuple(float(c) * 0.76 for c in roof_cols[k])
        cv2.fillConvexPoly(rgb, ipolys[k], roof)
        cv2.fillConvexPoly(height, ipolys[k], float(round(heights[k])))
        p = polys[k]
        if dense[k]:  # flat roof with a darker parapet
            cv2.polylines(rgb, [ipolys[k]], True, dark, 2)
            continue
        # Pitched roof: ridge along the long axis, the half facing away from the sun is darker.
        if np.linalg.norm(p[1] - p[0]) >= np.linalg.norm(p[2] - p[1]):
            m0, m1 = (p[0] + p[3]) / 2, (p[1] + p[2]) / 2
            halves = (np.array([p[0], p[1], m1, m0]), np.array([m0, m1, p[2], p[3]]))
        else:
            m0, m1 = (p[0] + p[1]) / 2, (p[3] + p[2]) / 2
            halves = (np.array([p[0], m0, m1, p[3]]), np.array([m0, p[1], p[2], m1]))
        away = min(halves, key=lambda q: float((q.mean(axis=0) - p.mean(axis=0)) @ sun_vec))
        cv2.fillConvexPoly(rgb, np.round(away).astype(np.int32), dark)
    return _FACADES[facade_idx]


def generate_world(seed: int | np.random.SeedSequence, size_hw: tuple[int, int], georef: GeoRef,
                   urban_bias: float | None = None) -> WorldMap:
    """Build a procedural map of ``size_hw`` pixels (one pixel = georef.metres_per_px).

    ``urban_bias`` (about -1..1) pushes the map towards countryside (<0) or city (>0);
    None draws it from the seed, so some maps are rural and some urban.
    """
    rng = np.random.default_rng(seed)
    h, w = int(size_hw[0]), int(size_hw[1])
    shape = (h, w)
    mpp = georef.metres_per_px
    if urban_bias is None:
        urban_bias = float(rng.uniform(-1.5, 1.5))

    # --- land use (uint8 noise, mean 128, sd 38) ------------------------------------------
    urban = fractal_noise_u8(rng, shape, (420.0, 180.0, 90.0))
    forest = fractal_noise_u8(rng, shape, (260.0, 110.0, 40.0))
    lake = fractal_noise_u8(rng, shape, (300.0, 120.0, 45.0))
    farm_n = fractal_noise_u8(rng, shape, (350.0, 120.0))
    grass_n = fractal_noise_u8(rng, shape, (120.0, 40.0, 14.0))
    detail = value_noise_u8(rng, shape, 9.0)
    city_level = 128 + (0.4 - urban_bias * 0.5) * _SD
    suburb_level = city_level - 0.7 * _SD
    city = urban > city_level
    suburb = (urban > suburb_level) & ~city
    rural = ~(city | suburb)
    water = lake > 128 + 1.9 * _SD
    forest_m = (forest > 128 + 0.9 * _SD) & rural & ~water
    farm = (farm_n > 128 - 0.2 * _SD) & rural & ~forest_m

    # --- ground cover -------------------------------------------------------------------------
    grass_cols = _GRASS * rng.uniform(0.9, 1.1, size=(3, 1))
    rgb = _tint(cv2.merge([grass_n, grass_n, grass_n]), *grass_cols)
    grid_angle = float(rng.uniform(0, np.pi / 2))
    _paint(rgb, _field_patchwork(rng, shape, grid_angle + float(rng.normal(0, 0.25))), farm)
    paved = city | (suburb & (detail > 128 + 0.6 * _SD))

    river = np.zeros(shape, np.uint8)
    if rng.random() < 0.45:
        cv2.polylines(river, [_random_walk(rng, shape, 40.0, 0.25)], False, 255, int(rng.integers(10, 22)))
    water |= river > 0
    water_cols = _WATER[int(rng.integers(0, len(_WATER)))]

    # --- roads ----------------------------------------------------------------------------------
    tracks = np.zeros(shape, np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        cv2.polylines(tracks, [_random_walk(rng, shape, 30.0, 0.3)], False, 255, 3)
    tracks_m = (tracks > 0) & ~water & ~city
    streets = np.zeros(shape, np.uint8)
    sp_a, sp_b = rng.uniform(70, 115), rng.uniform(70, 115)
    _lines_across(streets, grid_angle, sp_a, rng.uniform(0, sp_a), 7)
    _lines_across(streets, grid_angle + np.pi / 2, sp_b, rng.uniform(0, sp_b), 7)
    streets_m = (streets > 0) & (urban > suburb_level - 0.15 * _SD)
    mains = np.zeros(shape, np.uint8)
    centre_lines: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for _ in range(int(rng.integers(1, 4))):
        ang = rng.uniform(0, np.pi)
        cx, cy, d = rng.uniform(0, w), rng.uniform(0, h), 2.0 * max(h, w)
        a = (int(cx - d * math.cos(ang)), int(cy - d * math.sin(ang)))
        b = (int(cx + d * math.cos(ang)), int(cy + d * math.sin(ang)))
        cv2.line(mains, a, b, 255, int(rng.integers(10, 15)))
        centre_lines.append((a, b))
    roads = streets_m | (mains > 0)
    # Pavement, water, dirt tracks and asphalt in one LUT: index = material * 64 + tone.
    material = np.maximum(np.maximum(water.view(np.uint8), tracks_m.view(np.uint8) * np.uint8(2)),
                          roads.view(np.uint8) * np.uint8(3))
    surface_idx = cv2.bitwise_or(cv2.multiply(material, 64), detail >> 2)
    surface_lut = np.concatenate([_lut(*_PAVEMENT), _lut(*water_cols), _lut(*_DIRT), _lut(*_ASPHALT)])[::4]
    surfaces = cv2.LUT(cv2.merge([surface_idx] * 3), np.ascontiguousarray(surface_lut))
    _paint(rgb, surfaces, paved | water | tracks_m | roads)
    for a, b in centre_lines:   # dashed centre line: 6 px dashes every 14 px
        length = math.hypot(b[0] - a[0], b[1] - a[1])
        ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
        for t in np.arange(0.0, length, 14.0):
            p0 = (int(a[0] + ux * t), int(a[1] + uy * t))
            p1 = (int(a[0] + ux * (t + 6)), int(a[1] + uy * (t + 6)))
            if -10 < p0[0] < w + 10 and -10 < p0[1] < h + 10:
                cv2.line(rgb, p0, p1, (214, 212, 200), 1)

    # --- buildings --------------------------------------------------------------------------------
    blocked = cv2.dilate((roads | water | tracks_m).view(np.uint8), np.ones((5, 5), np.uint8))
    polys, heights, dense = _place_buildings(rng, shape, urban, blocked, grid_angle, city_level, suburb_level)
    sun_az = float(rng.uniform(np.pi * 0.6, np.pi * 1.4))  # a southern sun
    sun_el = float(rng.uniform(math.radians(38), math.radians(58)))
    height = np.zeros(shape, np.uint8)
    facades = _draw_buildings(rng, rgb, height, polys, heights, dense, sun_az)
    is_building = height > 0

    # --- trees -----------------------------------------------------------------------------------
    crown = value_noise_u8(rng, shape, 3.5)
    crown3 = cv2.merge([crown, crown, crown])
    canopy_cols = _CANOPY * rng.uniform(0.88, 1.12, size=(3, 1))
    canopy = forest_m & (crown > 128 - 0.5 * _SD) & ~is_building
    canopy_h = cv2.addWeighted(forest, 0.12, crown, 0.05, -10.0)  # ~9..20 m
    free = ~(blocked > 0) & ~is_building & ~forest_m & ~water
    n_try = int(h * w * 0.004)
    ty, tx = rng.integers(0, h, n_try), rng.integers(0, w, n_try)
    density = np.where(suburb[ty, tx], 1.0, np.where(city[ty, tx], 0.3, 0.4))
    ok = free[ty, tx] & (rng.random(n_try) < density)
    ty, tx = ty[ok], tx[ok]
    radius = rng.choice([3, 4, 5, 6], len(ty))
    # Crowns: one dilation per radius of points holding (height << 8 | tone), so where crowns
    # overlap the taller tree wins with its own tone.
    crowns = np.zeros(shape, np.uint16)
    for r in (3, 4, 5, 6):
        sel = radius == r
        if not sel.any():
            continue
        pts = np.zeros(shape, np.uint16)
        pts[ty[sel], tx[sel]] = ((rng.integers(5, 13, int(sel.sum())) + r) << 8) | \
            rng.integers(40, 255, int(sel.sum()))
        kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        cv2.max(crowns, cv2.dilate(pts, kern), dst=crowns)
    tree_h = (crowns >> 8).astype(np.uint8)
    tree_tone = (crowns & 255).astype(np.uint8)
    trees = (tree_h > 0) & ~is_building & ~water
    tree_h = cv2.min(tree_h, cv2.GaussianBlur(tree_h, (0, 0), 2.0) + 2)  # rounded crowns
    tree_rgb = cv2.LUT(cv2.merge([tree_tone, tree_tone, tree_tone]), _lut(*canopy_cols[1:]))
    canopy_rgb = _tint(crown3, *canopy_cols)
    _paint(rgb, canopy_rgb, canopy)
    _paint(rgb, tree_rgb, trees)
    _paint(height, canopy_h, canopy)
    _paint(height, tree_h, trees)

    # --- shadows and grain ------------------------------------------------------------------------
    shadow = cast_shadows(height, sun_az, sun_el, mpp)
    _paint(rgb, cv2.convertScaleAbs(rgb, alpha=0.58), shadow)
    grain = noise_crop(rng, shape)
    rgb = cv2.addWeighted(rgb, 1.0, cv2.merge([grain, grain, grain]), 1.0, -128.0)

    # --- what a street-level camera sees: ground, facades, foliage -------------------------------
    street = rgb.copy()
    ipolys = np.round(polys).astype(np.int32)
    for k in range(len(ipolys)):
        cv2.fillConvexPoly(street, ipolys[k], tuple(float(c) for c in facades[k]))
    _paint(street, cv2.convertScaleAbs(canopy_rgb, alpha=0.85), canopy)
    _paint(street, cv2.convertScaleAbs(tree_rgb, alpha=0.85), trees)
    cover = np.zeros(shape, np.uint8)
    cover[water] = WATER
    cover[roads | tracks_m] = ROAD
    cover[canopy | trees] = TREE
    cover[is_building] = BUILDING
    return WorldMap(rgb=rgb, height=height, street_rgb=street, cover=cover, georef=georef, sun_azimuth=sun_az)

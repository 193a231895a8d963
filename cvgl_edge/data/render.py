"""Render the three views of a :class:`WorldMap` location: satellite tile, ground panorama, drone photo.

Geometry follows the SAFA polar convention (see :mod:`cvgl_edge.data.polar`):
panorama column j looks along ``theta = 2*pi*j/W (+ heading)``, i.e. towards map
offset ``(d_row, d_col) = (cos theta, -sin theta)``; the middle column looks north.
The panorama's lower half is the ground around the camera, row i sampling the
ground at distance ``R * ((Hl-1-i)/Hl) ** gamma`` (gamma = 1 is exactly the polar
transform of the tile squeezed into the lower half); the upper half is sky with
the silhouettes of buildings and trees ray-marched from the height layer, taller
when nearer or higher.  Anything standing also hides the ground behind it.
So the panorama carries the tile's layout at the right azimuths, which is what a
cross-view model has to learn to match.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cvgl_edge.data.images import resize
from cvgl_edge.data.worldgen import BUILDING, TREE, WorldMap


def render_tile(world: WorldMap, row: float, col: float, footprint_px: int, side: int) -> np.ndarray:
    """North-up square tile of ``footprint_px`` map pixels centred on (row, col), resized to ``side``.

    The centre lands on tile pixel (side/2, side/2), the centre of the polar transform.
    """
    half = footprint_px // 2
    r0, c0 = int(round(row)) - half, int(round(col)) - half
    h, w = world.shape
    if r0 < 0 or c0 < 0 or r0 + footprint_px > h or c0 + footprint_px > w:
        crop = cv2.copyMakeBorder(world.rgb, footprint_px, footprint_px, footprint_px, footprint_px,
                                  cv2.BORDER_REFLECT)[r0 + footprint_px:r0 + 2 * footprint_px,
                                                      c0 + footprint_px:c0 + 2 * footprint_px]
    else:
        crop = world.rgb[r0:r0 + footprint_px, c0:c0 + footprint_px]
    return np.ascontiguousarray(resize(crop, (side, side)))


def _sky(rng: np.random.Generator, rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Sky gradient with soft clouds (rows x width x 3 float32) and its horizon colour."""
    zenith = np.array([70, 120, 190], np.float32) * rng.uniform(0.8, 1.15, 3).astype(np.float32)
    horizon = np.array([196, 212, 228], np.float32) * rng.uniform(0.9, 1.05, 3).astype(np.float32)
    t = (np.arange(rows, dtype=np.float32) / max(rows - 1, 1))[:, None, None] ** 0.7
    sky = zenith * (1 - t) + horizon * t
    sky = np.broadcast_to(sky, (rows, width, 3)).copy()
    cover = float(rng.uniform(0.0, 0.8))
    if cover > 0.05 and rows > 1:
        grid = rng.random((4, 12), dtype=np.float32)
        clouds = cv2.resize(np.concatenate([grid, grid[:, :1]], axis=1), (width + width // 12, rows),
                            interpolation=cv2.INTER_CUBIC)[:, :width]
        alpha = np.clip((clouds - (1.0 - cover * 0.7)) * 3.0, 0.0, 0.9)[..., None]
        sky = sky * (1 - alpha) + np.float32(238.0) * alpha
    return sky, horizon


def _distant_skyline(sky: np.ndarray, rng: np.random.Generator, far_colour: np.ndarray,
                     horizon: np.ndarray) -> None:
    """Paint a low hazy band of distant trees/houses just above the horizon (in place).

    The rays stop at the tile radius; without this band the sky would reach down
    to the horizon behind every gap, which no real street view shows.
    """
    rows, width = sky.shape[:2]
    if rows < 4:
        return
    grid = rng.random(width // 8 + 2, dtype=np.float32)
    profile = cv2.resize(grid[None, :], (width + width // 8, 1), interpolation=cv2.INTER_LINEAR)[0, :width]
    band_h = (0.02 + 0.07 * profile) * rows                 # 2-9 % of the upper half
    row_from_bottom = (rows - 1 - np.arange(rows, dtype=np.float32))[:, None]
    inside = row_from_bottom < band_h[None, :]
    colour = far_colour * 0.5 + horizon[None, :] * 0.5     # (width, 3): haze-washed surroundings
    sky[inside] = np.broadcast_to(colour[None], sky.shape)[inside]


def render_panorama(world: WorldMap, row: float, col: float, size_hw: tuple[int, int], radius_px: float,
                    rng: np.random.Generator, heading: float = 0.0, gamma: float = 1.0,
                    camera_height_m: float = 2.0, ray_steps: int = 40) -> np.ndarray:
    """360-degree ground panorama (uint8 RGB) from a camera standing at map (row, col).

    ``heading`` rotates the view (radians, + turns the panorama to the east);
    ``radius_px`` is the ground distance shown at the horizon row; ``rng`` draws
    only the sky, so geometry is fixed by the arguments.
    """
    hg, wg = int(size_hw[0]), int(size_hw[1])
    hu = hg // 2
    hl = hg - hu
    mpp = world.georef.metres_per_px
    theta = 2.0 * np.pi * np.arange(wg, dtype=np.float64) / wg + heading
    dr, dc = np.cos(theta), -np.sin(theta)

    # Rays, laid out (W, n): height, cover and street colour at n distances per column
    # (nearest-neighbour sampling keeps objects crisp).
    dist = np.linspace(1.5, radius_px, ray_steps).astype(np.float32)
    ray_r = (row + dr[:, None] * dist[None, :]).astype(np.float32)
    ray_c = (col + dc[:, None] * dist[None, :]).astype(np.float32)
    h_ray = cv2.remap(world.height, ray_c, ray_r, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    cover_ray = cv2.remap(world.cover, ray_c, ray_r, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    col_ray = cv2.remap(world.street_rgb, ray_c, ray_r, cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    h_m = h_ray.astype(np.float32)
    ground_m = dist[None, :] * np.float32(mpp)
    # Elevation span of what stands at each step: walls from the ground up, tree crowns from
    # 30% of the tree height (one sees under them); nothing standing = an empty span.
    top = np.arctan2(h_m - camera_height_m, ground_m)
    top[h_ray == 0] = -np.inf
    base = np.where(cover_ray == TREE, 0.3 * h_m, np.float32(-1e3))
    bottom = np.arctan2(base - camera_height_m, ground_m)

    # Facade lighting (faces turned to the sun are brighter) and haze with distance.
    facing = (0.8 + 0.2 * np.cos(theta + np.pi - world.sun_azimuth)).astype(np.float32)
    haze = (np.clip(dist / radius_px, 0.0, 1.0) * 0.35)[None, :, None]
    sky, horizon = _sky(rng, hu, wg)
    _distant_skyline(sky, rng, col_ray[:, -max(1, ray_steps // 8):].mean(axis=1), horizon)
    col_ray = col_ray * facing[:, None, None]
    col_ray = col_ray * (1 - haze) + horizon[None, None, :].astype(np.float32) * haze

    # Upper half: for each row's elevation, the nearest ray step whose object spans it.
    eps = ((hu - np.arange(hu) - 0.5) / hu * (np.pi / 2)).astype(np.float32)
    e3 = eps[:, None, None]
    first_hit = ((bottom[None] <= e3) & (e3 <= top[None])).argmax(axis=2)        # (Hu, W)
    cols_j = np.broadcast_to(np.arange(wg), (hu, wg))
    covered = (bottom[cols_j, first_hit] <= eps[:, None]) & (eps[:, None] <= top[cols_j, first_hit])
    seen = col_ray[cols_j, first_hit]
    # Storeys: darker window bands every 3.2 m up the walls.
    wall = covered & (cover_ray[cols_j, first_hit] == BUILDING)
    z = camera_height_m + dist[first_hit] * np.float32(mpp) * np.tan(eps)[:, None]
    windows = wall & (np.mod(z, 3.2) > 1.1) & (np.mod(z, 3.2) < 2.1)
    seen = np.where(windows[..., None], seen * np.float32(0.72), seen)
    upper = np.where(covered[..., None], seen, sky)

    # Lower half: the ground, hidden behind the first wall on each ray (not behind crowns).
    frac = (hl - 1 - np.arange(hl, dtype=np.float64)) / hl
    r_rows = radius_px * frac ** gamma
    map_r = (row + r_rows[:, None] * dr[None, :]).astype(np.float32)
    map_c = (col + r_rows[:, None] * dc[None, :]).astype(np.float32)
    lower = cv2.remap(world.street_rgb, map_c, map_r, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    walls = cover_ray == BUILDING
    first = walls.argmax(axis=1)
    d_first = np.where(walls.any(axis=1), dist[first], np.inf)
    hidden = r_rows[:, None] > d_first[None, :]
    wall_col = col_ray[np.arange(wg), first]
    lower = np.where(hidden[..., None], wall_col[None, :, :], lower)
    lower *= np.float32(0.96)
    pano = np.concatenate([upper, lower], axis=0)
    return np.clip(pano, 0, 255).astype(np.uint8)


def drone_homography(row: float, col: float, size_hw: tuple[int, int], altitude_px: float,
                     tilt: float, heading: float, fov: float) -> np.ndarray:
    """3x3 homography mapping drone image pixels (x, y, 1) to map pixels (col, row, 1).

    The camera looks at map point (row, col) from ``altitude_px`` above the ground,
    tilted ``tilt`` radians from nadir, facing azimuth ``heading`` (clockwise from north).
    """
    h, w = size_hw
    f = (w / 2.0) / math.tan(fov / 2.0)
    # World frame: x east, y north, z up; map rows grow southwards (y = -row).
    target = np.array([col, -row, 0.0])
    horiz = np.array([math.sin(heading), math.cos(heading), 0.0])
    centre = target - horiz * altitude_px * math.tan(tilt) + np.array([0.0, 0.0, altitude_px])
    fwd = target - centre
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    # Ray for pixel (x, y): Q @ (x, y, 1).
    q = np.stack([right / f, down / f, fwd - (w / 2.0) * right / f - (h / 2.0) * down / f], axis=1)
    cx, cy, cz = centre
    num_x = cx * q[2] - cz * q[0]
    num_y = cy * q[2] - cz * q[1]
    return np.stack([num_x, -num_y, q[2]], axis=0)


def render_drone(world: WorldMap, row: float, col: float, size_hw: tuple[int, int], altitude_px: float,
                 tilt: float, heading: float, fov: float = math.radians(55)) -> np.ndarray:
    """Oblique drone photo (uint8 RGB): the map seen through a tilted pinhole camera (flat ground)."""
    hmat = drone_homography(row, col, size_hw, altitude_px, tilt, heading, fov)
    return cv2.warpPerspective(world.rgb, hmat, (int(size_hw[1]), int(size_hw[0])),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)

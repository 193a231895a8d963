"""Pre-processing of map tiles and camera frames into encoder inputs (what the localisation loop and
the drone-view training pairs both feed the aerial branch).

Branch choice (documented in the README): a nadir drone frame is an aerial image, so
both the map tiles and the frames go through the model's *satellite* branch, as
``GeoSSM.canonical_view('drone') == 'satellite'`` already says for aerial queries.
One encoder then serves index and loop, and tiles and frames get exactly the same
pre-processing:

* square crop of the ground footprint (frames: centre of the image, rotated north-up
  when the heading is known, sized from altitude and field of view when known);
* resize to the encoder's input size, or the SAFA polar transform when that input is
  not square (a checkpoint trained with ``polar=True``, e.g. the demo's 64x256 tiles);
* ImageNet normalisation (:mod:`cvgl_edge.data.normalize`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from cvgl_edge.data.images import resize
from cvgl_edge.data.normalize import normalize_array
from cvgl_edge.data.polar import default_polar_source_side, polar_transform


@dataclass(frozen=True)
class AerialPreprocess:
    """Square aerial RGB uint8 image -> normalised (3, H, W) float32 at the encoder's size."""

    input_size: tuple[int, int]

    @property
    def polar(self) -> bool:
        """A panorama-shaped satellite input means the model was trained on polar tiles."""
        return self.input_size[0] != self.input_size[1]

    def image(self, square_rgb: np.ndarray) -> np.ndarray:
        """The uint8 image the encoder sees (before normalisation)."""
        if self.polar:
            side = default_polar_source_side(self.input_size)
            return polar_transform(resize(square_rgb, (side, side)), self.input_size)
        return resize(square_rgb, self.input_size)

    def __call__(self, square_rgb: np.ndarray) -> np.ndarray:
        return normalize_array(self.image(square_rgb))

    def batch(self, squares: list[np.ndarray]) -> np.ndarray:
        """(N, 3, H, W) float32 from a list of square RGB images."""
        h, w = self.input_size
        out = np.empty((len(squares), 3, h, w), np.float32)
        for i, img in enumerate(squares):
            out[i] = self(img)
        return out


def frame_crop_px(frame_width: int, footprint_m: float, altitude_m: float | None,
                  hfov_deg: float | None) -> int | None:
    """Side in frame pixels of a ``footprint_m`` square on the ground, if altitude and FOV are known.

    Pinhole over flat ground, camera at nadir: the frame spans 2*alt*tan(hfov/2) metres across.
    A non-finite or out-of-range altitude or field of view is unknown (None), never a NaN size.
    """
    if altitude_m is None or hfov_deg is None or not (math.isfinite(altitude_m) and altitude_m > 0):
        return None
    if not (math.isfinite(hfov_deg) and 0 < hfov_deg < 180 and math.isfinite(footprint_m)):
        return None
    across_m = 2.0 * altitude_m * math.tan(math.radians(hfov_deg) / 2.0)
    side = footprint_m / across_m * frame_width
    return max(8, int(round(side))) if math.isfinite(side) else None


def north_up_crop(frame: np.ndarray, side: int | None = None, heading_deg: float | None = None) -> np.ndarray:
    """Centre square of ``side`` px (default: the frame's short side), rotated so north is up.

    ``heading_deg``: azimuth the top of the frame faces (clockwise from north), as the
    autopilot reports yaw for a forward-aligned nadir camera. Pixels the rotated square
    needs from outside the frame are mirrored in (the tile footprint should fit inside
    the frame at any heading: side <= short side / sqrt(2)).

    A non-finite heading is refused (ValueError): OpenCV's warpAffine never returns from a NaN
    matrix. Deciding what an unknown heading means is the caller's job (the loop: north-up).
    """
    h, w = frame.shape[:2]
    side = int(side or min(h, w))
    if heading_deg is not None and not math.isfinite(heading_deg):
        raise ValueError(f"north_up_crop needs a finite heading or None, got {heading_deg}")
    angle = -(heading_deg or 0.0)  # cv2 angles turn counter-clockwise; undo the heading
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)  # pixel-centre convention
    m[:, 2] += ((side - w) / 2.0, (side - h) / 2.0)
    if not np.isfinite(m).all():
        raise ValueError(f"north_up_crop: non-finite rotation matrix {m.tolist()}")
    return cv2.warpAffine(frame, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

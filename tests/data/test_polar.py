"""SAFA polar transform geometry (docs/training.md, "Polar transform")."""

from __future__ import annotations

import numpy as np
import pytest

from cvgl_edge.data.polar import polar_maps, polar_source_coords, polar_transform
from cvgl_edge.errors import CvglError

S, H, W = 64, 32, 128


def _marked(row: int, col: int, size: int = 3) -> np.ndarray:
    img = np.zeros((S, S), np.float32)
    img[row - size // 2: row + size // 2 + 1, col - size // 2: col + size // 2 + 1] = 1.0
    return img


def _peak(out: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(np.argmax(out), out.shape))  # type: ignore[return-value]


def test_centre_goes_to_bottom_row():
    out = polar_transform(_marked(S // 2, S // 2), (H, W))
    assert np.all(out[H - 1] > 0.9)          # every column of the bottom row sees the centre
    assert out[: H // 2].max() == 0.0        # nothing of it far from the centre


@pytest.mark.parametrize("direction, column", [("north", W // 2), ("south", 0), ("west", W // 4),
                                               ("east", 3 * W // 4)])
def test_compass_directions_land_in_expected_columns(direction, column):
    d = 20
    pos = {"north": (S // 2 - d, S // 2), "south": (S // 2 + d, S // 2),
           "west": (S // 2, S // 2 - d), "east": (S // 2, S // 2 + d)}[direction]
    out = polar_transform(_marked(*pos), (H, W))
    row, col = _peak(out)
    assert min(abs(col - column), W - abs(col - column)) <= 1
    expected_row = H - 1 - d * H / (S / 2)   # r = (S/2)(H-1-i)/H  =>  i = H-1 - r*H/(S/2)
    assert abs(row - expected_row) <= 1


def test_matches_formula_with_bilinear_sampling():
    rng = np.random.default_rng(0)
    img = rng.random((S, S)).astype(np.float32)
    out = polar_transform(img, (H, W))
    rows, cols = polar_source_coords(S, H, W)
    for i, j in [(0, 0), (5, 17), (H - 1, 3), (20, 100), (31, 64)]:
        y, x = rows[i, j], cols[i, j]
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        fy, fx = y - y0, x - x0

        def px(a, b):
            return img[a, b] if 0 <= a < S and 0 <= b < S else 0.0
        ref = ((1 - fy) * (1 - fx) * px(y0, x0) + (1 - fy) * fx * px(y0, x0 + 1)
               + fy * (1 - fx) * px(y0 + 1, x0) + fy * fx * px(y0 + 1, x0 + 1))
        assert out[i, j] == pytest.approx(ref, abs=2e-3)


def test_zero_outside_the_image():
    # A 1-pixel-wide ring at the image border: the top row (r just under S/2) samples next
    # to it, half outside on the south side, so bilinear blends with zero there.
    img = np.full((S, S), 255, np.uint8)
    out = polar_transform(img, (H, W))
    assert out[H - 1].min() == 255
    rows, _ = polar_source_coords(S, 2 * S, W)
    assert rows.max() > S - 1                 # the formula does reach past the last row ...
    tall = polar_transform(img, (2 * S, W))
    assert tall[0, 0] < 255                   # ... and what lies outside counts as zero


def test_colour_images_and_dtype_preserved():
    img = np.random.default_rng(1).integers(0, 256, (S, S, 3), dtype=np.uint8)
    out = polar_transform(img, (H, W))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8


def test_maps_are_cached_and_read_only():
    a = polar_maps(S, H, W)
    b = polar_maps(S, H, W)
    assert a[0] is b[0] and not a[0].flags.writeable


def test_non_square_input_is_an_error():
    with pytest.raises(CvglError, match="square"):
        polar_transform(np.zeros((10, 12, 3), np.uint8), (8, 32))

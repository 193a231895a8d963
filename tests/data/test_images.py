"""Image I/O and normalisation: RGB order, error messages that name the file, tensor round trip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from cvgl_edge.data.images import check_size, read_image, resize, write_image
from cvgl_edge.data.normalize import MEAN_RGB, STD_RGB, from_tensor, normalize_array, to_tensor
from cvgl_edge.errors import CvglError


def test_read_image_returns_rgb(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's order
    cv2.imwrite(str(tmp_path / "b.png"), bgr)
    img = read_image(tmp_path / "b.png")
    assert img.shape == (4, 5, 3) and img.dtype == np.uint8
    assert img[0, 0].tolist() == [0, 0, 200]


def test_read_image_grey_and_alpha(tmp_path):
    cv2.imwrite(str(tmp_path / "g.png"), np.full((3, 3), 77, np.uint8))
    cv2.imwrite(str(tmp_path / "a.png"), np.full((3, 3, 4), 50, np.uint8))
    assert read_image(tmp_path / "g.png")[1, 1].tolist() == [77, 77, 77]
    assert read_image(tmp_path / "a.png").shape == (3, 3, 3)


def test_write_then_read_round_trip(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    write_image(tmp_path / "x.png", img)
    assert np.array_equal(read_image(tmp_path / "x.png"), img)


@pytest.mark.parametrize("content", [b"", b"definitely not a jpeg"])
def test_corrupt_image_names_file(tmp_path, content):
    p = tmp_path / "broken.jpg"
    p.write_bytes(content)
    with pytest.raises(CvglError, match="broken.jpg"):
        read_image(p)


def test_missing_image_names_file(tmp_path):
    with pytest.raises(CvglError, match="nothere.png"):
        read_image(tmp_path / "nothere.png")


def test_resize_and_check_size():
    img = np.zeros((10, 20, 3), np.uint8)
    assert resize(img, (5, 8)).shape == (5, 8, 3)
    assert resize(img, (10, 20)) is img
    check_size(img, (10, 20), "x.png")
    with pytest.raises(CvglError, match=r"x\.png"):
        check_size(img, (10, 21), "x.png")


def test_normalisation_constants_and_round_trip():
    assert MEAN_RGB == (0.485, 0.456, 0.406) and STD_RGB == (0.229, 0.224, 0.225)
    img = np.random.default_rng(1).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    t = to_tensor(img)
    assert t.shape == (3, 8, 9) and t.dtype == torch.float32
    expected_r = (img[2, 3, 0] / 255.0 - MEAN_RGB[0]) / STD_RGB[0]
    assert t[0, 2, 3].item() == pytest.approx(expected_r, abs=1e-5)
    assert np.array_equal(from_tensor(t), img)
    assert np.allclose(normalize_array(img), t.numpy())


def test_to_tensor_rejects_wrong_shape():
    with pytest.raises(CvglError):
        to_tensor(np.zeros((4, 4), np.uint8))
    with pytest.raises(CvglError):
        from_tensor(torch.zeros(4, 4, 3))

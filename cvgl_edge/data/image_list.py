"""One view's images from a list of files: the query or gallery side of a retrieval protocol.

Why not :class:`CrossViewDataset`: protocol galleries are not paired with the queries
(University-1652 ranks 951 satellite tiles for 37k drone photos; VIGOR ~90k tiles for ~50k
panoramas), so each side is embedded on its own, through the model view it belongs to.
Items hold numpy arrays, as :class:`CrossViewDataset`'s do (the deployment install has no PyTorch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvgl_edge.data.images import read_image, resize
from cvgl_edge.data.normalize import normalize_array
from cvgl_edge.data.polar import default_polar_source_side, polar_transform
from cvgl_edge.errors import CvglError
from cvgl_edge.views import IMAGE_VIEWS

#: model views an image list can belong to ("drone" = aerial photos through the aerial branch)


class ImageListDataset:
    """Items ``{"image": float32 numpy array (3, H, W) normalised, "index": i}`` for ``paths`` seen as ``view``.

    Ground panoramas are resized to ``ground_size``; satellite and drone images (square aerial
    views) to ``satellite_size``, polar-transformed there when ``polar`` is set, exactly as
    :class:`~cvgl_edge.data.datasets.CrossViewDataset` prepares them for training.
    """

    def __init__(self, paths: list[Path], view: str, ground_size: tuple[int, int],
                 satellite_size: tuple[int, int], polar: bool = False) -> None:
        if view not in IMAGE_VIEWS:
            raise CvglError(f"unknown image view {view!r} (valid: {', '.join(IMAGE_VIEWS)})")
        self.paths = list(paths)
        self.view = view
        self.ground_size = (int(ground_size[0]), int(ground_size[1]))
        self.satellite_size = (int(satellite_size[0]), int(satellite_size[1]))
        self.polar = bool(polar)
        self.polar_source_side = default_polar_source_side(self.satellite_size)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the prepared images."""
        return self.ground_size if self.view == "ground" else self.satellite_size

    def raw(self, i: int) -> Any:
        """uint8 RGB image at the model input size."""
        path = self.paths[i]
        image = read_image(path)
        if self.view == "ground":
            return resize(image, self.ground_size)
        if self.polar:
            if image.shape[0] != image.shape[1]:
                raise CvglError(f"polar transform needs a square aerial image, got "
                                f"{image.shape[0]}x{image.shape[1]}: {path}")
            side = self.polar_source_side
            return polar_transform(resize(image, (side, side)), self.satellite_size)
        return resize(image, self.satellite_size)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        return {"image": normalize_array(self.raw(i)), "index": int(i)}

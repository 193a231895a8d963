"""Data: image I/O and normalisation, the SAFA polar transform, paired augmentation,
CVUSA / CVACT / University-1652 / VIGOR loaders, the deterministic synthetic cross-view
generator, one torch Dataset interface over all of them (``build_dataset``), and the
retrieval protocols of the datasets that are not one-to-one (``build_protocols``)."""

from cvgl_edge.data.augment import PairAugment, mirror_panorama, mirror_tile, roll_panorama, rotate_tile
from cvgl_edge.data.cvact import load_cvact
from cvgl_edge.data.cvusa import load_cvusa
from cvgl_edge.data.datasets import SCHEMES, CrossViewDataset, build_dataset, collate_pairs
from cvgl_edge.data.georef import GeoRef, utm_to_latlon
from cvgl_edge.data.image_list import ImageListDataset
from cvgl_edge.data.images import read_image, resize, write_image
from cvgl_edge.data.layout import detect_layout, resolve_spec
from cvgl_edge.data.normalize import MEAN_RGB, PIXEL_SCALE, STD_RGB, from_tensor, normalize_array, to_tensor
from cvgl_edge.data.polar import polar_transform
from cvgl_edge.data.protocol import RetrievalProtocol, build_protocols, protocol_label, protocol_summary
from cvgl_edge.data.render import render_drone, render_panorama, render_tile
from cvgl_edge.data.synthetic import SyntheticCrossView, SyntheticPairs, SyntheticSpec, load_or_generate
from cvgl_edge.data.vigor import load_vigor
from cvgl_edge.data.worldgen import WorldMap, generate_world

__all__ = [
    "MEAN_RGB", "STD_RGB", "PIXEL_SCALE", "to_tensor", "from_tensor", "normalize_array",
    "read_image", "write_image", "resize", "polar_transform",
    "PairAugment", "mirror_panorama", "mirror_tile", "rotate_tile", "roll_panorama",
    "SyntheticCrossView", "SyntheticSpec", "SyntheticPairs", "load_or_generate",
    "WorldMap", "generate_world", "render_tile", "render_panorama", "render_drone",
    "GeoRef", "utm_to_latlon", "load_cvusa", "load_cvact",
    "CrossViewDataset", "build_dataset", "collate_pairs", "SCHEMES",
    "ImageListDataset", "RetrievalProtocol", "build_protocols", "protocol_label", "protocol_summary",
    "detect_layout", "resolve_spec", "load_vigor",
]

"""One dataset interface for every cross-view source, and ``build_dataset`` from a spec string.

Every item is a dict::

    ground     float32 numpy array (3, Hg, Wg), normalised (cvgl_edge.data.normalize): the query image; for
               drone data (``query_view == "drone"``) a north-up drone frame at the satellite size
    satellite  float32 numpy array (3, Hs, Ws), normalised; polar-transformed when polar=True
    index      int, position in the split (the positive pair shares it)
    lat, lon   float, NaN when the dataset has no coordinates

Specs: ``synthetic`` (default size), ``synthetic:N`` (N train pairs),
``synthetic-drone`` / ``synthetic-drone:N`` (north-up nadir drone frames against tiles,
as the localisation loop sees them), ``cvusa:PATH``, ``cvact:PATH``,
``university1652:PATH`` (drone queries: one class per item, see :mod:`university1652`),
``vigor:PATH`` (same-area) and ``vigor-cross:PATH`` (cross-area), or a bare ``PATH`` whose
layout is detected (:mod:`layout`).  University-1652 and VIGOR are evaluated with their
retrieval protocols (:func:`cvgl_edge.data.benchmark_protocols.build_protocols`); their datasets here
are the paired view (training pairs; one pair per query for paired checks).

Why drone pairs keep the ``ground`` key: batches, collation and embedding stay one code
path; ``CrossViewDataset.query_view`` says which model view ("ground" or "drone", i.e.
the aerial branch, see ``GeoSSM.canonical_view``) the query images are meant for.

Splits: train, val, and test where the dataset has one (synthetic, CVACT; University-1652
and VIGOR have train and test, and val is an alias of test).

Why numpy items and no ``torch.utils.data.Dataset`` base class: the deployment install (no
PyTorch) evaluates exported encoders on these datasets. A DataLoader needs only ``__len__`` and
``__getitem__``, and its default collate turns the arrays into tensors (zero-copy, then stacked
as before); :func:`collate_pairs` does the same for callers that collate themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cvgl_edge.data.augment import PairAugment, mirror_panorama, mirror_tile, roll_panorama, rotate_tile
from cvgl_edge.data.drone_pairs import drone_spec, load_or_generate_drone
from cvgl_edge.data.images import check_size, read_image, resize
from cvgl_edge.data.layout import resolve_spec
from cvgl_edge.data.normalize import normalize_array
from cvgl_edge.data.nuisance import photometric
from cvgl_edge.data.pairs import PairIndex
from cvgl_edge.data.polar import default_polar_source_side, polar_transform
from cvgl_edge.data.registry import DATASETS, DatasetKind, dataset_kind
from cvgl_edge.data.synthetic import SyntheticSpec, load_or_generate
from cvgl_edge.errors import CvglError
from cvgl_edge.views import QUERY_VIEWS

if TYPE_CHECKING:
    import torch

SCHEMES = tuple(kind.spec for kind in DATASETS.values()) + ("PATH",)
DEFAULT_SYNTHETIC_TRAIN = 2000
DEFAULT_SYNTHETIC_EVAL = 200


class PairSource(Protocol):
    """Where raw uint8 RGB pairs come from (files on disk or generated arrays)."""

    name: str
    lat: np.ndarray
    lon: np.ndarray
    ids: list[str]

    def __len__(self) -> int: ...

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray, str, str]:
        """(ground, satellite, ground_origin, satellite_origin); origins name files for errors."""
        ...


class FilePairSource:
    """Pairs read from image files listed by a :class:`PairIndex`."""

    def __init__(self, index: PairIndex) -> None:
        self.index = index
        self.name = f"{index.name}/{index.split}"
        self.lat, self.lon, self.ids = index.lat, index.lon, index.ids

    def __len__(self) -> int:
        return len(self.index)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray, str, str]:
        g, s = self.index.ground[i], self.index.satellite[i]
        return read_image(g), read_image(s), str(g), str(s)


class ArrayPairSource:
    """Pairs held in memory as uint8 arrays (N, H, W, 3), e.g. generated synthetic data."""

    def __init__(self, name: str, ground: np.ndarray, satellite: np.ndarray, lat: np.ndarray,
                 lon: np.ndarray) -> None:
        self.name = name
        self.ground, self.satellite = ground, satellite
        self.lat, self.lon = lat, lon
        self.ids = [f"{i:06d}" for i in range(len(lat))]

    def __len__(self) -> int:
        return len(self.lat)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray, str, str]:
        return self.ground[i], self.satellite[i], f"{self.name}#{i}", f"{self.name}#{i}"


class CrossViewDataset:
    """Resizes / polar-transforms, augments and normalises pairs from any :class:`PairSource`.

    ``strict_size``: images must already have the requested size (the polar
    source only needs to be square) instead of being resized; a mismatch raises
    CvglError naming the file.  Augmentation randomness is a function of
    (seed, epoch, index), so results do not depend on DataLoader workers.

    ``query_view="drone"``: the query images are square aerial frames; they get the
    satellite's resize / polar transform and tile-style (not panorama) augmentation,
    and belong to the model's drone view (its aerial branch).
    """

    def __init__(self, source: PairSource, ground_size: tuple[int, int], satellite_size: tuple[int, int],
                 polar: bool = False, augment: PairAugment | None = None, seed: int = 0,
                 strict_size: bool = False, polar_source_side: int | None = None,
                 query_view: str = "ground") -> None:
        if query_view not in QUERY_VIEWS:
            raise CvglError(f"unknown query view {query_view!r} (valid: {', '.join(QUERY_VIEWS)})")
        self.query_view = query_view
        self.source = source
        self.ground_size = (int(ground_size[0]), int(ground_size[1]))
        self.satellite_size = (int(satellite_size[0]), int(satellite_size[1]))
        self.polar = bool(polar)
        if not self.polar and self.satellite_size[0] != self.satellite_size[1]:
            raise CvglError(f"satellite_size must be square without polar=True, got {self.satellite_size}")
        self.polar_source_side = int(polar_source_side or default_polar_source_side(self.satellite_size))
        self.augment = augment
        self.seed = int(seed)
        self.strict_size = bool(strict_size)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    @property
    def lat(self) -> np.ndarray:
        return self.source.lat

    @property
    def lon(self) -> np.ndarray:
        return self.source.lon

    @property
    def ids(self) -> list[str]:
        return self.source.ids

    def set_epoch(self, epoch: int) -> None:
        """Draw different augmentations (and, for University-1652, drone photos) each epoch (still reproducible)."""
        self.epoch = int(epoch)
        if hasattr(self.source, "set_epoch"):
            self.source.set_epoch(self.epoch)

    def train(self, mode: bool = True) -> "CrossViewDataset":
        """Augmentation on (training) or off (evaluation)."""
        if self.augment is not None:
            self.augment.train(mode)
        return self

    def eval(self) -> "CrossViewDataset":
        return self.train(False)

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(query, satellite) as uint8 RGB at the model input size, before augmentation."""
        ground, sat, g_origin, s_origin = self.source.load(i)
        if self.query_view == "drone":
            return self._aerial(ground, g_origin), self._aerial(sat, s_origin)
        if self.strict_size:
            check_size(ground, self.ground_size, g_origin)
        ground = resize(ground, self.ground_size)
        return ground, self._aerial(sat, s_origin)

    def _aerial(self, sat: np.ndarray, s_origin: str) -> np.ndarray:
        """A square aerial image at the satellite input size (polar-transformed with polar=True)."""
        if self.polar:
            if sat.shape[0] != sat.shape[1]:
                raise CvglError(f"polar transform needs a square aerial image, got "
                                f"{sat.shape[0]}x{sat.shape[1]}: {s_origin}")
            if not self.strict_size:
                sat = resize(sat, (self.polar_source_side, self.polar_source_side))
            return polar_transform(sat, self.satellite_size)
        if self.strict_size:
            check_size(sat, self.satellite_size, s_origin)
        return resize(sat, self.satellite_size)

    def _augment_aerial(self, query: np.ndarray, sat: np.ndarray,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """PairAugment's flip / quarter-turn / photometric jitter with both images treated as tiles
        (PairAugment treats the query as a panorama, which a drone frame is not)."""
        aug = self.augment
        assert aug is not None
        mirror = mirror_panorama if self.polar else mirror_tile
        if rng.random() < aug.flip_p:
            query, sat = mirror(query), mirror(sat)
        if rng.random() < aug.rotate_p:
            k = int(rng.integers(1, 4))
            if self.polar:
                query, sat = roll_panorama(query, k), roll_panorama(sat, k)
            else:
                query, sat = rotate_tile(query, k), rotate_tile(sat, k)
        if aug.photometric > 0:
            query, sat = photometric(query, rng, aug.photometric), photometric(sat, rng, aug.photometric)
        return query, sat

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        ground, sat = self.raw(i)
        if self.augment is not None and self.augment.training:
            rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            if self.query_view == "drone":
                ground, sat = self._augment_aerial(ground, sat, rng)
            else:
                ground, sat = self.augment(ground, sat, rng)
        return {
            "ground": normalize_array(ground),
            "satellite": normalize_array(sat),
            "index": int(i),
            "lat": float(self.source.lat[i]),
            "lon": float(self.source.lon[i]),
        }


def _parse_spec(spec: str) -> tuple[DatasetKind, str]:
    scheme, _, arg = resolve_spec(spec).partition(":")
    return dataset_kind(scheme, spec), arg.strip()


def _file_source(kind: DatasetKind, root: Path, split: str, seed: int, skip_missing: bool) -> PairSource:
    """The paired source of a dataset on disk (the registry's loader; a PairIndex is read from files)."""
    loaded = kind.pairs(root, split, seed, skip_missing)
    return FilePairSource(loaded) if isinstance(loaded, PairIndex) else loaded


def _synthetic_source(arg: str, split: str, ground_size: tuple[int, int], satellite_size: tuple[int, int],
                      polar: bool, polar_side: int, seed: int, kw: dict[str, Any],
                      scheme: str = "synthetic") -> ArrayPairSource:
    bad = f"bad synthetic size {arg!r}: use {scheme}:N with N a positive integer"
    if arg:
        try:
            n_train = int(arg)
        except ValueError:
            raise CvglError(bad) from None
        if n_train <= 0:
            raise CvglError(bad)
    else:
        n_train = DEFAULT_SYNTHETIC_TRAIN
    sizes = {"train": n_train, "val": int(kw.pop("val_size", DEFAULT_SYNTHETIC_EVAL)),
             "test": int(kw.pop("test_size", DEFAULT_SYNTHETIC_EVAL))}
    if split not in sizes:
        raise CvglError(f"synthetic data has no {split!r} split (valid: train, val, test)")
    query = kw.pop("query", "nadir" if scheme == "synthetic-drone" else "ground")
    if scheme == "synthetic-drone" and query != "nadir":
        raise CvglError(f"synthetic-drone data has nadir drone queries; drop query={query!r}")
    if scheme == "synthetic" and query not in ("ground", "drone"):
        raise CvglError(f"unknown synthetic query view {query!r} (valid: ground, drone)")
    cache_dir = kw.pop("cache_dir", None)
    seed = int(kw.pop("data_seed", seed))
    side = polar_side if polar else satellite_size[0]
    if scheme == "synthetic-drone":  # mission-like frames vs offset map tiles (cvgl_edge.data.drone_pairs)
        pairs = load_or_generate_drone(drone_spec(seed, side, **kw), split, sizes[split], cache_dir)
        return ArrayPairSource(f"synthetic-drone/{split}", pairs.nadir, pairs.satellite, pairs.lat, pairs.lon)
    fields = set(SyntheticSpec.__dataclass_fields__)
    unknown = set(kw) - fields
    if unknown:
        raise CvglError(f"unknown synthetic option(s): {', '.join(sorted(unknown))}")
    spec = SyntheticSpec(seed=seed, ground_size=ground_size, satellite_size=side,
                         drone_size=ground_size, **kw)
    views = (query, "satellite")
    pairs = load_or_generate(spec, split, sizes[split], views, cache_dir=cache_dir)
    ground = {"drone": pairs.drone, "nadir": pairs.nadir}.get(query, pairs.ground)
    return ArrayPairSource(f"synthetic/{split}", ground, pairs.satellite, pairs.lat, pairs.lon)


def build_dataset(spec: str, split: str, ground_size: tuple[int, int] = (128, 512),
                  satellite_size: tuple[int, int] = (256, 256), polar: bool = False, augment: bool = False,
                  seed: int = 0, **kw: Any) -> CrossViewDataset:
    """Dataset for ``spec`` (one of :data:`SCHEMES`) and ``split``.

    ``synthetic-drone[:N]`` pairs north-up nadir drone frames with tiles; its dataset has
    ``query_view == "drone"`` (the query goes through the model's aerial branch), as does
    ``university1652:PATH`` (train: one item per class, its drone photo drawn per epoch;
    val/test: one drone photo per query class with its tile).  ``vigor:PATH`` /
    ``vigor-cross:PATH``: panoramas with their positive tile and GPS from the file names.

    ``polar=True`` polar-transforms the satellite image to ``satellite_size``
    (use the ground size for SAFA-style inputs).  ``augment=True`` enables paired
    flip / rotation / photometric augmentation (switch off with ``.eval()``).
    ``seed`` seeds the augmentation and, for synthetic data, the generated world
    (pass ``data_seed`` to keep the world fixed while varying the training seed).
    Extra keywords: ``strict_size`` and ``skip_missing`` (real datasets),
    ``polar_source_side``; for synthetic data ``val_size``/``test_size`` (default
    200), ``query`` ("ground" or "drone"), ``cache_dir``, ``data_seed`` and any
    :class:`SyntheticSpec` field (e.g. ``nuisance``, ``footprint_px``).
    """
    kind, arg = _parse_spec(spec)
    scheme = kind.scheme
    ground_size = (int(ground_size[0]), int(ground_size[1]))
    satellite_size = (int(satellite_size[0]), int(satellite_size[1]))
    strict = bool(kw.pop("strict_size", False))
    skip_missing = bool(kw.pop("skip_missing", False))
    polar_side = int(kw.pop("polar_source_side", 0) or default_polar_source_side(satellite_size))
    source: PairSource
    query_view = kind.query_view
    if kind.pairs is None:  # generated
        if not polar and satellite_size[0] != satellite_size[1]:
            raise CvglError(f"satellite_size must be square without polar=True, got {satellite_size}")
        source = _synthetic_source(arg, split, ground_size, satellite_size, polar, polar_side, seed, kw, scheme)
    else:
        if kw:
            raise CvglError(f"unknown option(s) for {scheme}: {', '.join(sorted(kw))}")
        if not arg:
            raise CvglError(f"dataset spec {spec!r} needs a path: {scheme}:PATH")
        source = _file_source(kind, Path(arg).expanduser(), split, seed, skip_missing)
    aug = PairAugment(satellite_is_polar=polar) if augment else None
    return CrossViewDataset(source, ground_size, satellite_size, polar=polar, augment=aug, seed=seed,
                            strict_size=strict, polar_source_side=polar_side, query_view=query_view)


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack dataset items into a batch of tensors (what torch's default collate does, with float64 lat/lon)."""
    import torch  # training-side: the batch feeds a PyTorch model

    return {
        "ground": torch.stack([torch.as_tensor(it["ground"]) for it in items]),
        "satellite": torch.stack([torch.as_tensor(it["satellite"]) for it in items]),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "lat": torch.tensor([it["lat"] for it in items], dtype=torch.float64),
        "lon": torch.tensor([it["lon"] for it in items], dtype=torch.float64),
    }


class FirstItems:
    """The first ``count`` items of ``dataset`` (what ``torch.utils.data.Subset(dataset, range(count))``
    gives, without PyTorch); ``.dataset`` is the full dataset."""

    def __init__(self, dataset: Any, count: int) -> None:
        self.dataset = dataset
        self.count = max(0, min(int(count), len(dataset)))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < self.count:
            raise IndexError(i)
        return self.dataset[i]


def first_items(dataset: Any, count: int | None) -> Any:
    """``dataset`` itself, or its first ``count`` items when it has more."""
    if count is None or count >= len(dataset):
        return dataset
    return FirstItems(dataset, count)


def dataset_query_view(dataset: object) -> str:
    """The query view of a dataset ("ground" or "drone"), looking through subsets (``.dataset``)."""
    while hasattr(dataset, "dataset") and not hasattr(dataset, "query_view"):
        dataset = dataset.dataset
    return getattr(dataset, "query_view", "ground")


__all__ = ["QUERY_VIEWS", "CrossViewDataset", "FilePairSource", "ArrayPairSource", "build_dataset", "collate_pairs",
           "SCHEMES", "FirstItems", "first_items", "dataset_query_view"]

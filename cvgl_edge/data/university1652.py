"""University-1652 (drone <-> satellite), as distributed, with its official retrieval protocol.

Layout (the public ``University-Release`` folder)::

    ROOT/train/satellite/<class>/<class>.jpg      one tile per class (701 classes)
    ROOT/train/drone/<class>/image-NN.jpeg        ~54 drone photos per class
    ROOT/train/{street,google}/<class>/...         not used here
    ROOT/test/query_drone/<class>/...              drone queries (701 classes)
    ROOT/test/gallery_satellite/<class>/...        951 classes: the 701 query classes + 250 distractors
    ROOT/test/query_satellite/<class>/...          satellite queries
    ROOT/test/gallery_drone/<class>/...            drone gallery, again with classes that have no query
    ROOT/test/{query,gallery}_street/...           not used here

Official protocol: every gallery image is ranked (distractor classes included); the true
matches of a query are the gallery images of its class; AP runs over all of them.  The
``sample4geo`` variant removes gallery classes that have no query from the ranking, as
Sample4Geo's code does (it labels them -1, "junk"); its R@1% still counts them in the gallery
size (``gallery_total``), and it is labelled as such wherever it is reported.  A query class
without gallery images stays in the protocol with no true match: the official script skips
such a query but divides by every query, so it counts as a miss (``eval.scoring``).

Splits: ``train``; ``test`` (``val`` is an alias: the dataset has no separate validation split).
Training pairs one class per item: its satellite tile with one of its drone photos, drawn from
(seed, epoch, class), so an epoch shows each class once and no batch holds a class twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvgl_edge.data.images import read_image
from cvgl_edge.data.pairs import PairIndex
from cvgl_edge.data.protocol import RetrievalProtocol
from cvgl_edge.errors import CvglError
from cvgl_edge.views import direction

NAME = "University-1652"
TRAIN_FOLDERS = ("satellite", "drone")
TEST_FOLDERS = ("query_drone", "gallery_satellite", "query_satellite", "gallery_drone")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
SPLITS = ("train", "test", "val")
EXPECTED = ("train/{satellite,drone}/<class>/<images> and/or "
            "test/{query_drone,gallery_satellite,query_satellite,gallery_drone}/<class>/<images>")

ClassImages = dict[str, list[Path]]


def looks_like_university1652(root: Path) -> bool:
    """True when ``root`` has the train or the test half of the public layout."""
    train = all((root / "train" / f).is_dir() for f in TRAIN_FOLDERS)
    test = all((root / "test" / f).is_dir() for f in TEST_FOLDERS[:2])
    return train or test


def split_name(split: str) -> str:
    """``train`` or ``test`` (``val`` maps to ``test``); CvglError for anything else."""
    if split not in SPLITS:
        raise CvglError(f"{NAME} has no {split!r} split (valid: train, test; val = test)")
    return "test" if split == "val" else split


def check_root(root: Path, split: str) -> Path:
    """The folder holding ``split``'s image folders; one-line CvglError naming what is missing."""
    if not root.is_dir():
        raise CvglError(f"{NAME} dataset folder not found: {root}")
    if not looks_like_university1652(root):
        raise CvglError(f"{root} does not match the {NAME} layout: expected {EXPECTED}")
    folders = TRAIN_FOLDERS if split == "train" else TEST_FOLDERS
    for folder in folders:
        path = root / split / folder
        if not path.is_dir():
            raise CvglError(f"{NAME} {split} folder not found: {path} (expected {split}/{folder}/<class>/<images>)")
    return root / split


def class_images(folder: Path) -> ClassImages:
    """{class id: sorted image paths} of one image folder; CvglError on an empty folder or class."""
    try:
        classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    except OSError as exc:
        raise CvglError(f"cannot list {NAME} folder {folder}: {exc.strerror or exc}") from None
    if not classes:
        raise CvglError(f"{NAME} folder holds no class folders: {folder} (expected {folder.name}/<class>/<images>)")
    out: ClassImages = {}
    for name in classes:
        images = sorted(e.name for e in os.scandir(folder / name)
                        if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise CvglError(f"{NAME} class folder holds no images: {folder / name}")
        out[name] = [folder / name / image for image in images]
    return out


@dataclass
class University1652Train:
    """Per training class: its satellite tile and its drone photos (same order as ``classes``)."""

    classes: list[str]
    satellite: list[Path]
    drone: list[list[Path]]


def load_train(root: str | Path) -> University1652Train:
    """The training classes; every class needs a satellite tile and at least one drone photo."""
    base = check_root(Path(root), "train")
    satellite = class_images(base / "satellite")
    drone = class_images(base / "drone")
    for have, lack, what in ((drone, satellite, "satellite"), (satellite, drone, "drone")):
        missing = sorted(set(have) - set(lack))
        if missing:
            raise CvglError(f"{NAME} train class {missing[0]} has no {what} images "
                            f"(expected {base / what / missing[0]}/<images>); {len(missing)} class(es) affected")
    classes = sorted(satellite)
    return University1652Train(classes, [satellite[c][0] for c in classes], [drone[c] for c in classes])


class ClassDronePairSource:
    """Training pairs, one per class: (a drone photo of the class, its satellite tile).

    The drone photo is drawn from (seed, epoch, class index), so runs are reproducible,
    DataLoader workers agree, and each epoch sees a different photo of every class.
    """

    def __init__(self, train: University1652Train, seed: int = 0) -> None:
        self.train = train
        self.seed = int(seed)
        self.epoch = 0
        self.name = f"{NAME}/train"
        self.ids = list(train.classes)
        self.lat = np.full(len(self.ids), np.nan)
        self.lon = np.full(len(self.ids), np.nan)

    def __len__(self) -> int:
        return len(self.ids)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def drone_path(self, i: int) -> Path:
        """The drone photo item ``i`` uses this epoch."""
        photos = self.train.drone[i]
        pick = int(np.random.default_rng([self.seed, self.epoch, int(i)]).integers(len(photos)))
        return photos[pick]

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray, str, str]:
        drone, satellite = self.drone_path(i), self.train.satellite[i]
        return read_image(drone), read_image(satellite), str(drone), str(satellite)


def load_test(root: str | Path) -> dict[str, ClassImages]:
    """{folder: {class: images}} for the four test folders."""
    base = check_root(Path(root), "test")
    return {folder: class_images(base / folder) for folder in TEST_FOLDERS}


def paired_test_index(root: str | Path, split: str = "test") -> PairIndex:
    """One pair per drone-query class: its first drone photo and its satellite tile.

    Why: export verification, INT8 calibration and bench accuracy compare branches pair by pair.
    """
    test = load_test(root)
    queries, gallery = test["query_drone"], test["gallery_satellite"]
    _require_classes(queries, gallery, "query_drone", "gallery_satellite")
    classes = sorted(queries)
    return PairIndex(NAME, split, [queries[c][0] for c in classes], [gallery[c][0] for c in classes], classes)


def _require_classes(queries: ClassImages, gallery: ClassImages, query_folder: str, gallery_folder: str) -> None:
    missing = sorted(set(queries) - set(gallery))
    if missing:
        raise CvglError(f"{NAME} test: query class {missing[0]} ({query_folder}) has no images in "
                        f"{gallery_folder}; {len(missing)} class(es) affected")


def class_protocol(direction: str, queries: ClassImages, gallery: ClassImages, query_view: str,
                   gallery_view: str, variant: str, folders: tuple[str, str], **sizes) -> RetrievalProtocol:
    """Queries of every class against the gallery; true matches: gallery images of the query's class
    (none when the class has no gallery images: a miss, as in the official script)."""
    all_classes = sorted(gallery)
    kept = [c for c in all_classes if c in queries] if variant == "sample4geo" else all_classes
    gallery_paths: list[Path] = []
    members: dict[str, np.ndarray] = {}
    for c in kept:
        start = len(gallery_paths)
        gallery_paths.extend(gallery[c])
        members[c] = np.arange(start, len(gallery_paths))
    query_classes = sorted(queries)
    query_paths = [p for c in query_classes for p in queries[c]]
    no_match = np.zeros(0, dtype=np.int64)
    positives = [members.get(c, no_match) for c in query_classes for _ in queries[c]]
    unmatched = sum(len(queries[c]) for c in query_classes if c not in members)
    distractors = sum(1 for c in all_classes if c not in queries)
    gallery_total = sum(len(gallery[c]) for c in all_classes)
    if variant == "sample4geo":
        label = (f"{NAME} sample4geo (distractors removed as junk): {direction}, {len(kept)} gallery classes "
                 f"ranked, {distractors} distractor classes removed; R@1% on all {gallery_total} gallery images")
    else:
        label = f"{NAME} official: {direction}, {len(kept)} gallery classes incl. {distractors} distractors"
    if unmatched:
        label += f"; {unmatched} queries without a true match in {folders[1]} (counted as misses)"
    details = {"query_classes": len(query_classes), "gallery_classes": len(kept),
               "distractor_classes": 0 if variant == "sample4geo" else distractors,
               "queries_without_match": unmatched}
    return RetrievalProtocol(f"university1652-{variant}", direction, variant, label, query_paths, query_view,
                             gallery_paths, gallery_view, positives, None, details=details, dataset="university1652",
                             gallery_total=gallery_total if variant == "sample4geo" else None, **sizes)


def university1652_protocols(root: Path, split: str, variant: str = "official",
                             **sizes) -> list[RetrievalProtocol]:
    """drone->satellite then satellite->drone protocols of the test split (``val`` = ``test``)."""
    if split_name(split) != "test":
        raise CvglError(f"{NAME} is evaluated on its test split (or val, an alias); got {split!r}")
    test = load_test(root)
    return [
        class_protocol(direction("drone", "satellite"), test["query_drone"], test["gallery_satellite"], "drone", "satellite",
                       variant, ("query_drone", "gallery_satellite"), **sizes),
        class_protocol(direction("satellite", "drone"), test["query_satellite"], test["gallery_drone"], "satellite", "drone",
                       variant, ("query_satellite", "gallery_drone"), **sizes),
    ]

"""The datasets ``--data`` accepts: one entry per scheme, read by every command.

Why one table: a dataset's name, its layout detector, its paired loader, its retrieval
protocols, its query view and its scoring family used to be spelled out in five modules;
adding a dataset is now its own module plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvgl_edge.data import cvact, cvusa, university1652, vigor
from cvgl_edge.data.pairs import PairIndex
from cvgl_edge.data.protocol import RetrievalProtocol
from cvgl_edge.errors import CvglError

#: (root, split, seed, skip_missing) -> the split's pairs (a PairIndex, or a source of its own)
PairLoader = Callable[[Path, str, int, bool], Any]
#: (root, split, variant, **sizes) -> the split's retrieval protocols
ProtocolBuilder = Callable[..., list[RetrievalProtocol]]


@dataclass(frozen=True)
class DatasetKind:
    """One ``--data`` scheme."""

    scheme: str
    spec: str                      # how a user writes it, e.g. "cvusa:PATH"
    description: str
    query_view: str = "ground"     # "drone": queries go through the aerial branch
    scoring: str = ""              # family of eval.scoring's rules (default: the scheme)
    looks_like: Callable[[Path], bool] | None = None   # bare-folder detection (None: never guessed)
    layout: str = ""               # what the folder holds, for the no-layout error
    pairs: PairLoader | None = None                    # None: generated (synthetic)
    protocols: ProtocolBuilder | None = None           # None: scored pair to pair

    @property
    def scoring_family(self) -> str:
        return self.scoring or self.scheme


def _university1652_pairs(root: Path, split: str, seed: int, skip_missing: bool) -> Any:
    if university1652.split_name(split) == "train":
        return university1652.ClassDronePairSource(university1652.load_train(root), seed=seed)
    return university1652.paired_test_index(root, split)


def _vigor_pairs(cross_area: bool) -> PairLoader:
    def load(root: Path, split: str, seed: int, skip_missing: bool) -> PairIndex:
        return vigor.paired_index(vigor.load_vigor(root, split, cross_area=cross_area))
    return load


def _vigor_protocols(cross_area: bool) -> ProtocolBuilder:
    def build(root: Path, split: str, variant: str, **sizes: Any) -> list[RetrievalProtocol]:
        return vigor.vigor_protocols(root, split, cross_area=cross_area, variant=variant, **sizes)
    return build


DATASETS: dict[str, DatasetKind] = {kind.scheme: kind for kind in (
    DatasetKind("synthetic", "synthetic[:N]", "built-in generator: panoramas and tiles (N train pairs)"),
    DatasetKind("synthetic-drone", "synthetic-drone[:N]", "built-in generator: mission-like drone frames and tiles",
                query_view="drone", scoring="synthetic"),
    DatasetKind("cvusa", "cvusa:PATH", "CVUSA (44,416 pairs)", looks_like=cvusa.looks_like_cvusa,
                layout=f"CVUSA ({cvusa.LAYOUT})",
                pairs=lambda root, split, seed, skip: cvusa.load_cvusa(root, split, skip_missing=skip)),
    DatasetKind("cvact", "cvact:PATH", "CVACT (val and test)", looks_like=cvact.looks_like_cvact,
                layout=f"CVACT ({cvact.LAYOUT})",
                pairs=lambda root, split, seed, skip: cvact.load_cvact(root, split, skip_missing=skip)),
    DatasetKind("university1652", "university1652:PATH", "University-1652 (drone <-> satellite)", query_view="drone",
                looks_like=university1652.looks_like_university1652,
                layout="University-1652 (train/{satellite,drone}/ or test/{query_drone,gallery_satellite}/)",
                pairs=_university1652_pairs, protocols=university1652.university1652_protocols),
    DatasetKind("vigor", "vigor:PATH", "VIGOR same-area", looks_like=vigor.looks_like_vigor,
                layout="VIGOR (<City>/panorama/ and splits/<City>/satellite_list.txt)",
                pairs=_vigor_pairs(False), protocols=_vigor_protocols(False)),
    DatasetKind("vigor-cross", "vigor-cross:PATH", "VIGOR cross-area", scoring="vigor",
                pairs=_vigor_pairs(True), protocols=_vigor_protocols(True)),
)}


def dataset_kind(scheme: str, spec: str | None = None) -> DatasetKind:
    """The entry of ``scheme``; CvglError naming every valid spec otherwise."""
    kind = DATASETS.get(scheme.strip().lower())
    if kind is None:
        valid = ", ".join([k.spec for k in DATASETS.values()] + ["PATH"])
        raise CvglError(f"unknown dataset spec {spec or scheme!r} (valid: {valid})")
    return kind


def detectable() -> list[DatasetKind]:
    """Entries a bare folder path can be recognised as, in detection order."""
    return [kind for kind in DATASETS.values() if kind.looks_like is not None]

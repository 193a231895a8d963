"""INT8 calibration recipes: which images calibrate the activation ranges, and a manifest
of exactly which were used.

Why a recipe file rather than flags: the ranges (and so the INT8 model) depend on the
images, so the choice must be reviewable, reproducible and hashable (the calibration
cache is keyed on the recipe hash). Calibration always uses a training split: images
from the evaluation split would leak into the accuracy figures measured afterwards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvgl_edge.data import build_dataset
from cvgl_edge.errors import CvglError

#: The recipe used when ``--calibration`` is not given (shipped in calibration/).
DEFAULT_RECIPE = {
    "name": "synthetic-default",
    "dataset": "synthetic",
    "split": "train",
    "count": 256,
    "sampling": "uniform-without-replacement",
    "seed": 0,
    "polar": "checkpoint",
    "batch_size": 16,
    "method": "minmax",
}
SAMPLINGS = ("uniform-without-replacement",)
METHODS = ("minmax", "percentile", "entropy")
ALLOWED_SPLITS = ("train",)
_KEYS = set(DEFAULT_RECIPE) | {"description", "version"}


@dataclass(frozen=True)
class Recipe:
    """A validated calibration recipe (see calibration/README.md)."""

    name: str
    dataset: str
    split: str
    count: int
    sampling: str
    seed: int
    polar: str | bool  # "checkpoint" = what the checkpoint was trained with
    batch_size: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sha256(self) -> str:
        """Hash of everything that changes the chosen images or the computed ranges."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def recipe_from_dict(raw: Any, source: str = "recipe") -> Recipe:
    """Validate a recipe dict (missing keys take the defaults)."""
    if not isinstance(raw, dict):
        raise CvglError(f"calibration recipe {source} must be a JSON object")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise CvglError(f"calibration recipe {source}: unknown key(s) {', '.join(unknown)}")
    values = {**DEFAULT_RECIPE, **{k: v for k, v in raw.items() if k in DEFAULT_RECIPE}}
    if values["split"] not in ALLOWED_SPLITS:
        raise CvglError(
            f"calibration recipe {source}: split {values['split']!r} not allowed; calibrate on "
            f"{'/'.join(ALLOWED_SPLITS)} (val/test are used to measure the accuracy loss)"
        )
    if values["sampling"] not in SAMPLINGS:
        raise CvglError(f"calibration recipe {source}: sampling must be one of {', '.join(SAMPLINGS)}")
    if values["method"] not in METHODS:
        raise CvglError(f"calibration recipe {source}: method must be one of {', '.join(METHODS)}")
    for key in ("count", "batch_size", "seed"):
        if not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < (key != "seed"):
            raise CvglError(f"calibration recipe {source}: {key} must be an integer >= {int(key != 'seed')}")
    if values["polar"] not in ("checkpoint", True, False):
        raise CvglError(f"calibration recipe {source}: polar must be true, false or \"checkpoint\"")
    if not isinstance(values["dataset"], str) or not values["dataset"]:
        raise CvglError(f"calibration recipe {source}: dataset must be a spec such as synthetic or cvusa:PATH")
    return Recipe(**{k: values[k] for k in DEFAULT_RECIPE})


def load_recipe(path: str | Path | None) -> Recipe:
    """The recipe in ``path`` (JSON); the built-in default when ``path`` is None."""
    if path is None:
        return recipe_from_dict(DEFAULT_RECIPE, "(default)")
    path = Path(path)
    if not path.is_file():
        raise CvglError(f"calibration recipe not found: {path}")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CvglError(f"calibration recipe {path} is not valid JSON: {exc}") from None
    return recipe_from_dict(raw, str(path))


def choose_indices(recipe: Recipe, available: int) -> list[int]:
    """Seeded uniform sample without replacement, sorted (reading order does not matter)."""
    if recipe.count > available:
        raise CvglError(
            f"calibration recipe {recipe.name} asks for {recipe.count} images but the "
            f"{recipe.dataset} {recipe.split} split has {available}"
        )
    rng = np.random.default_rng(recipe.seed)
    return sorted(int(i) for i in rng.choice(available, size=recipe.count, replace=False))


@dataclass
class CalibrationImages:
    """Lazy normalised float32 batches of one view, plus the manifest of what was chosen."""

    recipe: Recipe
    view: str
    polar: bool
    indices: list[int]
    dataset: Any

    def batches(self) -> Iterator[np.ndarray]:
        """(B, 3, H, W) float32 batches, built on demand so large inputs never sit in memory at once."""
        step = self.recipe.batch_size
        for start in range(0, len(self.indices), step):
            chunk = self.indices[start : start + step]
            yield np.stack([self.dataset[i][self.view] for i in chunk]).astype(np.float32)

    def manifest(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.to_dict(),
            "recipe_sha256": self.recipe.sha256(),
            "view": self.view,
            "polar": self.polar,
            "split_size": len(self.dataset),
            "indices": self.indices,
        }


def calibration_images(
    recipe: Recipe, view: str, input_sizes: dict[str, tuple[int, int]], trained_polar: bool
) -> CalibrationImages:
    """The recipe's images for ``view`` at the model's input sizes (same indices for both views)."""

    polar = trained_polar if recipe.polar == "checkpoint" else bool(recipe.polar)
    try:
        dataset = build_dataset(
            recipe.dataset, recipe.split, augment=False, polar=polar,
            ground_size=tuple(input_sizes["ground"]), satellite_size=tuple(input_sizes["satellite"]),
        )
    except CvglError as exc:
        raise CvglError(f"calibration recipe {recipe.name}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise CvglError(f"calibration recipe {recipe.name}: cannot load {recipe.dataset}: {exc}") from None
    indices = choose_indices(recipe, len(dataset))
    return CalibrationImages(recipe, view, polar, indices, dataset)

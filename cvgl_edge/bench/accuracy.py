"""R@1 of each benchmarked variant on one fixed evaluation set, beside its speed.

Why: a fast engine that returns wrong descriptors must not look good. Every variant
embeds the same pairs (the first ``pairs`` of the val split, synthetic by default) with
its own ground and satellite encoders, and its ground->satellite recalls are reported.
Descriptors are also compared with the first variant's (cosine), which shows a broken
artifact even when random weights make every R@1 sit at chance. No PyTorch: the pairs are numpy
arrays and the encoders runtime Encoders (exported files are benchmarked on the deployment install).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cvgl_edge.descriptors import cosine_rows
from cvgl_edge.eval.embed import stack_items
from cvgl_edge.eval.evaluate import sized_dataset
from cvgl_edge.export.recall import HEADLINE, headline_recall
from cvgl_edge.runtime.base import Encoder

REPORTED = ("R@1", "R@5", "R@10", "R@1%", "mAP")


@dataclass
class EvalSet:
    """Normalised image pairs (row i of each array is one place) and where they came from."""

    data: str
    split: str
    polar: bool
    ground: np.ndarray
    satellite: np.ndarray

    @property
    def pairs(self) -> int:
        return len(self.ground)

    def describe(self) -> dict[str, Any]:
        return {"data": self.data, "split": self.split, "polar": self.polar, "pairs": self.pairs,
                "chance_r1": round(100.0 / self.pairs, 3) if self.pairs else None}


def build_eval_set(sizes: dict[str, tuple[int, int]], data: str, polar: bool, pairs: int) -> EvalSet:
    """The first ``pairs`` val pairs of ``data`` at the input ``sizes`` ({view: (H, W)}), as float32 arrays."""
    dataset = sized_dataset(sizes, data, "val", polar, pairs)
    batch = stack_items([dataset[i] for i in range(len(dataset))])
    ground = batch["ground"].astype(np.float32, copy=False)
    satellite = batch["satellite"].astype(np.float32, copy=False)
    return EvalSet(data=data, split="val", polar=polar, ground=ground, satellite=satellite)


def embed(encoders: dict[str, Encoder], eval_set: EvalSet, batch_size: int = 16) -> dict[str, np.ndarray]:
    """Descriptors of both views with the variant's encoders (chunked to the encoder's max batch)."""
    out = {}
    for view, images in (("ground", eval_set.ground), ("satellite", eval_set.satellite)):
        encoder = encoders[view]
        batch = min(batch_size, encoder.max_batch or batch_size)
        out[view] = encoder.encode_batches(images, batch)
    return out


def recall(descriptors: dict[str, np.ndarray]) -> dict[str, float]:
    """Ground->satellite R@1/5/10/1% and mAP (percent) of paired descriptors."""
    ground = np.ascontiguousarray(descriptors["ground"], dtype=np.float32)
    satellite = np.ascontiguousarray(descriptors["satellite"], dtype=np.float32)
    return headline_recall(ground, satellite, REPORTED)


def agreement(descriptors: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per-view cosine between this variant's descriptors and the reference variant's."""
    result = {}
    for view in ("ground", "satellite"):
        cos = cosine_rows(descriptors[view], reference[view])
        result[view] = {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)}
    return result


def variant_accuracy(encoders: dict[str, Encoder], eval_set: EvalSet,
                     reference: dict[str, np.ndarray] | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(accuracy record, descriptors) of one variant; ``reference``: the first variant's descriptors."""
    descriptors = embed(encoders, eval_set)
    finite = all(bool(np.isfinite(d).all()) for d in descriptors.values())
    record: dict[str, Any] = {"direction": HEADLINE, "finite": finite}
    record.update(recall(descriptors) if finite else {key: None for key in REPORTED})
    if reference is not None:
        record["cosine_vs_first"] = agreement(descriptors, reference)
    return record, descriptors

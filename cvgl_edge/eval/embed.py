"""Embed every pair of a dataset with both branches of a dual encoder (PyTorch, or any runtime Encoder),
or one view's image list (the query or gallery side of a retrieval protocol).

Runtime Encoders take and return numpy arrays, so their path needs no PyTorch (the deployment
install evaluates exported files): batches come from :func:`numpy_batches`, which reads items in
order and stacks them, on ``workers`` threads when asked for, or through a PyTorch DataLoader
(worker processes, as training loads data) where PyTorch is installed. The PyTorch model paths
(``embed_pairs``, ``embed_images``) keep their DataLoader and return CPU tensors.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from cvgl_edge.progress import progress_bar
from cvgl_edge.views import VIEWS, canonical_view

if TYPE_CHECKING:
    import torch

    from cvgl_edge.runtime.base import Encoder


def stack_items(items: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Items (dicts of arrays and numbers) -> one batch: each key's values stacked into an array."""
    return {key: np.stack([np.asarray(item[key]) for item in items]) for key in items[0]}


def _load(dataset: Any, indices: range) -> dict[str, np.ndarray]:
    return stack_items([dataset[i] for i in indices])


def numpy_batches(dataset: Any, batch_size: int, workers: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Batches of ``dataset``'s items in order (``stack_items``), ``batch_size`` items each.

    ``workers`` 0: read in this thread (as a DataLoader without workers does). More: a PyTorch
    DataLoader with that many worker processes where PyTorch is installed, else that many threads
    (the image decoding, resizing and normalising release the GIL), each loading whole batches,
    at most two batches per thread ahead of the consumer.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    chunks = [range(start, min(start + batch_size, len(dataset))) for start in range(0, len(dataset), batch_size)]
    if workers <= 0:
        for chunk in chunks:
            yield _load(dataset, chunk)
        return
    try:
        from torch.utils.data import DataLoader  # worker processes where PyTorch is installed
    except ImportError:
        DataLoader = None
    if DataLoader is not None:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
        for batch in loader:
            yield {key: value.numpy() if hasattr(value, "numpy") else np.asarray(value) for key, value in batch.items()}
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cvgl-data") as pool:
        queued = iter(chunks)
        pending = deque(pool.submit(_load, dataset, chunk) for chunk in itertools.islice(queued, 2 * workers))
        try:
            while pending:
                batch = pending.popleft().result()
                following = next(queued, None)
                if following is not None:
                    pending.append(pool.submit(_load, dataset, following))
                yield batch
        finally:
            for future in pending:
                future.cancel()


def embed_pairs(
    model: torch.nn.Module,
    dataset: Any,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    show_progress: bool = True,
    description: str = "embedding",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ground descriptors, satellite descriptors), row i from dataset item i, on the CPU."""
    import torch  # a PyTorch model (checkpoints; the exported files go through embed_with_encoders)
    from torch.utils.data import DataLoader

    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    grounds, satellites = [], []
    with torch.no_grad(), progress_bar(description, total=len(dataset), enabled=show_progress) as advance:
        for batch in loader:
            ground = batch["ground"].to(device, non_blocking=True)
            satellite = batch["satellite"].to(device, non_blocking=True)
            grounds.append(model.encode(ground, "ground").float().cpu())
            satellites.append(model.encode(satellite, "satellite").float().cpu())
            advance(ground.shape[0])
    model.train(was_training)
    return torch.cat(grounds), torch.cat(satellites)


def embed_with_encoders(
    encoders: dict[str, "Encoder"],
    dataset: Any,
    batch_size: int = 32,
    show_progress: bool = True,
    num_workers: int = 0,
    description: str = "embedding",
) -> tuple[np.ndarray, np.ndarray]:
    """``embed_pairs`` for any backend: ``encoders["ground"]`` / ``["satellite"]`` (runtime
    ``Encoder``s, e.g. an ONNX Runtime session per branch) embed every pair; row i from item i.

    Returns float32 (N, D) numpy arrays, which the metrics code takes as it takes ``embed_pairs``'
    tensors, so eval and verify compare backends directly. Encoders split batches beyond their
    ``max_batch`` themselves. No PyTorch unless ``num_workers`` > 0 and it is installed.
    """
    missing = [view for view in VIEWS if view not in encoders]
    if missing:
        raise ValueError(f"embed_with_encoders needs an encoder per view; missing {', '.join(missing)}")
    out: dict[str, list[np.ndarray]] = {view: [] for view in VIEWS}
    with progress_bar(description, total=len(dataset), enabled=show_progress) as advance:
        for batch in numpy_batches(dataset, batch_size, num_workers):
            for view in VIEWS:
                out[view].append(encoders[view].encode_batches(batch[view], batch_size))
            advance(len(batch["ground"]))
    ground, satellite = (_stack(out[view], encoders[view].info.descriptor_dim) for view in VIEWS)
    return ground, satellite


def embed_images(
    model: torch.nn.Module,
    dataset: Any,
    view: str,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    show_progress: bool = True,
    description: str = "embedding",
) -> torch.Tensor:
    """Descriptors of every ``{"image": ...}`` item (e.g. an ``ImageListDataset``) as ``view``, on the CPU.

    ``view`` is a model view: "ground", "satellite" or "drone" (the model maps drone to its aerial branch).
    """
    import torch  # a PyTorch model (checkpoints; the exported files go through embed_images_with_encoders)
    from torch.utils.data import DataLoader

    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    parts = []
    with torch.no_grad(), progress_bar(description, total=len(dataset), enabled=show_progress) as advance:
        for batch in loader:
            images = batch["image"].to(device, non_blocking=True)
            parts.append(model.encode(images, view).float().cpu())
            advance(images.shape[0])
    model.train(was_training)
    if not parts:
        return torch.zeros((0, int(getattr(model, "descriptor_dim", 0))), dtype=torch.float32)
    return torch.cat(parts)


def embed_images_with_encoders(
    encoders: dict[str, "Encoder"],
    dataset: Any,
    view: str,
    batch_size: int = 32,
    show_progress: bool = True,
    num_workers: int = 0,
    description: str = "embedding",
) -> np.ndarray:
    """``embed_images`` with runtime Encoders keyed "ground" / "satellite"; drone images use "satellite".
    float32 (N, D) numpy descriptors."""
    encoder = encoders[canonical_view(view)]
    parts: list[np.ndarray] = []
    with progress_bar(description, total=len(dataset), enabled=show_progress) as advance:
        for batch in numpy_batches(dataset, batch_size, num_workers):
            parts.append(encoder.encode_batches(batch["image"], batch_size))
            advance(len(batch["image"]))
    return _stack(parts, encoder.info.descriptor_dim)


def embed_view(encoder: "Encoder", dataset: Any, view: str, batch_size: int = 32) -> torch.Tensor:
    """Descriptors of one view of every item as a CPU tensor (verify compares one exported branch
    with the PyTorch model's descriptors)."""
    import torch  # the comparison is with PyTorch's tensors

    parts = [encoder.encode_batches(batch[view], batch_size) for batch in numpy_batches(dataset, batch_size)]
    return torch.from_numpy(_stack(parts, encoder.info.descriptor_dim))


def _stack(parts: list[np.ndarray], dim: int) -> np.ndarray:
    if not parts:
        return np.zeros((0, dim), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

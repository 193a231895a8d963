"""The numpy batcher behind evaluation with runtime Encoders (eval/embed.py ``numpy_batches``).

Items in order whatever the workers (none, threads where PyTorch is absent, DataLoader processes
where it is there), a bounded read-ahead, errors raised where the batch is consumed, and
``embed_with_encoders`` giving numpy descriptors that match a plain loop over the items.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from cvgl_edge.errors import CvglError
from cvgl_edge.eval.embed import embed_images_with_encoders, embed_with_encoders, numpy_batches, stack_items
from cvgl_edge.runtime.base import Encoder, EncoderInfo


class Pairs:
    """A dataset of ``n`` pairs shaped like CrossViewDataset's items; optionally slow or failing."""

    def __init__(self, n: int, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.n, self.delay, self.fail_at = n, delay, fail_at
        self.reads: list[int] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        with self._lock:
            self.reads.append(i)
            self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay * ((i * 7) % 3))  # uneven: later items may finish first
        if i == self.fail_at:
            raise CvglError(f"unreadable image #{i}")
        ground = np.full((3, 2, 4), i, dtype=np.float32)
        return {"ground": ground, "satellite": -ground[:, :, :2], "index": i, "lat": 0.5 * i, "lon": float("nan")}


class MeanEncoder(Encoder):
    """Descriptor = per-channel means of the image (numpy in, numpy out), like a runtime Encoder."""

    def __init__(self, view: str, size: tuple[int, int]) -> None:
        self.info = EncoderInfo(backend="fake", view=view, input_size=size, descriptor_dim=3, precision="fp32",
                                device="cpu", model_name="fake")

    def to_device(self, images):
        return images

    def forward(self, staged):
        return staged.mean(axis=(2, 3))

    def to_host(self, result):
        return np.asarray(result, dtype=np.float32)


def _without_torch(monkeypatch) -> None:
    """`from torch.utils.data import DataLoader` fails, as on the deployment install."""
    monkeypatch.setitem(sys.modules, "torch.utils.data", None)


def test_stack_items_stacks_each_key():
    batch = stack_items([Pairs(3)[i] for i in range(3)])
    assert batch["ground"].shape == (3, 3, 2, 4) and batch["ground"].dtype == np.float32
    assert batch["index"].tolist() == [0, 1, 2] and batch["lat"].dtype == np.float64
    assert np.isnan(batch["lon"]).all()


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_batches_come_in_order_with_a_short_last_one(monkeypatch, workers):
    _without_torch(monkeypatch)
    data = Pairs(11, delay=0.002)
    batches = list(numpy_batches(data, 4, workers))
    assert [len(b["index"]) for b in batches] == [4, 4, 3]
    assert np.concatenate([b["index"] for b in batches]).tolist() == list(range(11))
    assert all(np.array_equal(b["ground"][:, 0, 0, 0], b["index"].astype(np.float32)) for b in batches)
    assert sorted(data.reads) == list(range(11))  # every item read once
    if workers:
        assert all(name.startswith("cvgl-data") for name in data.threads)  # read on the worker threads
    else:
        assert data.threads == {threading.current_thread().name}


def test_threads_read_ahead_at_most_two_batches_per_worker(monkeypatch):
    _without_torch(monkeypatch)
    data = Pairs(40)
    batches = numpy_batches(data, 2, workers=2)
    first = next(batches)
    time.sleep(0.05)  # let the pool finish what it was given
    assert first["index"].tolist() == [0, 1]
    assert len(data.reads) <= 2 * 2 * 2 + 2  # 2 workers x 2 batches ahead (+ the refill), of 2 items
    assert len(list(batches)) == 19


def test_an_item_error_surfaces_where_the_batch_is_consumed(monkeypatch):
    _without_torch(monkeypatch)
    batches = numpy_batches(Pairs(10, fail_at=5), 2, workers=2)
    assert [b["index"].tolist() for b in (next(batches), next(batches))] == [[0, 1], [2, 3]]
    with pytest.raises(CvglError, match="unreadable image #5"):
        next(batches)


def test_no_workers_reads_in_order_in_this_thread(monkeypatch):
    _without_torch(monkeypatch)
    assert [b["index"].tolist() for b in numpy_batches(Pairs(3), 2)] == [[0, 1], [2]]
    assert list(numpy_batches(Pairs(0), 2)) == []
    with pytest.raises(ValueError):
        next(numpy_batches(Pairs(3), 0))


def test_dataloader_workers_where_torch_is_installed_give_the_same_batches():
    pytest.importorskip("torch")
    plain = list(numpy_batches(Pairs(5), 2))
    loaded = list(numpy_batches(Pairs(5), 2, workers=1))  # a DataLoader worker process
    assert len(loaded) == len(plain) == 3
    for a, b in zip(plain, loaded):
        assert set(a) == set(b) and all(isinstance(v, np.ndarray) for v in b.values())
        assert np.array_equal(a["ground"], b["ground"]) and np.array_equal(a["index"], b["index"])


@pytest.mark.parametrize("workers", [0, 2])
def test_embed_with_encoders_gives_numpy_descriptors_of_every_item(monkeypatch, workers):
    _without_torch(monkeypatch)
    data = Pairs(7, delay=0.001)
    encoders = {"ground": MeanEncoder("ground", (2, 4)), "satellite": MeanEncoder("satellite", (2, 2))}
    ground, satellite = embed_with_encoders(encoders, data, batch_size=3, show_progress=False, num_workers=workers)
    assert isinstance(ground, np.ndarray) and ground.shape == satellite.shape == (7, 3)
    assert ground.dtype == np.float32
    np.testing.assert_array_equal(ground[:, 0], np.arange(7, dtype=np.float32))
    np.testing.assert_array_equal(satellite, -ground)

    images = ListOfImages(data)
    descriptors = embed_images_with_encoders(encoders, images, "drone", batch_size=4, show_progress=False,
                                             num_workers=workers)
    np.testing.assert_array_equal(descriptors, satellite)  # drone images go through the satellite branch
    empty = embed_with_encoders(encoders, Pairs(0), show_progress=False)
    assert empty[0].shape == (0, 3) and empty[0].dtype == np.float32


class ListOfImages:
    """ImageListDataset-shaped items (``{"image", "index"}``) from the satellite side of ``pairs``."""

    def __init__(self, pairs: Pairs) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.pairs[i]["satellite"], "index": i}

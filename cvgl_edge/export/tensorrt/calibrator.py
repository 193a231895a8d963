"""TensorRT 10.x implicit INT8: an ``IInt8EntropyCalibrator2`` fed from a calibration recipe, with its cache.

Why a calibrator at all: JetPack 6 (TensorRT 10.3) can still build weakly typed INT8 engines
where TensorRT itself measures activation histograms (entropy calibration) on the device,
from the FP32 ONNX file. The images are the recipe's (``calibration_images``), so the
implicit and the explicit QDQ path calibrate on exactly the same images.

The cache: TensorRT hands the calibration result to ``write_calibration_cache`` (text:
``TRT-<version>-EntropyCalibration2`` then ``tensor: hex scale`` lines) and asks for it
again with ``read_calibration_cache`` on the next build; a cache it accepts skips
calibration entirely (no images, no device copies). It lives next to the engine as
``<model>-<branch>.int8.entropy.cache`` with a key file ``...cache.json`` (recipe sha256,
FP32 ONNX sha256, model weights sha256, TensorRT version). A cache is offered to TensorRT
only when its key matches; otherwise it is left alone, calibration runs, and the note says why.

Not run here (no GPU, no TensorRT 10.x on this machine): the calibrator's protocol (batches,
padding, cache round trip, error capture) is tested against a small fake ``trt`` module in
``tests/export/tensorrt/test_int8.py``; real TensorRT runs are ``@pytest.mark.gpu`` tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.export.onnx.metadata import INPUT_NAME
from cvgl_edge.export.tensorrt.calibration_cache import parse_trt_cache
from cvgl_edge.io import atomic_write, atomic_write_json

CACHE_SUFFIX = ".int8.entropy.cache"
KEY_FORMAT = "cvgl-edge-trt-entropy-cache/1"
ALGORITHM = "EntropyCalibration2"


def entropy_cache_path(directory: Path, model_name: str, view: str) -> Path:
    """``<dir>/<model>-<branch>.int8.entropy.cache``."""
    return Path(directory) / f"{model_name}-{view}{CACHE_SUFFIX}"


def key_path(cache_path: Path) -> Path:
    return Path(str(cache_path) + ".json")


@dataclass(frozen=True)
class CacheKey:
    """What the calibration scales depend on: the images (recipe), the graph (ONNX), the weights, TensorRT."""

    recipe_sha256: str
    onnx_sha256: str
    model_sha256: str | None
    tensorrt: str

    def to_dict(self) -> dict[str, Any]:
        return {"format": KEY_FORMAT, "algorithm": ALGORITHM, **asdict(self)}


_KEY_LABELS = {"recipe_sha256": "calibration recipe changed", "onnx_sha256": "FP32 ONNX file changed",
               "model_sha256": "model weights changed", "tensorrt": "built with another TensorRT version"}


def cache_status(cache_path: Path, key: CacheKey) -> tuple[bool, str | None]:
    """(reusable, why not): reusable only if the cache parses and its key file matches ``key``."""
    cache_path = Path(cache_path)
    if not cache_path.is_file():
        return False, None
    try:
        stored = json.loads(key_path(cache_path).read_text())
    except (OSError, ValueError):
        return False, f"{cache_path.name} has no readable key file {key_path(cache_path).name}"
    if not isinstance(stored, dict) or stored.get("format") != KEY_FORMAT:
        return False, f"{key_path(cache_path).name} is not a cvgl-edge calibration key"
    changed = [label for field, label in _KEY_LABELS.items() if stored.get(field) != getattr(key, field)]
    if changed:
        return False, f"{cache_path.name} is stale ({', '.join(changed)})"
    try:
        header, scales = parse_trt_cache(cache_path.read_text())
    except (CvglError, UnicodeDecodeError) as error:
        return False, f"{cache_path.name} is unreadable ({first_line(error)})"
    if ALGORITHM not in header or not scales:
        return False, f"{cache_path.name} is not an entropy calibration cache (header {header!r})"
    return True, None


def padded_batches(batches: Iterable[np.ndarray], size: int,
                   shape: tuple[int, int, int]) -> Iterator[tuple[np.ndarray, int]]:
    """Each batch as exactly ``size`` images (the calibration profile's fixed batch), with how many were repeats.

    A short last batch repeats its own images: dropping them would calibrate on fewer images
    than the recipe names; repeats only re-weight a few histogram samples (counted in the sidecar).
    """
    for batch in batches:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != shape or not 1 <= len(batch) <= size:
            raise CvglError(f"calibration batch has shape {tuple(batch.shape)}; the engine input is (<= {size}, "
                            f"{', '.join(map(str, shape))})")
        pad = size - len(batch)
        if pad:
            batch = np.concatenate([batch, batch[np.arange(pad) % len(batch)]])
        yield batch, pad


def make_entropy_calibrator(trt: Any, batches: Callable[[], Iterable[np.ndarray]], batch_size: int,
                            image_shape: tuple[int, int, int], cache_path: Path, key: CacheKey,
                            open_memory: Callable[[], Any]) -> Any:
    """An instance of a ``trt.IInt8EntropyCalibrator2`` subclass (class made here: ``trt`` is imported late).

    ``batches()`` is only called when TensorRT asks for data (a reusable cache means never);
    ``open_memory()`` gives a ``cvgl_edge.runtime.tensorrt.cuda_memory.DeviceMemory``. Exceptions raised
    while TensorRT calls back (from C++) cannot propagate: they are stored in ``.error`` and
    ``get_batch`` returns None (end of data); ``implicit_int8`` raises them after the build.
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)  # the bindings require the explicit base call
            self.cache_path = Path(cache_path)
            self.key = key
            self.error: BaseException | None = None
            self.batches_served = 0
            self.images_served = 0
            self.padded_images = 0
            self.cache_read = False
            self.cache_written = False
            self._iter: Iterator[tuple[np.ndarray, int]] | None = None
            self._memory: Any = None
            self._buffer: Any = None

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str], *_: Any) -> list[int] | None:
            try:
                if list(names) != [INPUT_NAME]:
                    raise CvglError(f"calibration feeds one input {INPUT_NAME!r}; TensorRT asked for {list(names)}")
                if self._iter is None:
                    self._iter = padded_batches(batches(), batch_size, image_shape)
                item = next(self._iter, None)
                if item is None:
                    self._release()
                    return None
                batch, pad = item
                if self._memory is None:
                    self._memory = open_memory()
                    self._buffer = self._memory.alloc((batch_size, *image_shape), np.float32)
                self._memory.upload(batch, self._buffer)
                self._memory.synchronize()  # TensorRT reads the buffer on its own stream
                self.batches_served += 1
                self.images_served += batch_size - pad
                self.padded_images += pad
                return [int(self._buffer.ptr)]
            except Exception as error:  # noqa: BLE001 - must not unwind into TensorRT's C++ caller
                self.error = error
                self._release()
                return None

        def read_calibration_cache(self, *_: Any) -> bytes | None:
            reusable, _why = cache_status(self.cache_path, self.key)
            if not reusable:
                return None
            self.cache_read = True
            return self.cache_path.read_bytes()

        def write_calibration_cache(self, cache: Any, *_: Any) -> None:
            try:
                data = bytes(memoryview(cache))
                atomic_write(self.cache_path, lambda tmp: tmp.write_bytes(data))
                atomic_write_json(self.key.to_dict(), key_path(self.cache_path))
                self.cache_written = True
            except Exception as error:  # noqa: BLE001 - see get_batch
                self.error = error

        def _release(self) -> None:
            if self._memory is not None:
                self._memory.close()
            self._memory = self._buffer = None

    return EntropyCalibrator()

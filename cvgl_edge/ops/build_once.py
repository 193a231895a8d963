"""A native scan library built on first use, once per process, with its failure remembered.

Why one mechanism: the C++ CPU kernel and the CUDA kernel follow the same rule. Nothing is built
at import. The first scan that needs the library builds or loads it under a lock, so threads
never build twice. An expected reason not to build (switched off, no GPU, no compiler) is
remembered without a warning; `doctor` shows it. A failed build logs one warning, and the
dispatcher falls back to ``chunked`` from then on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class BuildOnce(Generic[T]):
    """``get()`` returns the built library, or None when it cannot run here (``failure`` says why).

    ``build`` compiles or loads the library and raises on failure. ``unavailable`` returns an
    expected reason not to try, or None. ``describe`` turns a build exception into one line.
    ``warning`` is the log message; its one ``%s`` receives that line.
    """

    build: Callable[[], T]
    unavailable: Callable[[], str | None]
    describe: Callable[[Exception], str]
    warning: str
    value: T | None = field(default=None, init=False)
    failure: str | None = field(default=None, init=False)
    seconds: float | None = field(default=None, init=False)  # wall time of the build (or cache load)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def get(self) -> T | None:
        if self.value is not None or self.failure is not None:
            return self.value
        with self._lock:
            if self.value is None and self.failure is None:
                reason = self.unavailable()
                if reason is not None:
                    self.failure = reason
                    return None
                start = time.perf_counter()
                try:
                    self.value = self.build()
                except Exception as exc:  # any build/load failure means "use chunked"
                    self.failure = self.describe(exc)
                    log.warning(self.warning, self.failure)
                self.seconds = time.perf_counter() - start
        return self.value

"""Silence what C libraries print themselves (OpenCV, FFmpeg, PROJ) where cvgl-edge reports the error.

Why: a camera that cannot be opened, or an unknown EPSG code, makes the library print its own
warning lines to file descriptor 2 before we can say what went wrong; the user should get our
one-line error only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """File descriptor 2 goes to /dev/null while the block runs (Python's own sys.stderr too)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines while a frame is decoded.

    Why: a corrupt image makes OpenCV print ``[ WARN ]``/``[ERROR]`` lines of its own; the frame
    is skipped with our one warning line instead.
    """
    import cv2

    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)

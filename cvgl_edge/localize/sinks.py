"""Where fixes go: a JSON-lines file (here) and MAVLink to an autopilot (mavlink_sink.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cvgl_edge.errors import CvglError


class JsonlSink:
    """One JSON object per line, flushed per fix (a reader can tail the file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            raise CvglError(f"cannot write fixes to {self.path}: {exc.strerror}") from exc

    def emit(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, allow_nan=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

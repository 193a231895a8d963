"""Frame sources: video file, camera, image folder, synthetic mission.

Why a latest-frame reader: a live camera keeps producing frames while the encoder
works; queueing them would make every fix older than the last. :class:`LatestFrameReader`
reads in a thread and keeps only the newest frame; the loop always takes the newest and
counts the ones it never saw as dropped. A lost camera is reopened with exponential
back-off (``backoff_s`` doubling up to ``backoff_max_s``) until ``give_up_s`` has passed
(``localize --camera-timeout``; ``math.inf``, given as 0, waits for ever: a drone may rather
keep waiting for its camera while the autopilot flies on).

A frame of a folder that cannot be read (corrupt or truncated image) is skipped with a
warning and counted (``skipped``); the flight goes on with the next one.

Offline sources (folder, video, synthetic) hand out every frame in order, which makes
evaluation deterministic; ``realtime=True`` plays them at their frame rate through the
same latest-frame reader, so a slow encoder drops frames as it would on the drone.

Telemetry (heading, altitude) comes from ``telemetry.csv`` (frame, t, heading_deg,
altitude_m) found beside the frames or the video, as a synthetic mission writes it; a
real integration would read the autopilot's attitude instead. A NaN or infinite value there
means unknown for that frame (the loop decides what that implies; a non-finite ``t`` falls
back to the source's own clock and is listed in ``Frame.ignored``).
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvgl_edge import checks
from cvgl_edge.data.images import read_image
from cvgl_edge.data.mission import SyntheticMission, read_mission_spec
from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.quiet import quiet_opencv, quiet_stderr

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")


@dataclass
class Frame:
    """One camera frame (RGB uint8) and what is known about it."""

    image: np.ndarray
    index: int
    t: float                          # seconds on the source's clock
    heading_deg: float | None = None
    altitude_m: float | None = None
    captured: float = 0.0             # time.perf_counter() when the frame was read
    dropped: int = 0                  # frames skipped since the previous one handed out
    ignored: dict[str, str] = field(default_factory=dict)  # telemetry replaced as not finite (name: value)


# --- telemetry -------------------------------------------------------------------------------------
def read_telemetry(path: Path) -> dict[int, dict[str, float]]:
    """telemetry.csv -> {frame: {t, heading_deg, altitude_m}}."""
    try:
        with open(path, newline="") as handle:
            return {int(r["frame"]): {k: float(v) for k, v in r.items() if k != "frame" and v != ""}
                    for r in csv.DictReader(handle)}
    except (OSError, ValueError, KeyError) as exc:
        raise CvglError(f"cannot read telemetry {path}: {exc}") from exc


def _find_telemetry(*folders: Path) -> dict[int, dict[str, float]]:
    for folder in folders:
        if (folder / "telemetry.csv").is_file():
            return read_telemetry(folder / "telemetry.csv")
    return {}


def _frame(image: np.ndarray, index: int, t: float, tel: dict[int, dict[str, float]]) -> Frame:
    info = tel.get(index, {})
    frame = Frame(image, index, float(t), info.get("heading_deg"), info.get("altitude_m"), time.perf_counter())
    if "t" in info:
        clock = checks.known(info["t"])
        if clock is None:
            frame.ignored["t"] = str(info["t"])
        else:
            frame.t = clock
    return frame


# --- offline sources -------------------------------------------------------------------------------
class FolderSource:
    """Images of a folder in name order; an unreadable one is skipped (counted, reported), not fatal."""

    live = False

    def __init__(self, folder: Path, fps: float = 5.0, on_event: Callable[[str], None] | None = None) -> None:
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise CvglError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        self.fps = checks.positive(fps, "--fps", " frames per second")
        self.telemetry = _find_telemetry(folder, folder.parent)
        self.name = str(folder)
        self.on_event = on_event or (lambda message: None)
        self.skipped = 0

    def __iter__(self) -> Iterator[Frame]:

        for i, path in enumerate(self.files):
            try:
                with quiet_opencv():
                    image = read_image(path)
            except CvglError as exc:  # one bad file must not end the flight
                self.skipped += 1
                self.on_event(f"skipped frame {i} ({self.skipped} so far): {first_line(exc)}")
                continue
            yield _frame(image, i, i / self.fps, self.telemetry)

    def close(self) -> None:
        pass


class VideoSource:
    """Frames of a video file (OpenCV)."""

    live = False

    def __init__(self, path: Path) -> None:
        import cv2

        self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise CvglError(f"cannot open video {path}")
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0) or 5.0
        self.telemetry = _find_telemetry(path.parent)
        self.name = str(path)

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        i = 0
        while True:
            ok, bgr = self.cap.read()
            if not ok:
                return
            yield _frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), i, i / self.fps, self.telemetry)
            i += 1

    def close(self) -> None:
        self.cap.release()


class SyntheticSource:
    """Frames of a synthetic mission rendered on the fly (with its telemetry)."""

    live = False

    def __init__(self, mission: Any) -> None:
        self.mission = mission
        self.fps = mission.spec.fps
        self.hfov_deg = mission.spec.hfov_deg  # the loop crops the tile footprint with it
        self.name = f"synthetic(seed={mission.spec.seed})"

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self.mission)):
            st = self.mission.state(i)
            yield Frame(self.mission.frame(i), i, st.t, st.heading_deg, st.altitude_m, time.perf_counter())

    def close(self) -> None:
        pass


# --- live reading ----------------------------------------------------------------------------------
class LatestFrameReader:
    """Reads frames in a thread and keeps only the newest; reopens a lost source with back-off.

    ``grab()`` returns a Frame or None (read failure / end of stream). ``reopen()`` (live
    cameras) returns True once the source works again; without it a failed read ends the
    stream. ``pace_fps`` sleeps between grabs (files played as if live).
    """

    def __init__(self, grab: Callable[[], Frame | None], reopen: Callable[[], bool] | None = None, *,
                 pace_fps: float | None = None, backoff_s: float = 0.25, backoff_max_s: float = 4.0,
                 give_up_s: float = 30.0, name: str = "camera",
                 on_event: Callable[[str], None] | None = None) -> None:
        self._grab, self._reopen = grab, reopen
        self.pace_fps, self.name = pace_fps, name
        self.backoff_s, self.backoff_max_s, self.give_up_s = backoff_s, backoff_max_s, give_up_s
        self.on_event = on_event or (lambda message: None)
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._seq = 0
        self._taken = 0
        self._done = False
        self._stop = threading.Event()
        self.error: str | None = None
        self.reconnects = 0
        self._thread = threading.Thread(target=self._run, name=f"{name}-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_time = time.perf_counter()
        try:
            while not self._stop.is_set():
                if self.pace_fps:
                    next_time += 1.0 / self.pace_fps
                    self._stop.wait(max(0.0, next_time - time.perf_counter()))
                try:
                    frame = self._grab()
                except Exception as exc:  # noqa: BLE001 - a camera driver error is a lost camera
                    self.on_event(f"{self.name}: read failed ({exc})")
                    frame = None
                if frame is None:
                    if self._reopen is None or not self._reconnect():
                        return
                    next_time = time.perf_counter()
                    continue
                with self._cond:
                    self._latest = frame
                    self._seq += 1
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _reconnect(self) -> bool:
        delay, start = self.backoff_s, time.perf_counter()
        while not self._stop.is_set():
            if time.perf_counter() - start > self.give_up_s:
                self.error = f"{self.name} lost and not back after {self.give_up_s:.0f} s"
                return False
            self.on_event(f"{self.name} lost; reconnecting in {delay:.2f} s")
            if self._stop.wait(delay):
                return False
            try:
                ok = self._reopen()
            except Exception:  # noqa: BLE001
                ok = False
            if ok:
                self.reconnects += 1
                self.on_event(f"{self.name} reconnected")
                return True
            delay = min(2.0 * delay, self.backoff_max_s)
        return False

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not handed out yet (waits for one); None at the end of the stream."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._seq > self._taken or self._done, timeout)
            if not ok or self._seq == self._taken:
                return None
            frame = self._latest
            frame.dropped = self._seq - self._taken - 1
            self._taken = self._seq
            return frame

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.get()
            if frame is None:
                if self.error:
                    raise CvglError(self.error)
                return
            yield frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


class CameraSource:
    """A camera (device number or stream URL) read by a :class:`LatestFrameReader`."""

    live = True

    def __init__(self, spec: str, opener: Callable[[Any], Any] | None = None, give_up_s: float = 30.0,
                 on_event: Callable[[str], None] | None = None) -> None:
        import cv2

        self.device: Any = int(spec) if spec.isdigit() else spec
        self._open = opener or cv2.VideoCapture
        with quiet_stderr():
            self.cap = self._open(self.device)
        if self.cap is None or not self.cap.isOpened():
            raise CvglError(f"cannot open camera {spec}")
        self.name = f"camera {spec}"
        self._start = time.perf_counter()
        self._count = 0
        self.reader = LatestFrameReader(self._grab, self._reopen, give_up_s=give_up_s, name=self.name,
                                        on_event=on_event)

    def _grab(self) -> Frame | None:
        import cv2

        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            return None
        self._count += 1
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        now = time.perf_counter()
        return Frame(rgb, self._count - 1, now - self._start, captured=now)

    def _reopen(self) -> bool:
        try:
            self.cap.release()
        except Exception:  # noqa: BLE001
            pass
        with quiet_stderr():
            self.cap = self._open(self.device)
        return self.cap is not None and self.cap.isOpened()

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.reader)

    def close(self) -> None:
        self.reader.close()
        self.cap.release()


class RealtimeSource:
    """An offline source played at its frame rate through a latest-frame reader (drops when slow)."""

    live = True

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = f"{inner.name} (realtime)"
        frames = iter(inner)
        self.reader = LatestFrameReader(lambda: next(frames, None), None, pace_fps=inner.fps, name=inner.name)

    @property
    def skipped(self) -> int:
        """Unreadable frames the inner source skipped."""
        return int(getattr(self.inner, "skipped", 0))

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.reader)

    def close(self) -> None:
        self.reader.close()
        self.inner.close()


def check_source_options(fps: float, camera_timeout_s: float) -> float:
    """``--fps`` (> 0) and ``--camera-timeout`` (seconds >= 0, 0 = for ever); returns the timeout
    as :class:`LatestFrameReader` takes it (``math.inf`` for ever). One check for CLI and library."""
    checks.positive(fps, "--fps", " frames per second")
    return checks.timeout(camera_timeout_s, "--camera-timeout")


def open_source(spec: str, *, mission_folder: Path | None = None, realtime: bool = False, fps: float = 5.0,
                on_event: Callable[[str], None] | None = None, camera_timeout_s: float = 30.0) -> Any:
    """``VIDEO`` | ``DIR`` | ``camera:N`` / ``camera:URL`` | ``synthetic`` -> a frame source.

    ``synthetic`` regenerates the mission in ``mission_folder`` (where its map and mission.json are).
    ``camera_timeout_s``: how long a lost camera is tried again before the run ends (0: for ever).
    """
    give_up_s = check_source_options(fps, camera_timeout_s)
    if spec.startswith("camera:"):
        return CameraSource(spec.split(":", 1)[1], give_up_s=give_up_s, on_event=on_event)
    if spec == "synthetic":

        if mission_folder is None:
            raise CvglError("--source synthetic needs an index built from a synthetic mission map")
        source: Any = SyntheticSource(SyntheticMission(read_mission_spec(mission_folder)))
    else:
        path = Path(spec)
        if path.is_dir():
            source = FolderSource(path, fps, on_event)
        elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            source = VideoSource(path)
        elif path.exists():
            raise CvglError(f"--source {spec}: not a folder of images or a video ({', '.join(VIDEO_SUFFIXES)})")
        else:
            raise CvglError(f"--source not found: {spec} (use a video, a folder, camera:N or synthetic)")
    return RealtimeSource(source) if realtime else source

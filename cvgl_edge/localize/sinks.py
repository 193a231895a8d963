"""Where fixes go: a JSON-lines file, and MAVLink to an autopilot (pymavlink).

MAVLink: the fix is sent as GPS_INPUT (a "fake GPS": ArduPilot GPS1_TYPE=14, PX4 too)
and as VISION_POSITION_ESTIMATE (ArduPilot's preferred external position, x/y/z in NED
metres from the index origin, i.e. the map centre: the autopilot's EKF origin must be that
point for the two to agree) or ODOMETRY. ArduPilot wants external position at >= 4 Hz, so
a sender thread repeats the latest fix, propagated with the filter's velocity, at
``rate_hz`` (default 5 Hz) whenever the loop is slower, and stops once the fix is older
than ``stale_s`` or the loop reports "no fix". Each new fix is also sent at once (frame
rate). A HEARTBEAT (onboard controller) goes out every second.

Messages are MAVLink 2 (``MAVLINK20=1`` is set before pymavlink loads its dialect):
ODOMETRY (id 331) and the extension fields (GPS_INPUT yaw, covariances) need it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.localize.geomap import M_PER_DEG_LAT

MESSAGES = ("gps_input", "vision_position_estimate", "odometry")
#: GPS_INPUT ignore flags (MAVLink GPS_INPUT_IGNORE_FLAGS).
IGNORE_ALT, IGNORE_VDOP, IGNORE_VEL_VERT, IGNORE_SPEED_ACC, IGNORE_VERT_ACC = 1, 4, 16, 32, 128
_GPS_EPOCH_UNIX = 315_964_800
_GPS_LEAP_SECONDS = 18
_NETWORK_SCHEMES = ("udpin", "udpout", "udp", "udpbcast", "tcp", "tcpin")


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


def gps_week_time(unix_s: float) -> tuple[int, int]:
    """(GPS week, milliseconds into the week) of a UNIX time (leap seconds as of 2017+)."""
    gps = unix_s - _GPS_EPOCH_UNIX + _GPS_LEAP_SECONDS
    week = int(gps // 604_800)
    return week, int(round((gps - week * 604_800) * 1000.0))


def check_mavlink_url(url: str) -> None:
    """Refuse a URL pymavlink cannot use, before anything is opened (one line)."""
    scheme, sep, rest = url.partition(":")
    if sep and scheme in _NETWORK_SCHEMES:
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise CvglError(f"MAVLink URL {url!r} needs HOST:PORT, e.g. udpout:127.0.0.1:14550")
        try:
            socket.getaddrinfo(host, int(port))
        except OSError as exc:
            raise CvglError(f"cannot reach MAVLink URL {url}: unknown host {host!r} ({first_line(exc)})") from exc
        return
    device = url.split(",")[0]
    if not sep or scheme.startswith("/") or scheme.upper().startswith("COM"):
        if not Path(device).exists():
            raise CvglError(f"cannot open MAVLink URL {url}: no serial device {device}")
        return
    raise CvglError(f"unknown MAVLink URL {url!r}; use udpout:HOST:PORT, udpin:HOST:PORT, tcp:HOST:PORT "
                    "or a serial device")


def _mavutil() -> Any:
    os.environ["MAVLINK20"] = "1"
    from pymavlink import mavutil

    if getattr(mavutil.mavlink, "WIRE_PROTOCOL_VERSION", "2.0") != "2.0":
        mavutil.set_dialect(mavutil.current_dialect)
    return mavutil


class MavlinkSink:
    """Sends fixes to an autopilot; see the module docstring for the messages and rates."""

    def __init__(self, url: str, origin: tuple[float, float], *, messages: tuple[str, ...] = MESSAGES[:2],
                 rate_hz: float = 5.0, stale_s: float = 1.0, source_system: int = 1, source_component: int = 197,
                 wait_heartbeat_s: float | None = None) -> None:
        unknown = [m for m in messages if m not in MESSAGES]
        if unknown:
            raise CvglError(f"unknown MAVLink message(s) {', '.join(unknown)}; choose from {', '.join(MESSAGES)}")
        if rate_hz < 4.0:
            raise CvglError(f"--mavlink-rate {rate_hz} Hz is below the 4 Hz ArduPilot needs")
        check_mavlink_url(url)
        mavutil = _mavutil()
        try:
            self.conn = mavutil.mavlink_connection(url, source_system=source_system,
                                                   source_component=source_component, retries=1)
        except Exception as exc:  # noqa: BLE001 - socket/serial errors: the URL is unusable
            raise CvglError(f"cannot open MAVLink URL {url}: {first_line(exc)}") from exc
        self.url, self.origin, self.messages = url, origin, tuple(messages)
        self.rate_hz, self.stale_s = rate_hz, stale_s
        self.sent = {m: 0 for m in MESSAGES} | {"heartbeat": 0}
        self.errors = 0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()      # pymavlink's sequence counter is not thread-safe
        self._latest: dict[str, Any] | None = None
        self._latest_at = 0.0
        self._last_send = 0.0
        self._stop = threading.Event()
        self._mavlink = mavutil.mavlink
        self._heartbeat()
        if wait_heartbeat_s:
            if self.conn.wait_heartbeat(timeout=wait_heartbeat_s) is None:
                self.conn.close()
                raise CvglError(f"no MAVLink heartbeat from {url} within {wait_heartbeat_s:g} s")
        self._thread = threading.Thread(target=self._run, name="mavlink-sender", daemon=True)
        self._thread.start()

    # --- sending ----------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        m = self._mavlink
        self._safe(lambda: self.conn.mav.heartbeat_send(m.MAV_TYPE_ONBOARD_CONTROLLER, m.MAV_AUTOPILOT_INVALID,
                                                        0, 0, m.MAV_STATE_ACTIVE), "heartbeat")

    def _safe(self, send, name: str) -> None:
        try:
            with self._send_lock:
                send()
            self.sent[name] += 1
        except OSError:
            self.errors += 1      # e.g. ECONNREFUSED from a UDP peer that is not up yet: keep going

    def emit(self, record: dict[str, Any]) -> None:
        """Take a loop record; send it now when it holds a position."""
        with self._lock:
            if record.get("lat") is None or record.get("status") == "no_fix":
                self._latest = None
                return
            self._latest, self._latest_at = record, time.monotonic()
        self._send(record, 0.0)

    def _send(self, rec: dict[str, Any], age_s: float) -> None:
        ve, vn = float(rec.get("v_east") or 0.0), float(rec.get("v_north") or 0.0)
        if not (math.isfinite(ve) and math.isfinite(vn)):
            ve = vn = 0.0
        lat = rec["lat"] + vn * age_s / M_PER_DEG_LAT
        lon = rec["lon"] + ve * age_s / (M_PER_DEG_LAT * math.cos(math.radians(rec["lat"])))
        sigma = float(rec.get("sigma_m") or 30.0)
        if not math.isfinite(sigma):
            sigma = 999.0
        alt = rec.get("altitude_m")
        heading = rec.get("heading_deg")
        now_us = int(time.time() * 1e6)
        if "gps_input" in self.messages:
            week, week_ms = gps_week_time(time.time())
            flags = IGNORE_VDOP | IGNORE_VEL_VERT | IGNORE_SPEED_ACC | IGNORE_VERT_ACC | (IGNORE_ALT if alt is None else 0)
            yaw_cdeg = 0 if heading is None else int(round(heading * 100)) % 36000 or 36000
            self._safe(lambda: self.conn.mav.gps_input_send(
                now_us, 0, flags, week_ms, week, 3 if alt is not None else 2, int(round(lat * 1e7)),
                int(round(lon * 1e7)), float(alt or 0.0), sigma / 5.0, 99.0, vn, ve, 0.0, 0.0, sigma, 0.0, 10,
                yaw_cdeg), "gps_input")
        north, east = (lat - self.origin[0]) * M_PER_DEG_LAT, \
            (lon - self.origin[1]) * M_PER_DEG_LAT * math.cos(math.radians(self.origin[0]))
        down = -float(alt) if alt is not None else 0.0
        yaw = math.radians(heading) if heading is not None else 0.0
        var = sigma ** 2
        if "vision_position_estimate" in self.messages:
            cov = [0.0] * 21
            cov[0], cov[6], cov[11], cov[15], cov[18], cov[20] = var, var, 25.0, 0.1, 0.1, 0.5
            self._safe(lambda: self.conn.mav.vision_position_estimate_send(now_us, north, east, down, 0.0, 0.0, yaw,
                                                                           cov), "vision_position_estimate")
        if "odometry" in self.messages:
            m = self._mavlink
            q = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
            pose = [0.0] * 21
            pose[0], pose[6], pose[11] = var, var, 25.0
            vel = [float("nan")] + [0.0] * 20
            self._safe(lambda: self.conn.mav.odometry_send(
                now_us, m.MAV_FRAME_LOCAL_NED, m.MAV_FRAME_BODY_FRD, north, east, down, q, vn, ve, 0.0,
                float("nan"), float("nan"), float("nan"), pose, vel, 0, m.MAV_ESTIMATOR_TYPE_VISION,
                int(round(100 * float(rec.get("confidence") or 0.0)))), "odometry")
        self._last_send = time.monotonic()

    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        next_beat = time.monotonic() + 1.0
        while not self._stop.wait(period / 4):
            now = time.monotonic()
            if now >= next_beat:
                self._heartbeat()
                next_beat = now + 1.0
            with self._lock:
                rec, at = self._latest, self._latest_at
            if rec is None or now - at > self.stale_s or now - self._last_send < period:
                continue
            self._send(rec, now - at)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.conn.close()

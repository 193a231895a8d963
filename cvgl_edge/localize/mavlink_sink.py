"""Fixes to an autopilot over MAVLink: the messages its EKF fuses, at the rate it needs (pymavlink).

What goes out (fields: mavlink_fields.py; which messages: autopilot.py):
* the chosen position messages at ``rate_hz`` (10 Hz default: ArduPilot's GPS health needs
  < 215 ms between messages, PX4's external vision < 200 ms). A new fix goes out as soon as the
  autopilot's minimum interval (50 ms) allows, stamped with its capture time; between fixes
  the latest one is repeated as a prediction (dead-reckoned, sigma grown) stamped with the
  send time, until it is ``stale_s`` old;
* without a position, a GPS message says so (fix_type NO_FIX) instead of falling silent; a
  local-frame message cannot express "no position", so it stops (ArduPilot marks external
  navigation unhealthy after 300 ms, PX4 after 400 ms);
* local-frame messages (VISION_POSITION_ESTIMATE, ODOMETRY) are relative to the EKF origin:
  the sink asks for the map's origin with SET_GPS_GLOBAL_ORIGIN and requests GPS_GLOBAL_ORIGIN
  every second, and sends them only once the autopilot has answered with its origin (which
  wins: ArduPilot keeps an origin set earlier, e.g. by a real GPS at boot);
* a HEARTBEAT (onboard controller) every second; TIMESYNC requests from PX4 are answered with
  the sender's monotonic clock, the clock the local-frame time stamps use.

A receiver thread reads the link: the autopilot's heartbeat (``wait_heartbeat_s`` waits for
one from the chosen autopilot, not from a ground station), GPS_GLOBAL_ORIGIN and TIMESYNC.
Messages are MAVLink 2 (``MAVLINK20=1`` is set before pymavlink loads its dialect).
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.localize.autopilot import LOCAL_FRAME_MESSAGES, AutopilotProfile
from cvgl_edge.localize.mavlink_fields import (
    GPS_MESSAGES,
    LOCAL_MESSAGES,
    Origin,
    set_gps_global_origin,
)
from cvgl_edge.localize.position_sample import PositionSample, sample_from_record

_NETWORK_SCHEMES = ("udpin", "udpout", "udp", "udpbcast", "tcp", "tcpin")
#: MAV_CMD_REQUEST_MESSAGE and the GPS_GLOBAL_ORIGIN message id (common.xml).
MAV_CMD_REQUEST_MESSAGE, MSG_ID_GPS_GLOBAL_ORIGIN = 512, 49
ORIGIN_RETRY_S = 1.0
HEARTBEAT_PERIOD_S = 1.0


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


def mavutil_module() -> Any:
    """pymavlink's mavutil, MAVLink 2 (ODOMETRY and the extension fields need it)."""
    os.environ["MAVLINK20"] = "1"
    from pymavlink import mavutil

    if getattr(mavutil.mavlink, "WIRE_PROTOCOL_VERSION", "2.0") != "2.0":
        mavutil.set_dialect(mavutil.current_dialect)
    return mavutil


@dataclass(frozen=True)
class MavlinkSettings:
    """Where and what to send (``cvgl-edge localize --mavlink...`` options)."""

    url: str
    autopilot: AutopilotProfile
    messages: tuple[str, ...]
    map_origin: tuple[float, float]     # the index's origin: the EKF origin the sink asks for
    ground_msl_m: float                 # ground height above mean sea level at the map
    rate_hz: float = 10.0
    stale_s: float = 1.0
    system_id: int = 1                  # the vehicle's: PX4 takes HIL_GPS only from its own (RX:367)
    component_id: int = 197             # MAV_COMP_ID_VISUAL_INERTIAL_ODOMETRY
    wait_heartbeat_s: float | None = None

    def check(self) -> None:
        self.autopilot.check_messages(self.messages)
        if not self.autopilot.min_rate_hz <= self.rate_hz <= self.autopilot.max_rate_hz:
            raise CvglError(f"--mavlink-rate {self.rate_hz:g} Hz: {self.autopilot.name} needs "
                            f"{self.autopilot.min_rate_hz:g} to {self.autopilot.max_rate_hz:g} Hz")
        if not (1 <= self.system_id <= 255 and 1 <= self.component_id <= 255):
            raise CvglError("--mavlink-sysid and --mavlink-compid must be 1..255")
        if not math.isfinite(self.ground_msl_m):
            raise CvglError("--ground-elevation must be a finite number of metres above mean sea level")
        check_mavlink_url(self.url)

    @property
    def local_messages(self) -> tuple[str, ...]:
        return tuple(m for m in self.messages if m in LOCAL_FRAME_MESSAGES)

    @property
    def gps_messages(self) -> tuple[str, ...]:
        return tuple(m for m in self.messages if m in GPS_MESSAGES)


@dataclass
class LinkState:
    """What the receiver learnt about the autopilot, and what was sent (the run summary's ``mavlink``)."""

    autopilot_system: int | None = None
    autopilot_component: int | None = None
    other_autopilot: int | None = None          # heartbeat of another autopilot type than the profile's
    origin: Origin | None = None                # the EKF origin the autopilot reported
    sent: dict[str, int] = field(default_factory=dict)
    held_for_origin: int = 0
    timesync_replies: int = 0
    send_errors: int = 0

    def summary(self) -> dict[str, Any]:
        origin = None if self.origin is None else [self.origin.lat, self.origin.lon, self.origin.alt_msl_m]
        return {"sent": dict(self.sent), "send_errors": self.send_errors, "autopilot_system": self.autopilot_system,
                "origin": origin, "held_for_origin": self.held_for_origin, "timesync_replies": self.timesync_replies}


class MavlinkSink:
    """Sends the loop's fixes to an autopilot; see the module docstring."""

    def __init__(self, settings: MavlinkSettings) -> None:
        settings.check()
        self.settings = settings
        mavutil = mavutil_module()
        self._mav = mavutil.mavlink
        try:
            self.conn = mavutil.mavlink_connection(settings.url, source_system=settings.system_id,
                                                   source_component=settings.component_id, retries=1)
        except Exception as exc:  # noqa: BLE001 - socket/serial errors: the URL is unusable
            raise CvglError(f"cannot open MAVLink URL {settings.url}: {first_line(exc)}") from exc
        self.state = LinkState(sent={m: 0 for m in (*settings.messages, "heartbeat", "set_gps_global_origin",
                                                    "command_long")})
        self._lock = threading.Lock()            # the latest sample
        self._send_lock = threading.Lock()       # pymavlink's sequence counter is not thread-safe
        self._latest: PositionSample | None = None
        self._fresh = False
        self._latest_at = -math.inf              # when the loop handed the latest record over
        self._last_send = -math.inf
        self._stop = threading.Event()
        self._heartbeat_seen = threading.Event()
        self._send("heartbeat", self._heartbeat_fields())
        self._receiver = threading.Thread(target=self._receive, name="mavlink-receiver", daemon=True)
        self._receiver.start()
        if settings.wait_heartbeat_s:
            self._wait_for_autopilot(settings.wait_heartbeat_s)
        self._sender = threading.Thread(target=self._run, name="mavlink-sender", daemon=True)
        self._sender.start()

    # --- the loop's side -------------------------------------------------------------------------
    def emit(self, record: dict[str, Any]) -> None:
        """Take a loop record: its position (or its lack of one) is what the next send says."""
        with self._lock:
            self._latest = sample_from_record(record)
            self._fresh = self._latest is not None
            self._latest_at = time.monotonic()

    @property
    def sent(self) -> dict[str, int]:
        return self.state.sent

    def close(self) -> None:
        self._stop.set()
        for thread in (getattr(self, "_sender", None), self._receiver):
            if thread is not None:
                thread.join(timeout=2.0)
        self.conn.close()

    # --- sending ---------------------------------------------------------------------------------
    def _heartbeat_fields(self) -> dict[str, Any]:
        m = self._mav
        return dict(type=m.MAV_TYPE_ONBOARD_CONTROLLER, autopilot=m.MAV_AUTOPILOT_INVALID, base_mode=0,
                    custom_mode=0, system_status=m.MAV_STATE_ACTIVE)

    def _send(self, name: str, fields: dict[str, Any]) -> None:
        try:
            with self._send_lock:
                getattr(self.conn.mav, f"{name}_send")(**fields)
            self.state.sent[name] = self.state.sent.get(name, 0) + 1
        except OSError:
            self.state.send_errors += 1   # e.g. ECONNREFUSED from a UDP peer that is not up yet: keep going

    def _target_system(self) -> int:
        return self.state.autopilot_system or self.settings.system_id

    def _ask_for_origin(self) -> None:
        """SET_GPS_GLOBAL_ORIGIN (the map's centre at ground level) and a request for GPS_GLOBAL_ORIGIN."""
        s = self.settings
        wanted = Origin(s.map_origin[0], s.map_origin[1], s.ground_msl_m)
        self._send("set_gps_global_origin", set_gps_global_origin(wanted, self._target_system(), time.time()))
        self._send("command_long", dict(target_system=self._target_system(),
                                        target_component=self.state.autopilot_component or 1,
                                        command=MAV_CMD_REQUEST_MESSAGE, confirmation=0,
                                        param1=MSG_ID_GPS_GLOBAL_ORIGIN, param2=0, param3=0, param4=0, param5=0,
                                        param6=0, param7=0))

    def _send_position(self, sample: PositionSample | None) -> None:
        s = self.settings
        for name in s.gps_messages:
            message = GPS_MESSAGES[name]
            current = sample.propagated(time.time()) if sample and message.stamped_at_arrival else sample
            self._send(name, message.encode(current, s.ground_msl_m))
        if sample is None or not s.local_messages:
            return
        origin = self.state.origin
        if origin is None:
            self.state.held_for_origin += 1
            return
        usec = int(round((time.monotonic() - (time.time() - sample.unix_s)) * 1e6))
        for name in s.local_messages:
            self._send(name, LOCAL_MESSAGES[name](sample, origin, s.ground_msl_m, usec, s.autopilot.name))

    def _run(self) -> None:
        s = self.settings
        period, min_interval = 1.0 / s.rate_hz, 1.0 / s.autopilot.max_rate_hz
        next_beat = next_origin = time.monotonic()
        while not self._stop.wait(min_interval / 2):
            now = time.monotonic()
            if now >= next_beat:
                self._send("heartbeat", self._heartbeat_fields())
                next_beat = now + HEARTBEAT_PERIOD_S
            if s.local_messages and self.state.origin is None and now >= next_origin:
                self._ask_for_origin()
                next_origin = now + ORIGIN_RETRY_S
            since = now - self._last_send
            with self._lock:
                sample, handed_at = self._latest, self._latest_at
                send_fresh = self._fresh and since >= min_interval
                self._fresh = self._fresh and not send_fresh
            if send_fresh:
                self._send_position(sample)
            elif since >= period:
                # Between fixes: the latest one dead-reckoned to now, until the loop has been silent for stale_s
                # (measured from when it handed the fix over, so a slow model's latency does not count).
                current = sample.propagated(time.time()) if sample and now - handed_at <= s.stale_s else None
                self._send_position(current)
            else:
                continue
            self._last_send = now

    # --- receiving -------------------------------------------------------------------------------
    def _wait_for_autopilot(self, timeout_s: float) -> None:
        if self._heartbeat_seen.wait(timeout_s):
            return
        self.close()
        other = self.state.other_autopilot
        found = f" (only a heartbeat of autopilot type {other}: is it the other --autopilot?)" if other else ""
        raise CvglError(f"no {self.settings.autopilot.name} heartbeat from {self.settings.url} within "
                        f"{timeout_s:g} s{found}")

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.conn.recv_match(type=["HEARTBEAT", "GPS_GLOBAL_ORIGIN", "TIMESYNC"], blocking=True,
                                           timeout=0.2)
            except (OSError, ValueError):
                msg = None
            if msg is not None:
                self._handle(msg)

    def _handle(self, msg: Any) -> None:
        kind = msg.get_type()
        if kind == "HEARTBEAT":
            if self.settings.autopilot.is_autopilot_heartbeat(msg.autopilot, msg.type):
                self.state.autopilot_system, self.state.autopilot_component = msg.get_srcSystem(), msg.get_srcComponent()
                self._heartbeat_seen.set()
            elif msg.type not in (self._mav.MAV_TYPE_GCS, self._mav.MAV_TYPE_ONBOARD_CONTROLLER) and \
                    msg.autopilot != self._mav.MAV_AUTOPILOT_INVALID:
                self.state.other_autopilot = msg.autopilot
        elif kind == "GPS_GLOBAL_ORIGIN":
            if self.state.autopilot_system in (None, msg.get_srcSystem()):
                self.state.origin = Origin(msg.latitude * 1e-7, msg.longitude * 1e-7, msg.altitude * 1e-3)
        elif kind == "TIMESYNC" and msg.tc1 == 0:
            # PX4 maps our time stamps to its clock once this converges (Timesync.cpp:45-59, 124-133).
            self._send("timesync", dict(tc1=time.monotonic_ns(), ts1=msg.ts1))
            self.state.timesync_replies += 1

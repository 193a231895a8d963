"""Simulated autopilots: what ArduPilot 4.6 and PX4 1.16 would fuse of the sink's MAVLink stream.

Each consumer applies the acceptance rules of the autopilot's own handling code (the lines are
cited; ArduPilot Copter-4.6.3, PX4 v1.16.0; RX = PX4's mavlink_receiver.cpp, GCS = ArduPilot's
GCS_Common.cpp) under a parameter set (by default the one cvgl-edge documents,
``cvgl_edge.localize.autopilot.PARAMETERS``), counts what it fuses and why it rejects the rest,
and turns each fused local position back into lat/lon through its own EKF origin, so a test can
compare what the autopilot would believe with the fixes the loop made. A model of the rules
that decide acceptance, not of the filters. It is written from the autopilots' code, not from
the sink's, so a wrong frame, unit, flag or origin in the sink shows up as a rejection or an
offset here.

``AutopilotPeer`` runs one of them on a UDP socket with pymavlink, as a flight controller:
heartbeats, GPS_GLOBAL_ORIGIN answers, TIMESYNC requests (PX4).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cvgl_edge.localize.autopilot import PARAMETERS

os.environ["MAVLINK20"] = "1"
from pymavlink import mavutil  # noqa: E402

IGNORE = {"ALT": 1, "HDOP": 2, "VDOP": 4, "VEL_HORIZ": 8, "VEL_VERT": 16, "SPEED_ACCURACY": 32, "HORIZONTAL_ACCURACY": 64,
          "VERTICAL_ACCURACY": 128}


def documented(autopilot: str, *groups: str) -> dict[str, float]:
    params: dict[str, float] = {}
    for group in groups:
        for p in PARAMETERS[(autopilot, group)]:
            params.setdefault(p.name, p.value)
    return params


@dataclass
class Fused:
    """One position the simulated EKF takes: where, how sure, and the reset counter it came with."""

    message: str
    lat: float
    lon: float
    alt_msl: float | None
    sigma_m: float
    reset_counter: int | None = None


@dataclass
class SimulatedAutopilot:
    """Acceptance rules of one autopilot. ``handle(msg)`` returns the replies to send."""

    kind: str                               # "ardupilot" or "px4"
    params: dict[str, float]
    sysid: int = 1
    origin: tuple[float, float, float] | None = None     # lat, lon, alt MSL (m)
    fused: list[Fused] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    no_fix: int = 0
    resets: int = 0
    aligned_at: float | None = None
    yaw_fused: int = 0
    timesync_replies: int = 0
    ev_waiting: int = 0                      # PX4 samples that arrived while external vision was not running
    gps_times: list[float] = field(default_factory=list)
    ext_nav_arrivals: list[float] = field(default_factory=list)
    _good_since: float | None = None
    _ev_active: bool = False
    _last_reset: int | None = None

    # ------------------------------------------------------------------------- shared
    def handle(self, msg: Any, arrival_s: float) -> list[tuple[str, dict[str, Any]]]:
        kind = msg.get_type()
        handler = getattr(self, f"_{self.kind}_{kind.lower()}", None)
        if handler is None:
            return []
        return handler(msg, arrival_s) or []

    def _origin_reply(self) -> list[tuple[str, dict[str, Any]]]:
        if self.origin is None:
            return []
        lat, lon, alt = self.origin
        return [("gps_global_origin", dict(latitude=round(lat * 1e7), longitude=round(lon * 1e7),
                                           altitude=round(alt * 1000), time_usec=0))]

    def _to_global(self, north: float, east: float) -> tuple[float, float]:
        """ArduPilot's Location::offset (LATLON_TO_M = 0.011131884502145034 m per 1e-7 degree), not
        cvgl-edge's own conversion, so that a frame mistake in the sink cannot cancel out here."""
        lat0, lon0 = self.origin[:2]
        metres_per_degree = 0.011131884502145034 * 1e7
        lat = lat0 + north / metres_per_degree
        lon = lon0 + east / (metres_per_degree * math.cos(math.radians(lat0)))
        return lat, lon

    def _reset_counter(self, value: int) -> None:
        if self._last_reset is not None and value != self._last_reset:
            self.resets += 1           # AP_VisualOdom_Backend.cpp:83-91 / PX4 ev_control.cpp:52
        self._last_reset = value

    # ------------------------------------------------------------------------- ArduPilot
    def _ardupilot_set_gps_global_origin(self, msg: Any, arrival_s: float) -> list:
        if self.origin is None:        # GCS:3773-3776: only while the EKF has none; target_system not checked
            self.origin = (msg.latitude * 1e-7, msg.longitude * 1e-7, msg.altitude * 1e-3)
        return self._origin_reply()

    def _ardupilot_command_long(self, msg: Any, arrival_s: float) -> list:
        return self._origin_reply() if msg.command == 512 and int(msg.param1) == 49 else []

    def _ardupilot_gps_input(self, msg: Any, arrival_s: float) -> list:
        p = self.params
        if p.get("GPS1_TYPE") != 14:
            self.rejected["GPS_INPUT without GPS1_TYPE=14"] += 1
            return []
        if msg.gps_id != 0:                                        # AP_GPS_MAV.cpp:51
            self.rejected["gps_id is not GPS1"] += 1
            return []
        self.gps_times.append(arrival_s)
        if msg.fix_type < 3:                                       # AP_NavEKF3_Measurements.cpp:555
            self.no_fix += 1
            self._good_since = None if self.aligned_at is None else self._good_since
            return []
        flags = msg.ignore_flags
        alt = 0.0 if flags & IGNORE["ALT"] else msg.alt            # AP_GPS_MAV.cpp:69-75
        hdop = 65535 if flags & IGNORE["HDOP"] else round(msg.hdop * 100)
        scale = p.get("EK3_CHECK_SCALE", 100) / 100.0
        mask = int(p.get("EK3_GPS_CHECK", 31))
        failures = []                                              # AP_NavEKF3_VehicleStatus.cpp
        if mask & 1 and msg.satellites_visible < 6:
            failures.append("satellites")                          # :182
        if mask & 2 and hdop > 250:
            failures.append("hdop")                                # :170
        if mask & 4 and not flags & IGNORE["SPEED_ACCURACY"] and msg.speed_accuracy > 1.0 * scale:
            failures.append("speed accuracy")                      # :157
        if mask & 8 and not flags & IGNORE["HORIZONTAL_ACCURACY"] and msg.horiz_accuracy > 5.0 * scale:
            failures.append("position accuracy")                   # :124
        gps_time = msg.time_week * 604_800 + msg.time_week_ms / 1000.0
        if self.aligned_at is None:                                # 10 s of passing checks (:229-233)
            if failures:
                self.rejected["alignment check: " + ", ".join(failures)] += 1
                self._good_since = None
                return []
            self._good_since = gps_time if self._good_since is None else self._good_since
            if gps_time - self._good_since < 10.0:
                return []
            self.aligned_at = gps_time
            self.origin = (msg.lat * 1e-7, msg.lon * 1e-7, alt)    # Measurements.cpp:672-694: origin from GPS
        if msg.yaw != 0 and p.get("EK3_SRC1_YAW") in (2, 3):       # AP_GPS_MAV.cpp:113-118, MagFusion.cpp:288
            self.yaw_fused += 1
        sigma = min(max(msg.horiz_accuracy, p.get("EK3_POSNE_M_NSE", 0.5)), 100.0)   # PosVelFusion.cpp:743-744
        self.fused.append(Fused("GPS_INPUT", msg.lat * 1e-7, msg.lon * 1e-7, alt, sigma))
        return []

    def _ardupilot_ext_nav(self, name: str, north: float, east: float, down: float, cov: list[float],
                           reset: int, arrival_s: float) -> None:
        p = self.params
        if p.get("VISO_TYPE") != 1 or p.get("EK3_SRC1_POSXY") != 6:
            self.rejected[f"{name} without VISO_TYPE=1 / EK3_SRC1_POSXY=6"] += 1
            return
        if not all(math.isfinite(v) for v in (north, east, down)):
            self.rejected[f"{name} position not finite"] += 1     # Measurements.cpp:1061-1063
            return
        if self.ext_nav_arrivals and arrival_s - self.ext_nav_arrivals[-1] < 0.020:
            self.rejected[f"{name} closer than 20 ms to the last"] += 1   # Measurements.cpp:1067, AP_NavEKF3.h:495
            return
        self.ext_nav_arrivals.append(arrival_s)
        if self.origin is None:
            self.rejected[f"{name} before the EKF has an origin"] += 1   # no global position (Outputs.cpp:326-340)
            return
        err = 0.0 if math.isnan(cov[0]) else math.cbrt(cov[0] ** 2 + cov[6] ** 2 + cov[11] ** 2)   # GCS:3897
        err = min(max(err, p.get("VISO_POS_M_NSE", 0.2)), 100.0)    # AP_VisualOdom_MAV.cpp:33
        err = min(max(err, 0.01), 10.0)                             # PosVelFusion.cpp:747
        self._reset_counter(reset)
        lat, lon = self._to_global(north, east)
        self.fused.append(Fused(name, lat, lon, self.origin[2] - down, err, reset))

    def _ardupilot_vision_position_estimate(self, msg: Any, arrival_s: float) -> list:
        if math.isfinite(msg.yaw) and self.params.get("EK3_SRC1_YAW") == 6:   # Measurements.cpp:1096-1107
            self.yaw_fused += 1
        self._ardupilot_ext_nav("VISION_POSITION_ESTIMATE", msg.x, msg.y, msg.z, list(msg.covariance),
                                msg.reset_counter, arrival_s)
        return []

    def _ardupilot_odometry(self, msg: Any, arrival_s: float) -> list:
        if msg.frame_id != 20 or msg.child_frame_id != 12:         # GCS:3886-3890
            self.rejected["ODOMETRY frame is not LOCAL_FRD/BODY_FRD"] += 1
            return []
        if msg.quality < self.params.get("VISO_QUAL_MIN", 0):      # AP_VisualOdom_MAV.cpp:37
            self.rejected["ODOMETRY quality below VISO_QUAL_MIN"] += 1
            return []
        if all(math.isfinite(v) for v in msg.q) and self.params.get("EK3_SRC1_YAW") == 6:   # MagFusion.cpp:366-375
            self.yaw_fused += 1
        self._ardupilot_ext_nav("ODOMETRY", msg.x, msg.y, msg.z, list(msg.pose_covariance), msg.reset_counter,
                                arrival_s)
        return []

    # ------------------------------------------------------------------------- PX4
    def _px4_set_gps_global_origin(self, msg: Any, arrival_s: float) -> list:
        if msg.target_system == self.sysid:                        # RX:1269
            self.origin = (msg.latitude * 1e-7, msg.longitude * 1e-7, msg.altitude * 1e-3)
        else:
            self.rejected["SET_GPS_GLOBAL_ORIGIN for another system"] += 1
        return self._origin_reply()                                # RX:1285

    def _px4_command_long(self, msg: Any, arrival_s: float) -> list:
        return self._origin_reply() if msg.command == 512 and int(msg.param1) == 49 else []

    def _px4_ev(self, name: str, north: float, east: float, down: float, variances: list[float], quality: int,
                reset: int, arrival_s: float) -> None:
        p = self.params
        if not int(p.get("EKF2_EV_CTRL", 0)) & 1:                 # ev_pos_control.cpp:52-55
            self.rejected[f"{name} with EKF2_EV_CTRL bit 0 off"] += 1
            return
        if p.get("EKF2_EV_QMIN", 0) > 0 and quality < p["EKF2_EV_QMIN"]:   # ev_control.cpp:55-63
            self.rejected[f"{name} quality below EKF2_EV_QMIN"] += 1
            return
        if not all(math.isfinite(v) for v in (north, east, down)):
            self.rejected[f"{name} position not finite"] += 1
            return
        gap = arrival_s - self.ext_nav_arrivals[-1] if self.ext_nav_arrivals else math.inf
        self.ext_nav_arrivals.append(arrival_s)
        if gap > 0.400:                                            # ev_control.cpp:100-113: fusion stops
            self._ev_active = False
        if not self._ev_active:                                    # starts on samples < 200 ms apart
            self._ev_active = gap < 0.200                          # (EV_MAX_INTERVAL, EKF/common.h:71-72)
            if not self._ev_active:
                self.ev_waiting += 1
                return
        if self.origin is None:
            self.rejected[f"{name} without a global origin"] += 1   # EKF2.cpp:1168-1182
            return
        floor = p.get("EKF2_EVP_NOISE", 0.1) ** 2
        use_sent = p.get("EKF2_EV_NOISE_MD", 0) == 0 and all(math.isfinite(v) for v in variances)
        variance = max(floor, max(variances[:2])) if use_sent else floor   # EKF2.cpp:2262-2273
        self._reset_counter(reset)
        lat, lon = self._to_global(north, east)
        self.fused.append(Fused(name, lat, lon, self.origin[2] - down, math.sqrt(variance), reset))

    def _px4_odometry(self, msg: Any, arrival_s: float) -> list:
        if msg.estimator_type not in (0, 1, 2, 3):                 # RX:1528-1552
            self.rejected["ODOMETRY estimator_type unsupported"] += 1
            return []
        if msg.frame_id != 1:                                      # only LOCAL_NED is NED without alignment (RX:1355)
            self.rejected["ODOMETRY frame is not LOCAL_NED"] += 1
            return []
        if all(math.isfinite(v) for v in msg.q) and int(self.params.get("EKF2_EV_CTRL", 0)) & 8:
            self.yaw_fused += 1
        cov = list(msg.pose_covariance)
        self._px4_ev("ODOMETRY", msg.x, msg.y, msg.z, [cov[0], cov[6], cov[11]], msg.quality, msg.reset_counter,
                     arrival_s)
        return []

    def _px4_vision_position_estimate(self, msg: Any, arrival_s: float) -> list:
        cov = list(msg.covariance)
        if math.isfinite(msg.yaw) and int(self.params.get("EKF2_EV_CTRL", 0)) & 8:   # RX:1319-1320
            self.yaw_fused += 1
        self._px4_ev("VISION_POSITION_ESTIMATE", msg.x, msg.y, msg.z, [cov[0], cov[6], cov[11]], 0,
                     msg.reset_counter, arrival_s)
        return []

    def _px4_hil_gps(self, msg: Any, arrival_s: float) -> list:
        p = self.params
        if p.get("MAV_USEHILGPS") != 1 or msg.get_srcSystem() != self.sysid:   # RX:367-376
            self.rejected["HIL_GPS without MAV_USEHILGPS=1 from the vehicle's system id"] += 1
            return []
        self.gps_times.append(arrival_s)
        if msg.fix_type < 3:                                       # gps_checks.cpp:63
            self.no_fix += 1
            return []
        mask = int(p.get("EKF2_GPS_CHECK", 1023))
        failures = []                                              # gps_checks.cpp:58-189
        if mask & 1 and msg.satellites_visible < p.get("EKF2_REQ_NSATS", 6):
            failures.append("satellites")
        if mask & 4 and msg.eph * 0.01 > p.get("EKF2_REQ_EPH", 3.0):
            failures.append("eph")
        if mask & 8 and msg.epv * 0.01 > p.get("EKF2_REQ_EPV", 5.0):
            failures.append("epv")
        if mask & 16 and 0.25 > p.get("EKF2_REQ_SACC", 0.5):    # speed variance fixed at 0.25 (RX:2425)
            failures.append("speed accuracy")
        if failures:                                               # dropped in flight too (gps_control.cpp:66-86)
            self.rejected["GNSS check: " + ", ".join(failures)] += 1
            return []
        if self.origin is None:                                    # GNSS sets the origin at its first use
            self.origin = (msg.lat * 1e-7, msg.lon * 1e-7, msg.alt * 1e-3)
        self.fused.append(Fused("HIL_GPS", msg.lat * 1e-7, msg.lon * 1e-7, msg.alt * 1e-3,
                                max(msg.eph * 0.01, p.get("EKF2_GPS_P_NOISE", 0.5))))
        return []

    def _px4_timesync(self, msg: Any, arrival_s: float) -> list:
        if msg.tc1 != 0:                                           # an answer to our request (Timesync.cpp:45-59)
            self.timesync_replies += 1
        return []


class AutopilotPeer:
    """A simulated flight controller on ``udpin:127.0.0.1:PORT``: heartbeats, replies, and ``sim``'s rules."""

    HEARTBEAT = {"ardupilot": 3, "px4": 12}

    def __init__(self, sim: SimulatedAutopilot, port: int, heartbeat_autopilot: int | None = None,
                 vehicle_type: int = 2) -> None:
        self.sim = sim
        self.conn = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=sim.sysid, source_component=1)
        self.autopilot_id = self.HEARTBEAT[sim.kind] if heartbeat_autopilot is None else heartbeat_autopilot
        self.vehicle_type = vehicle_type
        self.received: Counter = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _send(self, name: str, fields: dict[str, Any]) -> None:
        with self._lock:
            getattr(self.conn.mav, f"{name}_send")(**fields)

    def _run(self) -> None:
        next_beat = 0.0
        while not self._stop.is_set():
            msg = self.conn.recv_match(blocking=True, timeout=0.05)
            now = time.monotonic()
            if msg is not None and msg.get_type() != "BAD_DATA":
                self.received[msg.get_type()] += 1
                for name, fields in self.sim.handle(msg, now):
                    self._send(name, fields)
            if self.conn.clients and now >= next_beat:   # the sink has been heard (udpin answers its clients)
                self._send("heartbeat", dict(type=self.vehicle_type, autopilot=self.autopilot_id, base_mode=0,
                                             custom_mode=0, system_status=4))
                if self.sim.kind == "px4":                         # PX4 asks (mavlink_timesync.cpp)
                    self._send("timesync", dict(tc1=0, ts1=time.monotonic_ns()))
                next_beat = now + 0.25

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.conn.close()

"""Every field of every MAVLink message the sink sends, per autopilot, with the code that reads it.

Sources (paths and lines at the tags read: ArduPilot Copter-4.6.3, PX4 v1.16.0; AP = ArduPilot,
GCS = libraries/GCS_MAVLink/GCS_Common.cpp, RX = PX4 src/modules/mavlink/mavlink_receiver.cpp).
Each encoder returns the keyword arguments of pymavlink's ``<message>_send``; they are pure
functions of a :class:`PositionSample`, so the tests pin every field without a network.

Conventions that hold for all messages:
* positions are the instant ``sample.unix_s`` (capture time, or the send time of a
  prediction), and local-frame messages carry it on the sender's monotonic clock (``usec``),
  which AP's jitter correction (GCS:6753-6768) and PX4's timesync (RX:1312, 1350) map to
  their own clock; the constant part of the latency is the autopilot's delay parameter;
* attitude is never measured here: it is sent as unknown (NaN angles, NaN quaternion, or
  for AP's ODOMETRY, which needs a valid quaternion to rotate the velocity, the identity with
  the largest angle error), never as a perfect "north";
* heading from the frame's telemetry came from the autopilot: echoing it back would make the
  EKF fuse its own yaw, so no yaw field carries it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cvgl_edge.data.geomap import latlon_to_local
from cvgl_edge.localize.position_sample import PositionSample

#: GPS_INPUT_IGNORE_FLAGS (common.xml).
IGNORE_ALT, IGNORE_HDOP, IGNORE_VDOP, IGNORE_VEL_HORIZ = 1, 2, 4, 8
IGNORE_VEL_VERT, IGNORE_SPEED_ACCURACY, IGNORE_HORIZONTAL_ACCURACY, IGNORE_VERTICAL_ACCURACY = 16, 32, 64, 128
GPS_FIX_NONE, GPS_FIX_3D = 1, 3
MAV_FRAME_LOCAL_NED, MAV_FRAME_BODY_FRD, MAV_FRAME_LOCAL_FRD = 1, 12, 20
MAV_ESTIMATOR_TYPE_VISION = 2
#: A drone needs >= 6 satellites for AP's EKF check (AP_NavEKF3_VehicleStatus.cpp:182) and PX4's
#: (gps_checks.cpp:66); with >= 6 AP's noise scaler is 1.0 (AP_NavEKF3_Measurements.cpp:626-632).
#: Retrieval has no satellites: this only keeps the gates on what the accuracy fields carry.
SATELLITES = 10
#: AP ignores a fix whose HDOP is above 2.5 (VehicleStatus.cpp:170) and Copter refuses to arm above
#: GPS_HDOP_GOOD = 1.4 (ArduCopter/AP_Arming.cpp:388-392); HDOP feeds no noise (horiz_accuracy does),
#: and "ignored" leaves it at 65535 (AP_GPS.h:33), failing both. A DOP describes satellite geometry,
#: which retrieval has none of: 1.0 is the neutral value.
HDOP = 1.0
#: AP turns a pose covariance into one error with cbrt(c0^2 + c6^2 + c11^2) (GCS:3897, 3935); the
#: EKF then clamps it to 10 m (AP_NavEKF3_PosVelFusion.cpp:747). Angle error the same way, clamped
#: at 1.5 rad (AP_VisualOdom_MAV.cpp:34): this variance gives more than that, i.e. "unknown".
AP_UNKNOWN_ANGLE_VARIANCE = 4.0
UINT16_UNKNOWN = 65535
_GPS_EPOCH_UNIX = 315_964_800
_GPS_LEAP_SECONDS = 18


@dataclass(frozen=True)
class Origin:
    """The EKF origin the local NED frame of the position messages is relative to."""

    lat: float
    lon: float
    alt_msl_m: float


def gps_week_time(unix_s: float) -> tuple[int, int]:
    """(GPS week, milliseconds into the week) of a UNIX time (leap seconds as of 2017+)."""
    gps = unix_s - _GPS_EPOCH_UNIX + _GPS_LEAP_SECONDS
    week = int(gps // 604_800)
    return week, int(round((gps - week * 604_800) * 1000.0))


def _deg_e7(value: float) -> int:
    return int(round(value * 1e7))


def _has_velocity(sample: PositionSample) -> bool:
    return math.isfinite(sample.v_north) and math.isfinite(sample.v_east) and math.isfinite(sample.sigma_v)


def ned(sample: PositionSample, origin: Origin, ground_msl_m: float) -> tuple[float, float, float]:
    """(north, east, down) metres of the sample from the origin; down from the MSL heights."""
    east, north = latlon_to_local(sample.lat, sample.lon, (origin.lat, origin.lon))
    return float(north), float(east), -(ground_msl_m + sample.height_agl_m - origin.alt_msl_m)


# ----------------------------------------------------------------------------- GPS_INPUT (ArduPilot)
def gps_input(sample: PositionSample | None, ground_msl_m: float) -> dict[str, Any]:
    """ArduPilot's MAVLink GPS (GPS1_TYPE=14), AP_GPS_MAV.cpp handle_msg. ``None``: no fix, still sent
    (a silent GPS is noticed only after 4 s, AP_GPS.cpp:74, 888-899; NO_FIX at once, :67)."""
    if sample is None:
        return dict(time_usec=0, gps_id=0, ignore_flags=0xFF, time_week_ms=0, time_week=0, fix_type=GPS_FIX_NONE,
                    lat=0, lon=0, alt=0.0, hdop=0.0, vdop=0.0, vn=0.0, ve=0.0, vd=0.0, speed_accuracy=0.0,
                    horiz_accuracy=0.0, vert_accuracy=0.0, satellites_visible=0, yaw=0)
    week, week_ms = gps_week_time(sample.unix_s)
    velocity = _has_velocity(sample)
    # VEL_VERT always: retrieval measures no climb, and AP latches have_vertical_velocity once it is
    # given (AP_GPS_MAV.cpp:85-94), so it must never toggle. VERTICAL_ACCURACY: the height comes
    # from telemetry of unknown accuracy (unknown = no vertical check, VehicleStatus.cpp:141-145).
    flags = IGNORE_VDOP | IGNORE_VEL_VERT | IGNORE_VERTICAL_ACCURACY
    if not velocity:  # an ignored velocity keeps the last one (AP_GPS_MAV.cpp:85): send zero, unknown accuracy
        flags |= IGNORE_VEL_HORIZ | IGNORE_SPEED_ACCURACY
    return dict(
        time_usec=int(round(sample.unix_s * 1e6)),   # not read by AP; the capture instant, for logs
        gps_id=0,                                    # must equal the GPS instance: GPS1 (AP_GPS_MAV.cpp:51, 4.6+)
        ignore_flags=flags,
        time_week_ms=week_ms, time_week=week,        # capture instant -> JitterCorrection (AP_GPS_MAV.cpp:120-136)
        fix_type=GPS_FIX_3D,                         # EKF3 needs >= 3D (AP_NavEKF3_Measurements.cpp:555)
        lat=_deg_e7(sample.lat), lon=_deg_e7(sample.lon),
        alt=ground_msl_m + sample.height_agl_m,      # MSL (AP_GPS_MAV.cpp:69-75); the EKF origin height
        hdop=HDOP, vdop=0.0,
        vn=sample.v_north if velocity else 0.0, ve=sample.v_east if velocity else 0.0, vd=0.0,
        speed_accuracy=sample.sigma_v if velocity else 0.0,   # velocity R (PosVelFusion.cpp:728-731)
        horiz_accuracy=sample.sigma_m,               # position R (PosVelFusion.cpp:743-744)
        vert_accuracy=0.0,
        satellites_visible=SATELLITES,
        yaw=0,                                       # 0 = no yaw (AP_GPS_MAV.cpp:63): we measure none
    )


# ----------------------------------------------------------------------------- HIL_GPS (PX4)
def hil_gps(sample: PositionSample | None, ground_msl_m: float) -> dict[str, Any]:
    """PX4's MAVLink GPS: accepted with MAV_USEHILGPS=1 from the autopilot's own system id (RX:367-376),
    handle_message_hil_gps RX:2405-2460. PX4 stamps it at arrival minus EKF2_GPS_DELAY (RX:2457)."""
    if sample is None:
        return dict(time_usec=0, fix_type=GPS_FIX_NONE, lat=0, lon=0, alt=0, eph=UINT16_UNKNOWN,
                    epv=UINT16_UNKNOWN, vel=UINT16_UNKNOWN, vn=0, ve=0, vd=0, cog=UINT16_UNKNOWN,
                    satellites_visible=0, id=0, yaw=0)
    velocity = _has_velocity(sample)
    speed = math.hypot(sample.v_north, sample.v_east) if velocity else math.nan
    cog = (round(math.degrees(math.atan2(sample.v_east, sample.v_north)) * 100) % 36000
           if velocity and speed > 0.5 else UINT16_UNKNOWN)
    return dict(
        time_usec=int(round(sample.unix_s * 1e6)),   # UTC, copied only (RX:2450)
        fix_type=GPS_FIX_3D,                         # fix < 3 fails (gps_checks.cpp:63)
        lat=_deg_e7(sample.lat), lon=_deg_e7(sample.lon),
        alt=int(round((ground_msl_m + sample.height_agl_m) * 1000)),   # mm MSL (RX:2422-2423)
        eph=min(int(round(sample.sigma_m * 100)), UINT16_UNKNOWN - 1),  # cm 1-sigma, read as hacc (RX:2429)
        epv=UINT16_UNKNOWN,                          # unknown vertical accuracy (telemetry height)
        vel=int(round(speed * 100)) if velocity else UINT16_UNKNOWN,
        vn=int(round(sample.v_north * 100)) if velocity else 0,   # cm/s; PX4 fuses it with EKF2_GPS_CTRL bit 2
        ve=int(round(sample.v_east * 100)) if velocity else 0,
        vd=0, cog=cog, satellites_visible=SATELLITES, id=0, yaw=0,
    )


# ----------------------------------------------------------------------------- local-frame messages
def _pose_covariance(sample: PositionSample, autopilot: str) -> list[float]:
    """Upper triangle of the 6x6 pose covariance (x, y, z, roll, pitch, yaw)."""
    cov = [math.nan] * 21
    if autopilot == "ardupilot":
        # cbrt(3 v^2) = sigma  <=>  v = sqrt(sigma^3 / 3) (GCS:3897): AP then uses sigma as the error.
        v = math.sqrt(sample.sigma_m ** 3 / 3.0)
        cov[0] = cov[6] = cov[11] = v
        cov[15] = cov[18] = cov[20] = AP_UNKNOWN_ANGLE_VARIANCE
        for i in (1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 16, 17, 19):
            cov[i] = 0.0
    else:
        # PX4 reads the variances [0], [6], [11] in m^2 (RX:1393-1432) and uses them only when all three
        # are finite (EKF2.cpp:2262-2273): z gets the horizontal variance (EKF2_EV_CTRL bit 1 stays off).
        cov[0] = cov[6] = cov[11] = sample.sigma_m ** 2
    return cov


def vision_position_estimate(sample: PositionSample, origin: Origin, ground_msl_m: float, usec: int,
                             autopilot: str) -> dict[str, Any]:
    """AP: GCS:3844-3851 -> 3913-3940 (x, y, z NED from the EKF origin; NaN attitude: the position is
    used and yaw skipped, AP_NavEKF3_Measurements.cpp:1096-1107). PX4: RX:1304-1339 (always NED)."""
    north, east, down = ned(sample, origin, ground_msl_m)
    return dict(usec=usec, x=north, y=east, z=down, roll=math.nan, pitch=math.nan, yaw=math.nan,
                covariance=_pose_covariance(sample, autopilot),
                reset_counter=sample.reset_counter % 256)   # a change resets the EKF to it (PosVelFusion.cpp:628-635)


def odometry(sample: PositionSample, origin: Origin, ground_msl_m: float, usec: int, autopilot: str) -> dict[str, Any]:
    """AP: GCS handle_odometry 3876-3908 drops anything but frame_id LOCAL_FRD (20) / child BODY_FRD (12),
    uses x, y, z unrotated as NED and rotates the velocity by q: identity q and NED velocity. PX4:
    RX:1342-1553, LOCAL_NED pose and velocity, q[0] = NaN for "no attitude" (RX:1418-1433)."""
    north, east, down = ned(sample, origin, ground_msl_m)
    velocity = _has_velocity(sample)
    nan = math.nan
    if autopilot == "ardupilot":
        frame, child, q = MAV_FRAME_LOCAL_FRD, MAV_FRAME_BODY_FRD, [1.0, 0.0, 0.0, 0.0]
        vz = 0.0   # AP rotates (vx, vy, vz) as one vector: NaN would drop it; VISO_VEL_M_NSE sets its noise
    else:
        frame, child, q = MAV_FRAME_LOCAL_NED, MAV_FRAME_LOCAL_NED, [nan, nan, nan, nan]
        vz = nan   # PX4 takes the velocity only when all three are finite (RX:1438-1482): climb is unmeasured
    vel_cov = [nan] * 21
    if velocity:
        vel_cov[0] = vel_cov[6] = sample.sigma_v ** 2   # PX4 (RX:1487-1512); AP ignores it
    return dict(
        time_usec=usec, frame_id=frame, child_frame_id=child, x=north, y=east, z=down, q=q,
        vx=sample.v_north if velocity else nan, vy=sample.v_east if velocity else nan,
        vz=vz if velocity else nan, rollspeed=nan, pitchspeed=nan, yawspeed=nan,
        pose_covariance=_pose_covariance(sample, autopilot), velocity_covariance=vel_cov,
        reset_counter=sample.reset_counter % 256,
        estimator_type=MAV_ESTIMATOR_TYPE_VISION,   # PX4 rejects GPS/GPS_INS/LIDAR/AUTOPILOT (RX:1528-1552)
        quality=sample.quality)                     # AP: >= VISO_QUAL_MIN (AP_VisualOdom_MAV.cpp:37); 0 unknown


def set_gps_global_origin(origin: Origin, target_system: int, unix_s: float) -> dict[str, Any]:
    """AP: GCS:3790-3806, set once per boot (a later one is ignored, :3773-3776). PX4: RX:1264-1286,
    only when target_system is its MAV_SYS_ID (:1269). Altitude in mm MSL."""
    return dict(target_system=target_system, latitude=_deg_e7(origin.lat), longitude=_deg_e7(origin.lon),
                altitude=int(round(origin.alt_msl_m * 1000)), time_usec=int(round(unix_s * 1e6)))


@dataclass(frozen=True)
class GpsMessage:
    """A GPS-like message: its encoder, and whether the autopilot times it by its arrival (then the
    position is dead-reckoned to the send instant, so the age it has on arrival is the link's only)."""

    encode: Callable[[PositionSample | None, float], dict[str, Any]]
    stamped_at_arrival: bool


#: The messages carrying a position, by option name; local-frame ones take the origin and a time stamp.
GPS_MESSAGES = {"gps_input": GpsMessage(gps_input, stamped_at_arrival=False),   # week time (AP_GPS_MAV.cpp:120)
                "hil_gps": GpsMessage(hil_gps, stamped_at_arrival=True)}         # hrt_absolute_time (RX:2457)
LOCAL_MESSAGES = {"vision_position_estimate": vision_position_estimate, "odometry": odometry}

"""The autopilots cvgl-edge feeds, and what each one accepts (``--autopilot ardupilot|px4``).

Why profiles: the two autopilots read the same MAVLink messages differently (read in
ArduPilot Copter-4.6.3 and PX4 v1.16.0; field-by-field citations in mavlink_fields.py):
ArduPilot fuses GPS_INPUT as a GPS (GPS1_TYPE=14) and takes ODOMETRY only in its FRD frames,
PX4 has no GPS_INPUT handler at all (its MAVLink GPS is HIL_GPS) and takes ODOMETRY in NED.
One table per autopilot decides which messages may be chosen and which is the default.
"""

from __future__ import annotations

from dataclasses import dataclass

from cvgl_edge.errors import CvglError

#: MAVLink ids (common.xml / minimal.xml).
MAV_AUTOPILOT_ARDUPILOTMEGA, MAV_AUTOPILOT_PX4 = 3, 12
MAV_TYPE_GCS, MAV_TYPE_ONBOARD_CONTROLLER = 6, 18
#: Messages that position the vehicle in a local NED frame: they need the EKF origin.
LOCAL_FRAME_MESSAGES = ("vision_position_estimate", "odometry")


@dataclass(frozen=True)
class AutopilotProfile:
    """What one autopilot accepts; ``messages[0]`` is the default."""

    name: str
    heartbeat_autopilot: int
    messages: tuple[str, ...]
    refused: dict[str, str]      # message -> why it cannot be used with this autopilot
    min_rate_hz: float           # below this the autopilot marks the source unhealthy
    max_rate_hz: float           # above this it drops samples

    def check_messages(self, messages: tuple[str, ...]) -> tuple[str, ...]:
        """The chosen messages, or CvglError naming the first one this autopilot cannot use."""
        for message in messages:
            if message in self.refused:
                raise CvglError(f"--autopilot {self.name}: {message} {self.refused[message]}")
            if message not in self.messages:
                raise CvglError(f"unknown MAVLink message {message!r} for --autopilot {self.name}; "
                                f"choose from {', '.join(self.messages)}")
        if not messages:
            raise CvglError("--mavlink-messages names no message")
        return messages

    def is_autopilot_heartbeat(self, autopilot: int, vehicle_type: int) -> bool:
        """A heartbeat from this autopilot's flight controller (not a ground station or a companion)."""
        return autopilot == self.heartbeat_autopilot and vehicle_type not in (MAV_TYPE_GCS, MAV_TYPE_ONBOARD_CONTROLLER)


PROFILES = {
    "ardupilot": AutopilotProfile(
        name="ardupilot", heartbeat_autopilot=MAV_AUTOPILOT_ARDUPILOTMEGA,
        messages=("gps_input", "vision_position_estimate", "odometry"),
        refused={"hil_gps": "is compiled out of ArduPilot 4.6 (GCS_config.h:74-80 AP_MAVLINK_MSG_HIL_GPS_ENABLED 0); "
                            "use gps_input"},
        # AP_GPS.cpp:958-967, 1780-1788: average interval < 215 ms or the GPS is unhealthy;
        # AP_NavEKF3.h:495 extNavIntervalMin_ms = 20: faster external-nav samples are dropped.
        min_rate_hz=5.0, max_rate_hz=20.0),
    "px4": AutopilotProfile(
        name="px4", heartbeat_autopilot=MAV_AUTOPILOT_PX4,
        messages=("odometry", "vision_position_estimate", "hil_gps"),
        refused={"gps_input": "has no handler in PX4 (mavlink_receiver.cpp has no GPS_INPUT case, 1.14 to 1.16); "
                              "use odometry (external vision) or hil_gps (MAV_USEHILGPS=1)"},
        # EKF/common.h:71-72 EV_MAX_INTERVAL: external vision starts only with samples < 200 ms apart;
        # estimator_interface.cpp:386-398 drops "EV data too fast".
        min_rate_hz=6.0, max_rate_hz=20.0),
}


@dataclass(frozen=True)
class Parameter:
    """One autopilot parameter the MAVLink output needs, and why (with the code that reads it)."""

    name: str
    value: float
    why: str


#: What each autopilot must be set to for a group of messages (README: "Autopilot parameters";
#: `cvgl-edge autopilot-params` prints them in the autopilot's parameter-file format).
PARAMETERS: dict[tuple[str, str], tuple[Parameter, ...]] = {
    ("ardupilot", "gps_input"): (
        Parameter("GPS1_TYPE", 14, "MAVLink GPS driver; never auto-detected (AP_GPS.cpp:641-646); GPS_TYPE before 4.6"),
        Parameter("GPS1_DELAY_MS", 1, "positions carry their capture time (week time, jitter-corrected): only the link's "
                                      "delay is left; 0 would mean the driver's 200 ms (GPS_Backend.h:88)"),
        Parameter("EK3_SRC1_POSXY", 3, "GPS position"),
        Parameter("EK3_SRC1_VELXY", 3, "GPS velocity, weighted by the speed accuracy sent (PosVelFusion.cpp:728-731)"),
        Parameter("EK3_SRC1_POSZ", 1, "barometer: the image gives no height"),
        Parameter("EK3_SRC1_VELZ", 0, "no climb rate is measured (VEL_VERT is always ignored)"),
        Parameter("EK3_SRC1_YAW", 1, "compass: no yaw is sent (GPS_INPUT yaw 0)"),
        Parameter("EK3_GPS_CHECK", 19, "keep satellites (1), HDOP (2), yaw (16); drop speed (4) and position accuracy (8): "
                                       "retrieval's honest accuracy (~20 m, ~2 m/s) exceeds the 5 m / 1 m/s alignment "
                                       "gates (AP_NavEKF3_VehicleStatus.cpp:124, 157)"),
    ),
    ("ardupilot", "local"): (
        Parameter("VISO_TYPE", 1, "MAVLink external navigation (AP_VisualOdom.cpp:139-142); reboot after setting"),
        Parameter("VISO_DELAY_MS", 10, "positions carry their capture time (jitter-corrected, GCS_Common.cpp:6753): "
                                       "only the link's delay is left"),
        Parameter("VISO_POS_M_NSE", 5, "floor of the position error; the sent sigma wins above it, and EKF3 caps it "
                                       "at 10 m (PosVelFusion.cpp:747)"),
        Parameter("VISO_VEL_M_NSE", 5, "ODOMETRY's velocity noise when fused (its covariance is ignored, "
                                       "AP_VisualOdom_MAV.cpp:70): the loop's velocity sigma is ~5 m/s"),
        Parameter("EK3_SRC1_POSXY", 6, "external navigation position"),
        Parameter("EK3_SRC1_VELXY", 0, "retrieval's velocity (median error 4 m/s) would not help; 6 fuses "
                                       "ODOMETRY's NED velocity at VISO_VEL_M_NSE"),
        Parameter("EK3_SRC1_POSZ", 1, "barometer: the image gives no height"),
        Parameter("EK3_SRC1_VELZ", 0, "no climb rate is measured"),
        Parameter("EK3_SRC1_YAW", 1, "compass; never 6: no attitude is measured (ODOMETRY's identity quaternion "
                                     "would be fused as north, MagFusion.cpp:366-375)"),
    ),
    ("px4", "local"): (
        Parameter("EKF2_EV_CTRL", 1, "horizontal position only (bit 0): no height, no velocity (no climb rate, so PX4 "
                                     "drops ODOMETRY's velocity), no yaw; v1.16 defaults to 0 = off"),
        Parameter("EKF2_EV_NOISE_MD", 0, "use the variances sent (EKF2.cpp:2262-2273)"),
        Parameter("EKF2_EVP_NOISE", 1, "floor of the position sigma (m)"),
        Parameter("EKF2_EV_QMIN", 0, "VISION_POSITION_ESTIMATE has no quality field (mavlink_receiver.cpp:1310)"),
        Parameter("EKF2_EV_DELAY", 0, "time stamps are the capture time, mapped to PX4's clock by timesync (the link "
                                      "must be in Onboard or External Vision mode for PX4 to send TIMESYNC)"),
        Parameter("EKF2_HGT_REF", 0, "barometer height"),
        Parameter("EKF2_GPS_CTRL", 0, "when the vehicle has no GNSS at all (else keep it for when GNSS returns)"),
    ),
    ("px4", "hil_gps"): (
        Parameter("MAV_USEHILGPS", 1, "take HIL_GPS outside HIL mode, from the vehicle's own system id (mavlink_receiver.cpp:367-376): "
                                      "--mavlink-sysid must equal MAV_SYS_ID"),
        Parameter("EKF2_GPS_CTRL", 7, "position, height and velocity"),
        Parameter("EKF2_GPS_DELAY", 0, "PX4 times HIL_GPS at arrival; the sink dead-reckons it to the send instant"),
        Parameter("EKF2_REQ_EPH", 100, "PX4 drops every sample above it, in flight too (gps_control.cpp:66-86); "
                                       "retrieval's sigma is ~20 m (the default 3 m drops them all)"),
        Parameter("EKF2_GPS_CHECK", 535, "keep satellites (1), PDOP (2), horizontal accuracy (4), speed accuracy (16), "
                                         "spoofing (512); drop vertical accuracy (8: unknown, sent as 65535) and the "
                                         "on-ground drift checks (32-256: retrieval jitters at rest)"),
        Parameter("EKF2_HGT_REF", 0, "barometer height"),
    ),
}


def parameters_for(chosen: AutopilotProfile, messages: tuple[str, ...]) -> tuple[Parameter, ...]:
    """The parameter set for the messages sent (local-frame messages share one set)."""
    groups = {"local" if m in LOCAL_FRAME_MESSAGES else m for m in messages}
    found: dict[str, Parameter] = {}
    for group in sorted(groups):
        for parameter in PARAMETERS[(chosen.name, group)]:
            found.setdefault(parameter.name, parameter)
    return tuple(found.values())


def profile(name: str) -> AutopilotProfile:
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise CvglError(f"unknown --autopilot {name!r}; choose {', '.join(PROFILES)}") from None


def parse_messages(text: str | None, chosen: AutopilotProfile) -> tuple[str, ...]:
    """``--mavlink-messages`` ("a,b"; empty or None: the profile's default) checked against the profile."""
    if not text:
        return chosen.messages[:1]
    return chosen.check_messages(tuple(m.strip().lower() for m in text.split(",") if m.strip()))

"""MAVLink output that ArduPilot and PX4 fuse: every field per profile, then end to end.

Field tests pin what each autopilot's handling code reads (mavlink_fields.py cites the lines).
The end-to-end tests send real bytes over UDP to a simulated flight controller
(tests/support/autopilot_sim.py: the autopilots' acceptance rules, decoded by pymavlink) and stream the
demo mission's flight through it: under the documented parameters every position is fused and
lands where the loop put it; without them the autopilot rejects it, as the real one would.
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import replace

import numpy as np
import pytest

from tests.support.autopilot_sim import AutopilotPeer, SimulatedAutopilot, documented
from cvgl_edge.errors import CvglError
from cvgl_edge.localize.autopilot import PARAMETERS, parameters_for, parse_messages, profile
from cvgl_edge.localize.run import MavlinkRequest
from cvgl_edge.data.geomap import latlon_to_local
from cvgl_edge.localize.mavlink_fields import (
    IGNORE_ALT, IGNORE_HDOP, IGNORE_SPEED_ACCURACY, IGNORE_VEL_HORIZ, IGNORE_VEL_VERT, IGNORE_VERTICAL_ACCURACY,
    Origin, gps_input, gps_week_time, hil_gps, odometry, set_gps_global_origin, vision_position_estimate,
)
from cvgl_edge.localize.mavlink_sink import MavlinkSettings, MavlinkSink, check_mavlink_url
from cvgl_edge.localize.position_sample import PositionSample, sample_from_record

ORIGIN = (47.37, 8.54)
GROUND = 408.0                       # m above mean sea level
SAMPLE = PositionSample(lat=47.3712345, lon=8.5423456, sigma_m=18.0, v_north=-1.0, v_east=3.0, sigma_v=4.0,
                        height_agl_m=120.0, unix_s=1_700_000_000.25, reset_counter=2, quality=80)
NO_VELOCITY = replace(SAMPLE, v_north=math.nan, v_east=math.nan, sigma_v=math.nan)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ardupilot_error(cov: list[float]) -> float:
    """ArduPilot's reading of a pose covariance (GCS_Common.cpp:3897)."""
    return math.cbrt(cov[0] ** 2 + cov[6] ** 2 + cov[11] ** 2)


# ----------------------------------------------------------------------------- the loop record -> sample
def test_a_sample_is_the_records_capture_time_position_and_its_track():
    record = {"status": "fix", "lat": 47.1, "lon": 8.2, "sigma_m": 12.5, "v_north": 1.0, "v_east": -2.0,
              "sigma_v_mps": 3.0, "altitude_m": 90.0, "captured_unix": 1000.5, "wall_time": 1001.0, "track": 3,
              "confidence": 0.42}
    sample = sample_from_record(record)
    assert (sample.lat, sample.lon, sample.sigma_m, sample.height_agl_m, sample.unix_s) == (47.1, 8.2, 12.5, 90.0, 1000.5)
    assert sample.reset_counter == 2 and sample.quality == 42        # the third track: two resets before it
    assert sample_from_record({**record, "status": "no_fix"}) is None
    assert sample_from_record({**record, "altitude_m": None}) is None   # no 3-D position without a height


def test_a_prediction_moves_with_the_velocity_and_grows_its_sigma():
    later = SAMPLE.propagated(SAMPLE.unix_s + 2.0)
    east, north = latlon_to_local(later.lat, later.lon, (SAMPLE.lat, SAMPLE.lon))
    assert north == pytest.approx(-2.0, abs=0.01) and east == pytest.approx(6.0, abs=0.01)
    assert later.sigma_m == pytest.approx(math.hypot(18.0, 8.0)) and later.unix_s == SAMPLE.unix_s + 2.0
    assert NO_VELOCITY.propagated(SAMPLE.unix_s + 2.0).lat == SAMPLE.lat


# ----------------------------------------------------------------------------- GPS_INPUT (ArduPilot)
def test_gps_input_is_a_3d_msl_fix_at_capture_time_with_honest_accuracy():
    f = gps_input(SAMPLE, GROUND)
    assert f["gps_id"] == 0 and f["fix_type"] == 3
    assert (f["lat"], f["lon"]) == (round(47.3712345e7), round(8.5423456e7))
    assert f["alt"] == pytest.approx(GROUND + 120.0)                        # MSL, not above ground
    assert (f["time_week"], f["time_week_ms"]) == gps_week_time(SAMPLE.unix_s)
    assert f["horiz_accuracy"] == 18.0 and f["speed_accuracy"] == 4.0
    assert (f["vn"], f["ve"], f["vd"]) == (-1.0, 3.0, 0.0)
    assert f["hdop"] == 1.0 and f["satellites_visible"] >= 6
    assert f["yaw"] == 0                                                    # no yaw, never the frame's heading
    flags = f["ignore_flags"]
    assert not flags & (IGNORE_ALT | IGNORE_HDOP | IGNORE_VEL_HORIZ | IGNORE_SPEED_ACCURACY)
    assert flags & IGNORE_VEL_VERT and flags & IGNORE_VERTICAL_ACCURACY


def test_gps_input_without_velocity_flags_it_and_without_fix_says_no_fix():
    f = gps_input(NO_VELOCITY, GROUND)
    assert f["ignore_flags"] & IGNORE_VEL_HORIZ and f["ignore_flags"] & IGNORE_SPEED_ACCURACY
    assert f["ignore_flags"] & IGNORE_VEL_VERT                              # never toggles
    none = gps_input(None, GROUND)
    assert none["fix_type"] == 1 and none["satellites_visible"] == 0


# ----------------------------------------------------------------------------- HIL_GPS (PX4)
def test_hil_gps_uses_px4s_units():
    f = hil_gps(SAMPLE, GROUND)
    assert f["fix_type"] == 3 and f["alt"] == round((GROUND + 120.0) * 1000)     # mm MSL
    assert f["eph"] == 1800 and f["epv"] == 65535                               # cm; vertical unknown
    assert (f["vn"], f["ve"], f["vd"]) == (-100, 300, 0) and f["vel"] == round(math.hypot(1, 3) * 100)
    assert f["cog"] == round(math.degrees(math.atan2(3.0, -1.0)) * 100) % 36000
    assert hil_gps(None, GROUND)["fix_type"] == 1


# ----------------------------------------------------------------------------- local-frame messages
@pytest.mark.parametrize("autopilot", ["ardupilot", "px4"])
def test_vision_position_estimate_is_ned_from_the_origin_with_unknown_attitude(autopilot):
    origin = Origin(ORIGIN[0], ORIGIN[1], GROUND)
    f = vision_position_estimate(SAMPLE, origin, GROUND, usec=123, autopilot=autopilot)
    east, north = latlon_to_local(SAMPLE.lat, SAMPLE.lon, ORIGIN)
    assert (f["x"], f["y"]) == pytest.approx((float(north), float(east))) and f["z"] == pytest.approx(-120.0)
    assert math.isnan(f["roll"]) and math.isnan(f["pitch"]) and math.isnan(f["yaw"])
    assert f["usec"] == 123 and f["reset_counter"] == 2
    cov = f["covariance"]
    if autopilot == "ardupilot":
        assert _ardupilot_error(cov) == pytest.approx(18.0)
    else:
        assert cov[0] == cov[6] == cov[11] == pytest.approx(18.0 ** 2)


def test_odometry_for_ardupilot_is_in_its_frd_frames_with_ned_velocity_and_no_attitude():
    f = odometry(SAMPLE, Origin(ORIGIN[0], ORIGIN[1], GROUND), GROUND, usec=5, autopilot="ardupilot")
    assert (f["frame_id"], f["child_frame_id"]) == (20, 12)                 # else dropped (GCS_Common.cpp:3886)
    assert f["q"] == [1.0, 0.0, 0.0, 0.0]                                   # identity: velocity stays NED
    assert (f["vx"], f["vy"], f["vz"]) == (-1.0, 3.0, 0.0)
    assert _ardupilot_error(f["pose_covariance"]) == pytest.approx(18.0)
    angle = math.cbrt(sum(f["pose_covariance"][i] ** 2 for i in (15, 18, 20)))
    assert angle > 1.5                                                      # beyond AP's clamp: "unknown"
    assert f["estimator_type"] == 2 and f["quality"] == 80 and f["reset_counter"] == 2


def test_odometry_for_px4_is_ned_with_nan_attitude_and_no_made_up_climb():
    f = odometry(SAMPLE, Origin(ORIGIN[0], ORIGIN[1], GROUND), GROUND, usec=5, autopilot="px4")
    assert (f["frame_id"], f["child_frame_id"]) == (1, 1)
    assert all(math.isnan(v) for v in f["q"]) and math.isnan(f["vz"])
    assert f["pose_covariance"][0] == pytest.approx(324.0) and math.isnan(f["pose_covariance"][15])
    assert f["estimator_type"] == 2


def test_set_gps_global_origin_is_msl_millimetres_for_the_vehicle():
    f = set_gps_global_origin(Origin(47.37, 8.54, GROUND), target_system=7, unix_s=10.0)
    assert f == dict(target_system=7, latitude=473700000, longitude=85400000, altitude=408000, time_usec=10_000_000)


# ----------------------------------------------------------------------------- profiles and options
def test_each_autopilot_refuses_the_message_it_does_not_handle():
    assert parse_messages(None, profile("ardupilot")) == ("gps_input",)
    assert parse_messages("", profile("px4")) == ("odometry",)
    with pytest.raises(CvglError, match="gps_input has no handler in PX4"):
        parse_messages("gps_input", profile("px4"))
    with pytest.raises(CvglError, match="hil_gps is compiled out of ArduPilot"):
        parse_messages("hil_gps", profile("ardupilot"))
    with pytest.raises(CvglError, match="unknown MAVLink message 'gps'"):
        parse_messages("gps", profile("ardupilot"))
    with pytest.raises(CvglError, match="unknown --autopilot 'inav'"):
        profile("inav")


def test_the_documented_parameters_cover_every_message_group():
    for chosen in ("ardupilot", "px4"):
        for message in profile(chosen).messages:
            names = [p.name for p in parameters_for(profile(chosen), (message,))]
            assert names and len(names) == len(set(names))
    assert {("ardupilot", "gps_input"), ("ardupilot", "local"), ("px4", "local"), ("px4", "hil_gps")} == set(PARAMETERS)


@pytest.mark.parametrize("change, message", [
    (dict(rate_hz=4.0), "needs 5 to 20 Hz"),
    (dict(rate_hz=50.0), "needs 5 to 20 Hz"),
    (dict(system_id=0), "1..255"),
    (dict(ground_msl_m=math.nan), "--ground-elevation"),
])
def test_bad_link_settings_are_one_line_errors(change, message):
    settings = MavlinkSettings(url="udpout:127.0.0.1:14550", autopilot=profile("ardupilot"), messages=("gps_input",),
                               map_origin=ORIGIN, ground_msl_m=GROUND)
    with pytest.raises(CvglError, match=message):
        replace(settings, **change).check()


def test_px4_needs_more_than_5_hz_because_its_external_vision_wants_gaps_under_200_ms():
    settings = MavlinkSettings(url="udpout:127.0.0.1:14550", autopilot=profile("px4"), messages=("odometry",),
                               map_origin=ORIGIN, ground_msl_m=GROUND, rate_hz=5.0)
    with pytest.raises(CvglError, match="px4 needs 6 to 20 Hz"):
        settings.check()
    replace(settings, rate_hz=10.0).check()


def test_the_command_needs_ground_elevation_and_a_height_before_any_work():
    with pytest.raises(CvglError, match="--mavlink needs --ground-elevation"):
        MavlinkRequest(url="udpout:127.0.0.1:14550").check("video.mp4", 120.0)
    with pytest.raises(CvglError, match="--mavlink needs --altitude"):
        MavlinkRequest(url="udpout:127.0.0.1:14550", ground_msl_m=GROUND).check("video.mp4", None)
    MavlinkRequest(url="udpout:127.0.0.1:14550", ground_msl_m=GROUND).check("synthetic", None)   # telemetry has it


def test_bad_mavlink_urls_are_one_line_errors(tmp_path):
    with pytest.raises(CvglError, match="unknown host"):
        check_mavlink_url("udpout:no-such-host.invalid:14550")
    with pytest.raises(CvglError, match="HOST:PORT"):
        check_mavlink_url("udpout:127.0.0.1")
    with pytest.raises(CvglError, match="no serial device"):
        check_mavlink_url(str(tmp_path / "ttyUSB9"))
    with pytest.raises(CvglError, match="unknown MAVLink URL"):
        check_mavlink_url("http://x")
    port = _free_port()
    with pytest.raises(CvglError, match="cannot open MAVLink URL"):
        MavlinkSink(_settings(f"tcp:127.0.0.1:{port}"))          # nothing listens there


def test_gps_week_time():
    week, ms = gps_week_time(1_700_000_000.0)   # 2023-11-14T22:13:20Z
    assert week == 2288 and ms == 252_818_000


# ----------------------------------------------------------------------------- end to end
def _settings(url: str, autopilot: str = "ardupilot", messages: tuple[str, ...] | None = None,
              **kw) -> MavlinkSettings:
    chosen = profile(autopilot)
    return MavlinkSettings(url=url, autopilot=chosen, messages=messages or chosen.messages[:1], map_origin=ORIGIN,
                           ground_msl_m=GROUND, **kw)


@pytest.fixture(scope="module")
def demo_flight():
    """The demo mission's flight (150 frames, 30 s) as loop records: truth plus 15 m of noise, a track
    lost and re-acquired in the middle, altitude from telemetry."""
    from cvgl_edge.demo.settings import DemoSettings
    from cvgl_edge.data.mission import SyntheticMission

    mission = SyntheticMission(DemoSettings(out="unused").mission_spec())
    rng = np.random.default_rng(4)
    base = time.time()
    records = []
    for i in range(len(mission)):
        st = mission.state(i)
        lost = 70 <= i < 75
        north, east = rng.normal(0, 15, 2)
        lat = st.view_lat + north / 111_320.0
        lon = st.view_lon + east / (111_320.0 * math.cos(math.radians(st.view_lat)))
        records.append({"frame": i, "status": "no_fix" if lost else "fix", "lat": None if lost else lat,
                        "lon": None if lost else lon, "sigma_m": 15.0, "v_north": 3.0, "v_east": 11.0,
                        "sigma_v_mps": 5.0, "altitude_m": st.altitude_m, "captured_unix": base + st.t,
                        "track": 1 if i < 70 else 2, "confidence": 0.7})
    return records


def _stream(records, sink, hz: float = 40.0) -> None:
    """The records at ``hz`` (faster than the flight: the capture clock runs ahead of the wall clock)."""
    offset = time.time() - records[0]["captured_unix"]
    for record in records:
        sink.emit({**record, "captured_unix": record["captured_unix"] + offset})
        time.sleep(1.0 / hz)


def _fly(records, autopilot, messages, params, *, preset_origin=None, sysid=1, **kw):
    port = _free_port()
    sim = SimulatedAutopilot(autopilot, params, origin=preset_origin)
    peer = AutopilotPeer(sim, port)
    sink = MavlinkSink(_settings(f"udpout:127.0.0.1:{port}", autopilot, messages, rate_hz=20.0, system_id=sysid,
                                 wait_heartbeat_s=5.0, **kw))
    try:
        time.sleep(0.3)           # origin handshake (local-frame messages wait for it)
        _stream(records, sink)
        time.sleep(0.3)
    finally:
        sink.close()
        peer.close()
    return sim, sink, peer


def _assert_fused_where_the_loop_put_them(sim, records, tolerance_m=0.05):
    fixes = {(round(r["lat"], 7), round(r["lon"], 7)) for r in records if r["lat"] is not None}
    assert sim.fused
    for fused in sim.fused:
        # the nearest loop fix: every fused position must be one of them (not offset, not dead-reckoned away)
        best = min(fixes, key=lambda f: (f[0] - fused.lat) ** 2 + ((f[1] - fused.lon) * 0.68) ** 2)
        east, north = latlon_to_local(fused.lat, fused.lon, best)
        assert math.hypot(float(east), float(north)) < tolerance_m, (fused, best)


def test_ardupilot_fuses_the_demo_flight_as_a_gps_under_the_documented_parameters(demo_flight):
    sim, sink, peer = _fly(demo_flight, "ardupilot", ("gps_input",), documented("ardupilot", "gps_input"))
    assert not sim.rejected, sim.rejected
    assert sim.aligned_at is not None                     # 10 s of passing checks, on the capture clock
    assert len(sim.fused) > 50 and sim.yaw_fused == 0
    _assert_fused_where_the_loop_put_them(sim, demo_flight)
    heights = [r["altitude_m"] for r in demo_flight]
    assert GROUND + min(heights) - 0.5 <= sim.origin[2] <= GROUND + max(heights) + 0.5   # an MSL origin
    assert sim.no_fix > 0                                 # the lost stretch was said, not silent


def test_ardupilot_with_its_default_gps_checks_never_aligns_on_retrieval_accuracy(demo_flight):
    params = {**documented("ardupilot", "gps_input"), "EK3_GPS_CHECK": 31}
    sim, *_ = _fly(demo_flight[:60], "ardupilot", ("gps_input",), params)
    assert sim.aligned_at is None and any("position accuracy" in k for k in sim.rejected)


@pytest.mark.parametrize("messages", [("vision_position_estimate",), ("odometry",)])
def test_ardupilot_fuses_external_navigation_relative_to_its_own_origin(demo_flight, messages):
    # The EKF got its origin from a real GPS at boot, 600 m from the map centre: ArduPilot keeps it
    # (SET_GPS_GLOBAL_ORIGIN is ignored), so the sink must express positions from that origin.
    boot = (ORIGIN[0] + 0.004, ORIGIN[1] - 0.005, GROUND + 2.0)
    sim, sink, _ = _fly(demo_flight, "ardupilot", messages, documented("ardupilot", "local"), preset_origin=boot)
    assert sim.origin == boot and sink.state.origin is not None
    assert not sim.rejected, sim.rejected
    _assert_fused_where_the_loop_put_them(sim, demo_flight)
    assert sim.resets == 1                                # the re-acquisition reset the EKF to it
    assert all(f.sigma_m == pytest.approx(10.0) for f in sim.fused)   # 15 m, capped at 10 m by EKF3
    assert sim.yaw_fused == 0


@pytest.mark.parametrize("messages", [("odometry",), ("vision_position_estimate",)])
def test_px4_fuses_external_vision_once_it_has_our_origin(demo_flight, messages):
    sim, sink, _ = _fly(demo_flight, "px4", messages, documented("px4", "local"))
    assert sim.origin == pytest.approx((ORIGIN[0], ORIGIN[1], GROUND))   # set: target_system was PX4's
    assert not sim.rejected, sim.rejected
    _assert_fused_where_the_loop_put_them(sim, demo_flight)
    assert sim.resets == 1 and sim.yaw_fused == 0
    assert all(f.sigma_m == pytest.approx(15.0) for f in sim.fused)
    assert sim.timesync_replies > 0 and sink.state.timesync_replies > 0
    assert sim.ev_waiting <= 1                            # started on the second sample, never timed out


def test_px4_fuses_hil_gps_from_its_own_system_id_only(demo_flight):
    params = documented("px4", "hil_gps")
    sim, *_ = _fly(demo_flight, "px4", ("hil_gps",), params)
    assert not sim.rejected and len(sim.fused) > 50
    _assert_fused_where_the_loop_put_them(sim, demo_flight, tolerance_m=20.0)   # dead-reckoned to the send instant
    stranger, *_ = _fly(demo_flight[:20], "px4", ("hil_gps",), params, sysid=42)
    assert not stranger.fused and stranger.rejected


def test_px4_with_v116_defaults_fuses_no_external_vision(demo_flight):
    sim, *_ = _fly(demo_flight[:40], "px4", ("odometry",), {})            # EKF2_EV_CTRL defaults to 0 in 1.16
    assert not sim.fused and any("EKF2_EV_CTRL" in k for k in sim.rejected)


def test_without_a_fix_gps_input_keeps_coming_as_no_fix_at_the_rate():
    port = _free_port()
    sim = SimulatedAutopilot("ardupilot", documented("ardupilot", "gps_input"))
    peer = AutopilotPeer(sim, port)
    sink = MavlinkSink(_settings(f"udpout:127.0.0.1:{port}", rate_hz=5.0))
    try:
        sink.emit({"status": "no_fix", "lat": None, "lon": None})
        time.sleep(1.5)
    finally:
        sink.close()
        peer.close()
    assert sim.no_fix >= 6 and not sim.fused              # ~5 Hz of NO_FIX, not silence


def test_a_slow_models_fix_is_repeated_as_a_prediction_not_dropped_as_stale():
    """geossm-small on a CPU hands a fix over ~1 s after its capture: staleness counts from the handover."""
    port = _free_port()
    sim = SimulatedAutopilot("ardupilot", documented("ardupilot", "gps_input"))
    peer = AutopilotPeer(sim, port)
    sink = MavlinkSink(_settings(f"udpout:127.0.0.1:{port}", rate_hz=10.0))
    record = {"status": "fix", "lat": 47.371, "lon": 8.542, "sigma_m": 20.0, "v_north": 1.0, "v_east": 0.0,
              "sigma_v_mps": 5.0, "altitude_m": 100.0, "captured_unix": time.time() - 1.5, "track": 1,
              "confidence": 0.6}
    try:
        sink.emit(record)
        time.sleep(0.2)
        before_no_fix, before = sim.no_fix, peer.received["GPS_INPUT"]
        time.sleep(0.6)
        assert sim.no_fix == before_no_fix and peer.received["GPS_INPUT"] - before >= 4
    finally:
        sink.close()
        peer.close()


def test_mavlink_wait_wants_the_chosen_autopilots_heartbeat():
    port = _free_port()
    gcs = AutopilotPeer(SimulatedAutopilot("ardupilot", {}), port, heartbeat_autopilot=8, vehicle_type=6)
    try:
        with pytest.raises(CvglError, match="no ardupilot heartbeat"):
            MavlinkSink(_settings(f"udpout:127.0.0.1:{port}", wait_heartbeat_s=1.0))
    finally:
        gcs.close()
    port = _free_port()
    px4 = AutopilotPeer(SimulatedAutopilot("px4", {}), port)
    try:
        with pytest.raises(CvglError, match="autopilot type 12: is it the other --autopilot"):
            MavlinkSink(_settings(f"udpout:127.0.0.1:{port}", wait_heartbeat_s=1.0))
    finally:
        px4.close()


def test_a_serial_link_works_out_of_the_box():
    """The README's own example is a serial device (the autopilot's telemetry port): pyserial is a dependency."""
    import os
    import select

    from tests.support.autopilot_sim import mavutil

    master, slave = os.openpty()
    sink = MavlinkSink(_settings(f"{os.ttyname(slave)},115200"))
    parser = mavutil.mavlink.MAVLink(None)
    parser.robust_parsing = True
    kinds = set()
    try:
        deadline = time.monotonic() + 3
        while "GPS_INPUT" not in kinds and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                for msg in parser.parse_buffer(os.read(master, 4096)) or []:
                    kinds.add(msg.get_type())
    finally:
        sink.close()
        os.close(master)
        os.close(slave)
    assert {"HEARTBEAT", "GPS_INPUT"} <= kinds

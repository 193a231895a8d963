"""MAVLink sink end to end: a real pymavlink receiver on loopback decodes what the sink sends."""

from __future__ import annotations

import math
import socket
import time

import pytest

from cvgl_edge.errors import CvglError
from cvgl_edge.localize.sinks import MavlinkSink, check_mavlink_url, gps_week_time

ORIGIN = (47.37, 8.54)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fix(lat=47.3712345, lon=8.5423456):
    return {"status": "fix", "lat": lat, "lon": lon, "v_east": 3.0, "v_north": -1.0, "sigma_m": 12.0,
            "confidence": 0.8, "altitude_m": 120.0, "heading_deg": 90.0}


def _receiver(port):
    from cvgl_edge.localize.sinks import _mavutil

    mavutil = _mavutil()
    return mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=255)


def test_gps_input_and_vision_estimate_reach_a_receiver():
    port = _free_port()
    rx = _receiver(port)
    sink = MavlinkSink(f"udpout:127.0.0.1:{port}", ORIGIN, messages=("gps_input", "vision_position_estimate",
                                                                    "odometry"), rate_hz=5.0, stale_s=3.0)
    try:
        sink.emit(_fix())
        gps = rx.recv_match(type="GPS_INPUT", blocking=True, timeout=3)
        assert gps is not None
        assert gps.lat == round(47.3712345 * 1e7) and gps.lon == round(8.5423456 * 1e7)
        assert gps.fix_type == 3 and gps.alt == pytest.approx(120.0) and gps.horiz_accuracy == pytest.approx(12.0)
        assert gps.vn == pytest.approx(-1.0) and gps.ve == pytest.approx(3.0) and gps.yaw == 9000
        assert gps.ignore_flags & 1 == 0                             # altitude is given
        vis = rx.recv_match(type="VISION_POSITION_ESTIMATE", blocking=True, timeout=3)
        assert vis.x == pytest.approx((47.3712345 - 47.37) * 111_320.0, abs=0.5)        # north
        assert vis.y == pytest.approx(0.0023456 * 111_320.0 * math.cos(math.radians(47.37)), abs=0.5)
        assert vis.z == pytest.approx(-120.0) and vis.yaw == pytest.approx(math.pi / 2)
        odo = rx.recv_match(type="ODOMETRY", blocking=True, timeout=3)
        assert odo.x == pytest.approx(vis.x, abs=1e-3) and odo.quality == 80
        # The loop falls silent (a slow frame): the sink keeps sending at >= 4 Hz.
        start, count = time.monotonic(), 0
        while time.monotonic() - start < 1.5:
            if rx.recv_match(type="GPS_INPUT", blocking=True, timeout=0.5) is not None:
                count += 1
        assert count / 1.5 >= 4.0
        hb = rx.recv_match(type="HEARTBEAT", blocking=True, timeout=2)
        assert hb is not None and hb.get_srcComponent() == 197
        # "No fix": the repeats stop.
        sink.emit({"status": "no_fix", "lat": None, "lon": None})
        time.sleep(0.3)
        while rx.recv_match(type="GPS_INPUT", blocking=False) is not None:
            pass
        assert rx.recv_match(type="GPS_INPUT", blocking=True, timeout=0.8) is None
    finally:
        sink.close()
        rx.close()


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
        MavlinkSink(f"tcp:127.0.0.1:{port}", ORIGIN)          # nothing listens there
    with pytest.raises(CvglError, match="no MAVLink heartbeat"):
        MavlinkSink(f"udpout:127.0.0.1:{port}", ORIGIN, wait_heartbeat_s=0.5)
    with pytest.raises(CvglError, match="4 Hz"):
        MavlinkSink(f"udpout:127.0.0.1:{port}", ORIGIN, rate_hz=2.0)


def test_gps_week_time():
    week, ms = gps_week_time(1_700_000_000.0)   # 2023-11-14T22:13:20Z
    assert week == 2288 and ms == 252_818_000

"""A second, independent decoder of the sink's bytes: MAVSDK's mavlink_direct (C++, from the XML definitions).

pymavlink both encodes and (in the other tests) decodes; a field-order or type mistake shared by
both would pass there. MAVSDK 4.1 decodes every message from MAVLink's XML on its own and hands
the fields over as JSON (NaN as null). Each profile's messages, sent by the real sink, must decode
to exactly the fields the encoders meant. MAVSDK sees a system without an autopilot heartbeat
through ``get_systems()`` (not ``first_autopilot()``).
"""

from __future__ import annotations

import json
import math
import socket
import time

import pytest

from cvgl_edge.localize.autopilot import profile
from cvgl_edge.localize.mavlink_fields import GPS_MESSAGES, LOCAL_MESSAGES, Origin
from cvgl_edge.localize.mavlink_sink import MavlinkSettings, MavlinkSink
from cvgl_edge.localize.position_sample import sample_from_record

mavsdk = pytest.importorskip("mavsdk", reason="MAVSDK (pip install mavsdk) decodes the bytes independently")
from mavsdk.component_type import ComponentType  # noqa: E402
from mavsdk.mavsdk import Configuration, Mavsdk  # noqa: E402
from mavsdk.plugins.mavlink_direct.mavlink_direct import MavlinkDirect, MavlinkMessage  # noqa: E402

ORIGIN = Origin(47.37, 8.54, 408.0)
TIME_FIELDS = {"time_usec", "usec", "time_week", "time_week_ms", "message_id", "message_name"}
RECORD = {"status": "fix", "lat": 47.3712345, "lon": 8.5423456, "sigma_m": 18.0, "v_north": -1.0, "v_east": 3.0,
          "sigma_v_mps": 4.0, "altitude_m": 120.0, "captured_unix": time.time(), "track": 3, "confidence": 0.8}
CASES = [("ardupilot", "gps_input"), ("ardupilot", "vision_position_estimate"), ("ardupilot", "odometry"),
         ("px4", "odometry"), ("px4", "vision_position_estimate"), ("px4", "hil_gps")]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _same(decoded, meant) -> bool:
    if isinstance(meant, (list, tuple)):
        return len(decoded) == len(meant) and all(_same(d, m) for d, m in zip(decoded, meant))
    if isinstance(meant, float) and math.isnan(meant):
        return decoded is None
    return decoded == pytest.approx(meant, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("autopilot, message", CASES)
def test_mavsdk_decodes_what_each_profile_means_to_send(autopilot, message):
    port = _free_port()
    receiver = Mavsdk(Configuration.create_with_component_type(ComponentType.GROUND_STATION))
    receiver.add_any_connection(f"udpin://127.0.0.1:{port}")
    decoded: list[dict] = []
    sink = MavlinkSink(MavlinkSettings(url=f"udpout:127.0.0.1:{port}", autopilot=profile(autopilot),
                                       messages=(message,), map_origin=(ORIGIN.lat, ORIGIN.lon),
                                       ground_msl_m=ORIGIN.alt_msl_m, rate_hz=profile(autopilot).min_rate_hz))
    direct = None
    try:
        deadline = time.monotonic() + 10
        while not decoded and time.monotonic() < deadline:
            sink.emit({**RECORD, "captured_unix": time.time()})
            time.sleep(0.05)
            systems = receiver.get_systems()
            if systems and direct is None:
                direct = MavlinkDirect(systems[0])
                direct.subscribe_message(message.upper(), lambda msg, _: decoded.append(json.loads(msg.fields_json)))
                # The sink positions local-frame messages from the autopilot's origin: be that autopilot.
                direct.send_message(MavlinkMessage(
                    message_name="GPS_GLOBAL_ORIGIN", system_id=1, component_id=1, fields_json=json.dumps(
                        {"latitude": round(ORIGIN.lat * 1e7), "longitude": round(ORIGIN.lon * 1e7),
                         "altitude": round(ORIGIN.alt_msl_m * 1000), "time_usec": 0})))
    finally:
        sink.close()
        if direct is not None:
            direct.destroy()
        receiver.destroy()
    assert decoded, f"MAVSDK decoded no {message}"
    sample = sample_from_record(RECORD)
    if message in GPS_MESSAGES:
        meant = GPS_MESSAGES[message].encode(sample, ORIGIN.alt_msl_m)
        if GPS_MESSAGES[message].stamped_at_arrival:      # dead-reckoned to the send instant: a few cm
            meant = {k: v for k, v in meant.items() if k not in ("lat", "lon")}
    else:
        meant = LOCAL_MESSAGES[message](sample, ORIGIN, ORIGIN.alt_msl_m, 0, autopilot)
    compared = {k: v for k, v in meant.items() if k not in TIME_FIELDS}

    def mismatches(got: dict) -> list:
        return [(k, got[k], v) for k, v in compared.items() if not _same(got[k], v)]

    # Fresh fixes only are emitted faster than the rate, but a repeat (dead-reckoned) may slip in: one exact
    # match among the decoded messages is the check.
    assert any(not mismatches(got) for got in decoded), mismatches(decoded[-1])

"""Frame matching of the CARLA backend, driven by synthetic frames from threads."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from sim.carla_backend.errors import SensorFrameError
from sim.carla_backend.frames import EventQueue, FrameBuffer, rgb_of_bgra


def _deliver(buffer, name, frames, delay_s=0.0):
    def run():
        for f in frames:
            time.sleep(delay_s)
            buffer.callback(name)(SimpleNamespace(frame=f, payload=(name, f)))

    t = threading.Thread(target=run)
    t.start()
    return t


def test_get_waits_for_every_sensor_of_the_frame_from_threads():
    buf = FrameBuffer(["left", "front", "right"], timeout_s=2.0)
    threads = [_deliver(buf, n, [10, 11, 12], delay_s=0.01 * (i + 1)) for i, n in enumerate(buf.names)]
    for frame in (10, 11, 12):
        got = buf.get(frame)
        assert [g.payload for g in got] == [(n, frame) for n in buf.names]
    for t in threads:
        t.join()


def test_out_of_order_arrival_still_gives_the_requested_frame():
    buf = FrameBuffer(["a", "b"], timeout_s=1.0)
    buf.put("b", 6, "b6")
    buf.put("a", 6, "a6")
    buf.put("b", 5, "b5")
    buf.put("a", 5, "a5")
    assert buf.get(5) == ["a5", "b5"]
    assert buf.get(6) == ["a6", "b6"]


def test_late_frame_is_an_error_after_the_timeout_not_an_older_image():
    buf = FrameBuffer(["front"], timeout_s=0.2)
    buf.put("front", 7, "old")
    t0 = time.monotonic()
    with pytest.raises(SensorFrameError, match=r"no data for frame 8 from sensor\(s\) front within 0.2 s"):
        buf.get(8)
    assert 0.15 < time.monotonic() - t0 < 1.5


def test_frame_arriving_within_the_timeout_is_waited_for():
    buf = FrameBuffer(["front"], timeout_s=2.0)
    t = _deliver(buf, "front", [3], delay_s=0.1)
    assert buf.get(3)[0].frame == 3
    t.join()


def test_a_skipped_frame_is_an_error_at_once():
    buf = FrameBuffer(["a", "b"], timeout_s=5.0)
    buf.put("a", 4, "a4")
    buf.put("b", 5, "b5")  # b has moved past frame 4 without sending it
    t0 = time.monotonic()
    with pytest.raises(SensorFrameError, match="b skipped frame 4"):
        buf.get(4)
    assert time.monotonic() - t0 < 1.0


def test_handed_out_frames_are_gone_and_late_data_for_them_is_dropped():
    buf = FrameBuffer(["a"], timeout_s=0.1)
    buf.put("a", 1, "x")
    assert buf.get(1) == ["x"]
    buf.put("a", 1, "late duplicate")
    with pytest.raises(SensorFrameError, match="already handed out"):
        buf.get(1)
    buf.put("a", 2, "y")
    assert buf.get(2) == ["y"]


def test_pending_frames_are_bounded():
    buf = FrameBuffer(["a"], timeout_s=0.05, max_pending=3)
    for f in range(10):
        buf.put("a", f, f)
    assert buf.get(9) == [9]
    with pytest.raises(SensorFrameError):
        buf.get(2)


def test_buffer_rejects_bad_names():
    with pytest.raises(ValueError):
        FrameBuffer([], 1.0)
    with pytest.raises(ValueError):
        FrameBuffer(["a", "a"], 1.0)
    with pytest.raises(KeyError):
        FrameBuffer(["a"], 1.0).callback("b")


def test_event_queue_hands_out_events_up_to_a_frame():
    q = EventQueue()
    q.put(3, "c3")
    q.put(5, "c5")
    q.put(4, "c4")
    assert q.take(4) == [(3, "c3"), (4, "c4")]
    assert q.take(4) == []
    assert q.take(9) == [(5, "c5")]


def test_bgra_bytes_become_rgb():
    raw = bytes([10, 20, 30, 255, 1, 2, 3, 255] * 3)  # 2x3 image, B G R A per pixel
    rgb = rgb_of_bgra(raw, 2, 3)
    assert rgb.shape == (3, 2, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [30, 20, 10] and rgb[2, 1].tolist() == [3, 2, 1]
    with pytest.raises(SensorFrameError, match="not 4x3 BGRA"):
        rgb_of_bgra(raw, 4, 3)

"""Frame matching: every observation comes from the tick it belongs to.

CARLA delivers sensor data on its own threads, after ``world.tick()`` returns and in
no promised order. :class:`FrameBuffer` collects each camera's data by frame number
and :meth:`FrameBuffer.get` returns the complete set for one frame, waiting up to a
timeout; a frame that does not come in time, or that a camera skipped (it has sent a
newer one), is a :class:`~sim.carla_backend.errors.SensorFrameError`, never an older
image in its place. :class:`EventQueue` holds event sensors' data (collisions, lane
invasions), which come only when something happens, until the tick that reads them.

Nothing here talks to a server; the backend wires ``callback(name)`` to its sensors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sim.carla_backend.errors import SensorFrameError

__all__ = ["FrameBuffer", "EventQueue", "rgb_of_bgra"]


def rgb_of_bgra(raw: bytes | memoryview, width: int, height: int) -> np.ndarray:
    """A CARLA camera image (``raw_data``: BGRA bytes, row-major) as a (H, W, 3) uint8 RGB copy."""
    a = np.frombuffer(raw, dtype=np.uint8)
    if a.size != width * height * 4:
        raise SensorFrameError(f"camera image of {a.size} bytes is not {width}x{height} BGRA")
    return np.ascontiguousarray(a.reshape(height, width, 4)[:, :, 2::-1])


class FrameBuffer:
    """Sensor data by frame number, one slot per named sensor (thread-safe).

    ``put(name, frame, data)`` is called from sensor threads; ``get(frame)`` blocks
    until every sensor has delivered ``frame`` (up to ``timeout_s``) and returns their
    data in ``names`` order. Frames up to the one returned are then forgotten; at most
    ``max_pending`` frames are kept for a reader that does not read every tick.
    """

    def __init__(
        self,
        names: Sequence[str],
        timeout_s: float,
        *,
        max_pending: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not names:
            raise ValueError("a FrameBuffer needs at least one sensor name")
        if len(set(names)) != len(names):
            raise ValueError(f"sensor names must be unique, got {list(names)}")
        self.names = tuple(names)
        self.timeout_s = float(timeout_s)
        self._max_pending = int(max_pending)
        self._clock = clock
        self._cond = threading.Condition()
        self._frames: dict[int, dict[str, Any]] = {}
        self._latest = dict.fromkeys(self.names, -1)
        self._done = -1  # frames up to this one were returned or given up

    def callback(self, name: str) -> Callable[[Any], None]:
        """A sensor callback for ``name`` that files data by its ``frame`` attribute."""
        if name not in self._latest:
            raise KeyError(f"no sensor named {name!r}; known: {', '.join(self.names)}")
        return lambda data: self.put(name, int(data.frame), data)

    def put(self, name: str, frame: int, data: Any) -> None:
        with self._cond:
            if frame <= self._done:
                return  # too late: that frame was handed out or given up already
            self._frames.setdefault(frame, {})[name] = data
            self._latest[name] = max(self._latest[name], frame)
            while len(self._frames) > self._max_pending:
                del self._frames[min(self._frames)]
            self._cond.notify_all()

    def get(self, frame: int) -> list[Any]:
        """Every sensor's data of ``frame``, in ``names`` order; raises
        :class:`SensorFrameError` on a skipped frame or after ``timeout_s``."""
        deadline = self._clock() + self.timeout_s
        with self._cond:
            if frame <= self._done:
                raise SensorFrameError(
                    f"frame {frame} was already handed out or given up (now past {self._done})"
                )
            while True:
                got = self._frames.get(frame, {})
                missing = [n for n in self.names if n not in got]
                if not missing:
                    self._forget_through(frame)
                    return [got[n] for n in self.names]
                skipped = [n for n in missing if self._latest[n] > frame]
                if skipped:
                    self._forget_through(frame)
                    raise SensorFrameError(
                        f"sensor(s) {', '.join(skipped)} skipped frame {frame} "
                        f"(already at frame {max(self._latest[n] for n in skipped)})"
                    )
                remaining = deadline - self._clock()
                if remaining <= 0:
                    self._forget_through(frame)
                    latest = ", ".join(f"{n}: {self._latest[n]}" for n in missing)
                    raise SensorFrameError(
                        f"no data for frame {frame} from sensor(s) {', '.join(missing)} within "
                        f"{self.timeout_s:g} s (latest frames {latest}); the server is overloaded or gone"
                    )
                self._cond.wait(remaining)

    def _forget_through(self, frame: int) -> None:
        self._done = max(self._done, frame)
        for f in [f for f in self._frames if f <= frame]:
            del self._frames[f]


class EventQueue:
    """Event sensor data by frame (thread-safe): ``put`` from sensor threads, ``take``
    everything up to a frame in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[int, Any]] = []

    def put(self, frame: int, item: Any) -> None:
        with self._lock:
            self._items.append((int(frame), item))

    def take(self, up_to_frame: int) -> list[tuple[int, Any]]:
        """Items of frames <= ``up_to_frame`` (removed); later frames stay queued."""
        with self._lock:
            out = [it for it in self._items if it[0] <= up_to_frame]
            self._items = [it for it in self._items if it[0] > up_to_frame]
        return out

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

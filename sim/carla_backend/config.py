"""Settings of one CARLA backend: the server to talk to and how patiently.

Typed, frozen and validated on construction, like every config of loopdrive. One
backend talks to one server; several envs run on several servers (one port each),
and each env's Traffic Manager gets its own port, derived from the server's unless
given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.errors import ConfigError

__all__ = ["CarlaConfig", "SUPPORTED_VERSIONS", "TM_PORT_OFFSET", "SYNC_DT_S"]

#: CARLA server versions this backend is written for
SUPPORTED_VERSIONS: tuple[str, ...] = ("0.9.15", "0.9.16")
#: Traffic Manager port = server port + this (CARLA's defaults: 2000 and 8000)
TM_PORT_OFFSET = 6000
#: the synchronous mode's fixed step (s): the env's 20 Hz, as the Leaderboard runs
SYNC_DT_S = 0.05


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class CarlaConfig:
    """Where the server is and how long to wait for it.

    ``timeout_s`` bounds every server call (connecting included): an unreachable
    server is an error after that long. ``sensor_timeout_s`` bounds the wait for a
    tick's camera frames. ``reconnect_attempts`` bounds how often a reset tries to
    reach a server that went away (``reconnect_wait_s`` apart).
    ``traffic_manager_port`` 0 means ``port + 6000`` (see :attr:`tm_port`).
    """

    host: str = field(default="localhost", metadata={"help": "CARLA server host"})
    port: int = field(default=2000, metadata={"help": "CARLA server RPC port"})
    timeout_s: float = field(default=10.0, metadata={"help": "seconds to wait for the server"})
    traffic_manager_port: int = field(default=0, metadata={"help": "Traffic Manager port (0: port + 6000)"})
    sensor_timeout_s: float = field(
        default=5.0, metadata={"help": "seconds to wait for a tick's camera frames"}
    )
    reconnect_attempts: int = field(default=3, metadata={"help": "tries to reach a lost server on reset"})
    reconnect_wait_s: float = field(default=5.0, metadata={"help": "seconds between reconnection tries"})
    car_blueprint: str = field(default="vehicle.lincoln.mkz_2020", metadata={"help": "ego blueprint (car)"})
    truck_blueprint: str = field(
        default="vehicle.carlamotors.carlacola", metadata={"help": "ego blueprint (truck)"}
    )

    def __post_init__(self) -> None:
        _check(
            isinstance(self.host, str) and bool(self.host), f"carla host must be a name, got {self.host!r}"
        )
        for name in ("port", "traffic_manager_port", "reconnect_attempts"):
            value = getattr(self, name)
            _check(
                isinstance(value, int) and not isinstance(value, bool),
                f"carla {name} must be an integer, got {value!r}",
            )
        _check(1 <= self.port <= 65535, f"carla port must lie in [1, 65535], got {self.port}")
        _check(
            self.traffic_manager_port == 0 or 1 <= self.traffic_manager_port <= 65535,
            f"carla traffic_manager_port must be 0 or lie in [1, 65535], got {self.traffic_manager_port}",
        )
        _check(
            self.reconnect_attempts >= 1,
            f"carla reconnect_attempts must be >= 1, got {self.reconnect_attempts}",
        )
        for name in ("timeout_s", "sensor_timeout_s", "reconnect_wait_s"):
            value = getattr(self, name)
            _check(_number(value) and value >= 0, f"carla {name} must be a number >= 0, got {value!r}")
        _check(self.timeout_s > 0, f"carla timeout_s must be positive, got {self.timeout_s}")
        _check(
            self.sensor_timeout_s > 0, f"carla sensor_timeout_s must be positive, got {self.sensor_timeout_s}"
        )
        tm = self.tm_port
        _check(
            tm <= 65535, f"carla Traffic Manager port {tm} (port + {TM_PORT_OFFSET}) is above 65535; set it"
        )
        _check(tm != self.port, f"carla Traffic Manager port must differ from the server port {self.port}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def tm_port(self) -> int:
        """The Traffic Manager's port: ``traffic_manager_port``, or ``port + 6000``
        (``port - 6000`` for ports above 59535), distinct per server port."""
        if self.traffic_manager_port:
            return self.traffic_manager_port
        up = self.port + TM_PORT_OFFSET
        return up if up <= 65535 else self.port - TM_PORT_OFFSET

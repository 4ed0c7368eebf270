"""Reaching a CARLA server: one client per backend, a bounded wait, a clear error.

:func:`connect` asks the server for its version, which fails after ``timeout_s`` when
nothing answers at host:port, and turns that into a
:class:`~sim.carla_backend.errors.CarlaUnavailableError` that names the address and
says how to start a server. :func:`reconnect` tries a bounded number of times, for a
reset after the server went away. ``client_factory`` is the one seam for tests: it
builds the client (``carla.Client`` by default).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import carla

from sim.carla_backend.config import SUPPORTED_VERSIONS, CarlaConfig
from sim.carla_backend.errors import CarlaUnavailableError

__all__ = ["connect", "reconnect", "how_to_start", "server_call_failed"]


def how_to_start(port: int) -> str:
    """What to run to start a CARLA server on ``port``."""
    return (
        f"start one with ./CarlaUE4.sh -RenderOffScreen -carla-rpc-port={port} "
        f"(packaged CARLA 0.9.15/0.9.16) "
        f"or docker run --privileged --gpus all --net=host carlasim/carla:0.9.16 "
        f"bash CarlaUE4.sh -RenderOffScreen -carla-rpc-port={port}"
    )


def server_call_failed(exc: BaseException) -> bool:
    """Whether an exception from a ``carla`` call means the server did not answer (the
    client raises ``RuntimeError`` on a time-out or a broken connection)."""
    return isinstance(exc, RuntimeError)


def connect(config: CarlaConfig, client_factory: Callable[[str, int], Any] = carla.Client) -> Any:
    """A client of the server at ``config.host:config.port``, checked to answer within
    ``config.timeout_s``; raises :class:`CarlaUnavailableError` otherwise."""
    try:
        client = client_factory(config.host, config.port)
        client.set_timeout(config.timeout_s)
        version = str(client.get_server_version())
    except RuntimeError as exc:
        raise CarlaUnavailableError(
            f"cannot reach a CARLA server at {config.address} within {config.timeout_s:g} s "
            f"({_first_line(exc)}); {how_to_start(config.port)}"
        ) from None
    if not version.startswith(SUPPORTED_VERSIONS):
        warnings.warn(
            f"CARLA server at {config.address} runs {version}; loopdrive supports "
            f"{' and '.join(SUPPORTED_VERSIONS)}",
            stacklevel=2,
        )
    return client


def reconnect(
    config: CarlaConfig,
    client_factory: Callable[[str, int], Any] = carla.Client,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """:func:`connect`, tried ``config.reconnect_attempts`` times ``reconnect_wait_s`` apart."""
    for attempt in range(1, config.reconnect_attempts + 1):
        try:
            return connect(config, client_factory)
        except CarlaUnavailableError as exc:
            if attempt == config.reconnect_attempts:
                raise CarlaUnavailableError(f"{exc} (after {attempt} attempts)") from None
            sleep(config.reconnect_wait_s)
    raise AssertionError("unreachable")  # the loop returns or raises


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

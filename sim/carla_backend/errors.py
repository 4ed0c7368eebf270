"""Errors of the CARLA backend: each one line, naming the server and what to do next."""

from __future__ import annotations

from sim.errors import LoopdriveError

__all__ = ["CarlaError", "CarlaUnavailableError", "ServerLostError", "SensorFrameError"]


class CarlaError(LoopdriveError):
    """Something went wrong with the CARLA server or its data."""


class CarlaUnavailableError(CarlaError):
    """No CARLA server answered at host:port within the timeout."""


class ServerLostError(CarlaError):
    """The server stopped answering mid-episode: the episode is cut off; the next reset
    reconnects."""


class SensorFrameError(CarlaError):
    """A sensor's frame for a tick did not come within the timeout, or was skipped."""

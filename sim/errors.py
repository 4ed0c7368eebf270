"""User-facing errors.

A :class:`LoopdriveError` carries one line that names the thing at fault (a file,
a route, a key) and the reason, and where it helps, what to do next. The CLI prints
it without a traceback and exits with status 2.
"""

from __future__ import annotations

__all__ = ["LoopdriveError", "MapError", "RouteError", "ConfigError"]


class LoopdriveError(Exception):
    """An error caused by the user's input, reported as one clear line."""


class MapError(LoopdriveError):
    """A map that cannot be read, parsed or used."""


class RouteError(LoopdriveError):
    """A route file, route id or route that cannot be planned."""


class ConfigError(LoopdriveError, ValueError):
    """A configuration value out of range or of the wrong type."""

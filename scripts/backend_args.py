"""``--backend embedded|carla --host H --port P --timeout S``: the options every
simulator-driving command shares, and the backend (or env settings) they ask for.

``add_backend_args(parser)`` adds the options; ``make_backend(args, cameras=())``
builds the backend for commands that drive the seam directly (``evaluate``);
``env_overrides(args)`` gives the ``DrivingEnvConfig`` fields for commands that build
an env (``drive``, ``collect``, ``replay``).
"""

from __future__ import annotations

import argparse

from sim.errors import LoopdriveError

__all__ = ["add_backend_args", "make_backend", "env_overrides", "BACKEND_CHOICES"]

BACKEND_CHOICES = ("embedded", "carla")


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--backend``, ``--host``, ``--port`` and ``--timeout`` to ``parser``."""
    group = parser.add_argument_group(
        "simulator", "where to drive: the embedded simulator, or a CARLA 0.9.15/0.9.16 server"
    )
    group.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="embedded",
        help="embedded (no server) or carla (a running CARLA server; default: embedded)",
    )
    group.add_argument("--host", default="localhost", help="CARLA server host (default: localhost)")
    group.add_argument("--port", type=int, default=2000, help="CARLA server RPC port (default: 2000)")
    group.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the CARLA server before giving up (default: 10)",
    )


def _carla_config(args: argparse.Namespace):
    from sim.carla_backend.config import CarlaConfig

    return CarlaConfig(host=args.host, port=args.port, timeout_s=args.timeout)


def make_backend(args: argparse.Namespace, cameras=()):
    """The backend the options ask for (a CARLA one carries ``cameras``); bad values
    are one-line :class:`~sim.errors.LoopdriveError` s."""
    if args.backend == "embedded":
        from sim.embedded import EmbeddedBackend

        return EmbeddedBackend()
    if args.backend == "carla":
        from sim.carla_backend import CarlaBackend

        return CarlaBackend(_carla_config(args), cameras=cameras)
    raise LoopdriveError(f"--backend {args.backend!r}: use one of {', '.join(BACKEND_CHOICES)}")


def env_overrides(args: argparse.Namespace) -> dict:
    """``DrivingEnvConfig`` fields of the options (validated by the config)."""
    if args.backend == "carla":
        _carla_config(args)  # the same checks, with the same messages
    return {
        "backend": args.backend,
        "carla_host": args.host,
        "carla_port": args.port,
        "carla_timeout_s": args.timeout,
    }

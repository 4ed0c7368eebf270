"""Command-line options generated from frozen config dataclasses.

Each field becomes ``--field-name`` with its type, default and the ``help`` from the
field's metadata; the parsed values build the dataclass again, whose
``__post_init__`` validates them (a :class:`sim.errors.ConfigError` there becomes a
one-line CLI error).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from sim.errors import ConfigError

__all__ = ["add_config_arguments", "config_from_args"]


def _option(name: str, prefix: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, *, prefix: str = "", skip=(), defaults: dict | None = None
) -> None:
    """Add one option per field of dataclass ``cls`` to ``parser``; ``defaults`` (field name
    -> value) replaces the dataclass's defaults for this parser."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(cls.__name__, (cls.__doc__ or "").strip().splitlines()[0])
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        kind = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        default = (defaults or {}).get(f.name, default)
        help_text = f.metadata.get("help", "")
        dest = (prefix + f.name).replace("-", "_")
        if kind is bool:
            group.add_argument(
                _option(f.name, prefix),
                dest=dest,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=f"{help_text} (default: {default})",
            )
            continue
        origin = typing.get_origin(kind)
        if origin is tuple:
            inner = typing.get_args(kind)[0]
            group.add_argument(
                _option(f.name, prefix),
                dest=dest,
                type=inner,
                nargs="+",
                default=default,
                help=f"{help_text} (default: {' '.join(map(str, default))})",
            )
            continue
        choices = f.metadata.get("choices")
        group.add_argument(
            _option(f.name, prefix),
            dest=dest,
            type=kind,
            default=default,
            choices=choices,
            help=f"{help_text} (default: {default})",
        )


def config_from_args(cls: type, args: argparse.Namespace, *, prefix: str = "", **overrides: Any):
    """Build ``cls`` from the options :func:`add_config_arguments` added."""
    values = {}
    for f in dataclasses.fields(cls):
        dest = (prefix + f.name).replace("-", "_")
        if f.init and hasattr(args, dest):
            value = getattr(args, dest)
            values[f.name] = tuple(value) if isinstance(value, list) else value
    values.update(overrides)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{cls.__name__}: {exc}") from None

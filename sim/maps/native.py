"""Quiet calls into the ``carla`` client library.

Its C++ code prints to the process's stdout/stderr directly (for example
``WARNING: cannot parse georeference: ''`` for OpenDRIVE files with an empty
``<geoReference>``, or ``pj_obj_create: Cannot find proj.db``); loopdrive's own
messages are the ones a user should read, so those prints are silenced around calls.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["quiet_native_output"]


@contextlib.contextmanager
def quiet_native_output():
    """Silence the converter's native prints (e.g. 'pj_obj_create: Cannot find proj.db')."""
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)

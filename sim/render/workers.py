"""Render threads that draw frames while the caller's thread does other work.

A batched env steps its worlds one after another in Python, which holds the GIL; the
numba camera kernel does not need it. :class:`RenderWorkers` keeps threads inside one
compiled loop (:func:`sim.render.kernel_numba.serve_slots`) for their whole life: they
wait on a POSIX semaphore, draw each slot as soon as the caller has packed it, and never
take the GIL, so the caller's Python runs on undisturbed and no thread waits for the
other's GIL hand-over. A round:

* :meth:`RenderWorkers.begin`; then for each frame k in order :meth:`RenderWorkers.add`
  (packs the state into slot k and hands it out) or :meth:`RenderWorkers.skip` (the
  caller draws slot k itself, into :attr:`RenderWorkers.out`);
* :meth:`RenderWorkers.collect`: the caller draws every slot no worker has started, waits
  for the rest, and gets the images.

Each slot is drawn alone from its own state, so the images are the same as one batched
kernel call's, bit for bit. POSIX unnamed semaphores exist on Linux only:
:func:`available` says whether this process can use the workers.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import threading

import numpy as np

from sim.render import layout as L
from sim.render.kernel_numba import (
    CTL_CLAIMED,
    SEM_BYTES,
    SEM_LOCK,
    fail_slots,
    restart_slots,
    serve_slots,
    stop_slots,
    submit_slots,
)
from sim.render.pack import pack_into

__all__ = ["RenderWorkers", "available"]

_SEMAPHORES = 3  # work, done, lock (see sim.render.kernel_numba)


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.sem_init.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint)
    libc.sem_destroy.argtypes = (ctypes.c_void_p,)
    return libc


@functools.cache
def available() -> bool:
    """Whether render workers can run here (POSIX unnamed semaphores: Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        _libc()
    except (OSError, AttributeError):
        return False
    return True


class RenderWorkers:
    """``threads`` render threads drawing ``slots`` frames of one renderer a round (see the
    module docstring). A slot holds at most ``box_capacity`` actor boxes; a state with more
    does not fit (the caller draws it)."""

    def __init__(self, renderer, slots: int, threads: int, box_capacity: int):
        if threads < 1 or slots < 1 or box_capacity < 0:
            raise ValueError(f"render workers need threads, slots >= 1, got {threads} and {slots}")
        self.renderer, self.slots, self.threads, self.box_capacity = renderer, slots, threads, box_capacity
        self.out = np.empty((slots, *renderer.image_shape), np.uint8)
        self.ego = np.zeros((slots, L.EGO_FIELDS))
        self.sig = np.zeros((slots, renderer.scene.signal_rows), np.int8)
        self.boxes = np.zeros((slots, box_capacity, L.BOX_FIELDS))
        self.nbox = np.full(slots, -1, np.int64)
        self.error: BaseException | None = None
        self._ctl = np.zeros(4, np.int64)
        self._sync = np.zeros(_SEMAPHORES * SEM_BYTES // 8, np.int64).view(np.uint8)  # 8-byte aligned
        self._libc = _libc()
        for i in range(_SEMAPHORES):
            initial = 1 if i == SEM_LOCK else 0  # the lock starts free
            if self._libc.sem_init(self._sync.ctypes.data + i * SEM_BYTES, 0, initial) != 0:
                raise OSError(ctypes.get_errno(), "sem_init failed for the render workers")
        self._added = 0
        self._in_round = False
        self._closed = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"loopdrive-render-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _args(self, worker: bool) -> tuple:
        tabs, statics, index, tex, wp = self.renderer.kernel_args()
        return (
            self._sync,
            self._ctl,
            self.out,
            self.ego,
            self.boxes,
            self.nbox,
            self.sig,
            tabs,
            statics,
            index,
            tex,
            wp,
            worker,
        )

    def _serve(self) -> None:
        try:
            serve_slots(*self._args(True))
        except BaseException as exc:  # reaches the caller at collect()
            self.error = exc
            fail_slots(self._sync, self._ctl, self.slots)

    def begin(self) -> None:
        """Start a round (a round left unfinished, by an exception, is collected first)."""
        if self._in_round:
            self.collect()
        restart_slots(self._sync, self._ctl)
        self._added = 0
        self._in_round = True

    def add(self, k: int, state) -> int:
        """Pack ``state`` into slot k and hand it to the workers; returns its actor boxes.
        More than :attr:`box_capacity` do not fit: nothing is handed out, and the caller
        draws slot k (:meth:`skip`)."""
        self._check_order(k)
        n = pack_into(state, k, self.ego, self.sig, self.boxes)
        if n <= self.box_capacity:
            self.nbox[k] = n
            self._added = k + 1
            submit_slots(self._sync, self._ctl, self._added)
        return n

    def skip(self, k: int) -> np.ndarray:
        """Slot k is drawn by the caller: returns its rows of :attr:`out` to draw into."""
        self._check_order(k)
        self.nbox[k] = -1
        self._added = k + 1
        submit_slots(self._sync, self._ctl, self._added)
        return self.out[k : k + 1]

    def _check_order(self, k: int) -> None:
        if not self._in_round:
            raise RuntimeError("call begin() before adding slots")
        if k != self._added:
            raise RuntimeError(f"add slot {self._added} next (slots are added in order), got {k}")

    def collect(self) -> np.ndarray:
        """Draw what no worker has started, wait for the rest; the (slots, n_cams, H, W, 3)
        images of the round (valid until the next :meth:`begin`)."""
        if not self._in_round:
            raise RuntimeError("call begin() before collect()")
        self._in_round = False
        if self.error is None:
            serve_slots(*self._args(False))
        if self.error is not None:
            raise self.error
        return self.out

    def close(self) -> None:
        """Stop the threads (after their current slot) and free the semaphores."""
        if self._closed:
            return
        self._closed = True
        stop_slots(self._sync, self._ctl, self.threads)
        for thread in self._threads:
            thread.join()
        for i in range(_SEMAPHORES):
            self._libc.sem_destroy(self._sync.ctypes.data + i * SEM_BYTES)

    @property
    def claimed(self) -> int:
        """Slots the render threads have taken this round (the rest the caller draws)."""
        return int(self._ctl[CTL_CLAIMED])

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

"""The backend seam: the one small interface both simulators implement.

A backend owns a world. ``reset`` builds it from a :class:`sim.scenario.Scenario`
and a seed; each ``tick`` advances it by ``dt_s`` with the last control applied;
``state`` reads the privileged truth. Rendering belongs to the seam too (cameras of
the rig), added with the camera renderer. Nothing above the seam touches a
simulator directly, and ``import carla`` for server calls lives in the CARLA backend
alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from sim.state import Control, WorldState

__all__ = ["Backend"]


class Backend(ABC):
    """A simulator behind the seam (embedded or CARLA)."""

    #: seconds of simulated time per tick (the policy frequency: 20 Hz)
    dt_s: float = 0.05

    @abstractmethod
    def reset(self, scenario, seed: int) -> WorldState:
        """Build the world of ``scenario`` with randomness from ``seed``; return tick 0."""

    @abstractmethod
    def apply_control(self, control: Control) -> None:
        """Set the ego's control for the following ticks."""

    @abstractmethod
    def tick(self) -> WorldState:
        """Advance the world by ``dt_s`` (physics may substep) and return its state."""

    @abstractmethod
    def state(self) -> WorldState:
        """The state after the last tick (or reset)."""

    def render(self, rig):
        """Camera images of the rig; the renderer comes with the camera issue."""
        raise NotImplementedError(f"{type(self).__name__} does not render cameras yet")

    @abstractmethod
    def close(self) -> None:
        """Release the world's resources; safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Recording: every episode an env runs becomes one file of the episode store.

``RecorderWrapper(env, store_dir, policy_id=...)`` wraps a driving env (or a
:class:`~envs.takeover.TakeoverWrapper` / :class:`~envs.takeover.ShadowWrapper` around
one, whose ``info`` keys it records: ``driver``, ``policy_action``,
``executed_action``, ``intervention``, ``hand_back``, ``disagreement``).

Row ``k`` of the file is written when the action taken in observation ``k`` is known
(see :mod:`envs.store` for the columns); the episode's file is finished when the env
reports ``terminated`` or ``truncated``, and also, marked ``complete: false``, when the
env is reset or closed before that. Float actions are passed on as ``float32``, the
exact values the store keeps, so a replay re-applies what was applied.

Events (the header's ``events``): each ``intervention`` (trigger, driver, step, time,
``context_start_step`` and the ``end_step`` where the policy drove again or the
episode ended), each ``disagreement`` of shadow mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.store import EpisodeHeader, EpisodeWriter
from envs.takeover import _as_action

__all__ = ["RecorderWrapper"]


class RecorderWrapper(gym.Wrapper):
    """Writes every episode to ``store_dir`` (see the module docstring). ``paths`` lists
    the files finished so far, ``last_path`` the latest."""

    def __init__(
        self,
        env: gym.Env,
        store_dir: str | Path,
        policy_id: str = "unknown",
        *,
        row_group_rows: int = 0,
    ):
        super().__init__(env)
        self.store_dir = Path(store_dir)
        self.policy_id = str(policy_id)
        self.row_group_rows = row_group_rows
        self.paths: list[Path] = []
        self._writer: EpisodeWriter | None = None
        self._pending: dict[str, Any] | None = None  # the row whose action is not known yet
        self._open: dict | None = None  # the intervention still running
        self._step = 0
        self._world_events: dict[str, int] = {}
        self._last_info: dict[str, Any] = {}

    @property
    def last_path(self) -> Path | None:
        return self.paths[-1] if self.paths else None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._finish(complete=False)
        obs, info = self.env.reset(seed=seed, options=options)
        base = self.env.unwrapped
        backend = base.world.backend
        header = EpisodeHeader(
            scenario=backend.scenario,
            seed=int(info["episode_seed"]),
            env_config=base.config,
            camera_shape=tuple(obs["camera"].shape),
            route_shape=tuple(obs["route"].shape),
            map_hash=backend.road_map.content_hash,
            policy_id=self.policy_id,
            backend=getattr(base.config, "backend", "embedded"),
        )
        self._writer = EpisodeWriter(self.store_dir, header, row_group_rows=self.row_group_rows)
        self._step = 0
        self._open = None
        self._world_events = {}
        self._pending = _row(0, obs, info, 0.0, False, False)
        self._last_info = info
        return obs, info

    def step(self, action: Any):
        if self._writer is None:
            raise RuntimeError("reset the env before stepping it")
        action = _as_action(action)
        obs, reward, terminated, truncated, info = self.env.step(action)
        row = self._pending
        applied = np.asarray(info.get("executed_action", action), np.float32)
        row["policy_action"] = np.asarray(info.get("policy_action", action), np.float32).tolist()
        row["executed_action"] = applied.tolist()
        row["driver"] = info.get("driver", "policy")
        self._events(info)
        if "intervention" in info:
            row["intervention"] = info["intervention"]["trigger"]
        self._add(row)
        self._step += 1
        self._pending = _row(self._step, obs, info, reward, terminated, truncated)
        self._last_info = info
        if terminated or truncated:
            self._finish(complete=True)
        return obs, reward, terminated, truncated, info

    def _events(self, info: dict[str, Any]) -> None:
        if "hand_back" in info or "intervention" in info:
            self._close_intervention(self._step)
        if "intervention" in info:
            self._open = {"kind": "intervention", **info["intervention"]}
        if "disagreement" in info:
            self._writer.add_event({"kind": "disagreement", **info["disagreement"]})

    def _close_intervention(self, end_step: int) -> None:
        if self._open is not None:
            self._writer.add_event({**self._open, "end_step": int(end_step)})
            self._open = None

    def _finish(self, *, complete: bool) -> None:
        if self._writer is None:
            return
        self._add(self._pending)  # the last observation: no action taken in it
        self._close_intervention(self._step)
        info = self._last_info
        reason = info["termination_reason"]
        result = {
            "complete": complete,
            "termination_reason": getattr(reason, "value", str(reason)),
            **{k: float(v) for k, v in info["score"].items()},
            "steps": self._step,
            "time_s": float(info["state"].time_s),
            "route_length_m": float(self.env.unwrapped.world.backend.route.length_m),
            "interventions": sum(1 for e in self._writer.events if e["kind"] == "intervention"),
            "world_events": dict(sorted(self._world_events.items())),
        }
        self.paths.append(self._writer.close(result))
        self._writer = None
        self._pending = None

    def _add(self, row: dict) -> None:
        for name in row["events"]:
            self._world_events[name] = self._world_events.get(name, 0) + 1
        self._writer.add(row)

    def close(self):
        try:
            self._finish(complete=False)
        finally:
            super().close()


def _row(step: int, obs: dict, info: dict, reward: float, terminated: bool, truncated: bool) -> dict:
    state = info["state"]
    autopilot = info.get("autopilot_action")
    return {
        "step": step,
        "time_s": float(state.time_s),
        "camera": np.copy(obs["camera"]),  # the renderer may reuse its buffers
        "route": np.copy(obs["route"]),
        "speed_mps": float(obs["speed"][0]),
        "command": int(obs["command"]),
        "command_distance_m": float(obs["command_distance_m"][0]),
        "ego_x_m": float(state.ego.x_m),
        "ego_y_m": float(state.ego.y_m),
        "ego_yaw_rad": float(state.ego.yaw_rad),
        "policy_action": None,
        "executed_action": None,
        "autopilot_action": None if autopilot is None else np.asarray(autopilot, np.float32).tolist(),
        "driver": None,
        "intervention": None,
        "reward": float(reward),
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "events": [e.kind.name.lower() for e in state.events],
    }

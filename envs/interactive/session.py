"""The drive loop: a person, a policy and the env in a pygame window, at 20 Hz.

:class:`DriveSession` runs one env (already wrapped for its mode, see
:func:`envs.interactive.stack.build_drive_env`) with a policy and the person's input
devices. Each :meth:`DriveSession.tick` reads pygame's event queue once, carries out the
commands (pause, restart, quit, camera view, HUD, hand back), decides the action of
the mode, steps the env, and shows the frame:

* ``manual``: the person drives; the episode is a demonstration.
* ``copilot``: the policy drives; any control input from the person (a drive key
  pressed, a joystick axis moved off rest) takes over at once through the takeover
  wrapper (``take_over("human", "keyboard" | "joystick")``, then the person's action
  each step through ``set_override``), until the hand-back key (``hand_back()``). The
  person's ramps start from the action last applied, so a takeover does not jerk.
* ``shadow``: the person drives; the policy predicts silently inside the shadow
  wrapper, which marks where the two start to differ by more than the thresholds
  (``info["disagreement"]``); the HUD counts them.

:meth:`DriveSession.run` ticks until quit, paced at the env's rate times
``DriveConfig.speed`` (``0``: as fast as it computes). The keyboard's ramps advance by
the simulated time per step, so a scripted key sequence gives the same actions at any
pace.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.display import PygameWindow
from envs.interactive.controls import Command, ControlsConfig, InputDevices
from envs.interactive.hud import DriveHud, camera_views, drive_frame
from sim.errors import ConfigError, LoopdriveError
from sim.state import ActorType, EventKind

__all__ = ["MODES", "DriveConfig", "DriveSession", "DriveSummary", "Pacer", "open_pygame"]

#: the drive modes
MODES: tuple[str, ...] = ("manual", "copilot", "shadow")

#: events shown on the HUD as infractions (the Leaderboard's, and the route's endings)
_INFRACTIONS: dict[EventKind, str] = {
    EventKind.COLLISION_WALKER: "collision with a walker",
    EventKind.COLLISION_VEHICLE: "collision with a vehicle",
    EventKind.COLLISION_STATIC: "collision with a static object",
    EventKind.RED_LIGHT: "ran a red light",
    EventKind.STOP_SIGN: "ran a stop sign",
    EventKind.OUTSIDE_ROUTE_LANES: "left the route's lanes",
    EventKind.ROUTE_DEVIATION: "strayed from the route",
    EventKind.AGENT_BLOCKED: "blocked too long",
    EventKind.ROUTE_TIMEOUT: "route timeout",
}


@dataclass(frozen=True)
class DriveConfig:
    """How a drive runs.

    ``speed``: the real-time factor (1: 20 Hz as the env's ``dt_s`` says; 2: twice as
    fast; 0: as fast as it computes). ``episodes`` and ``max_steps`` (0: no limit) end
    the drive on their own, for headless runs. ``end_pause_s``: how long an ended
    episode stays on screen before the next starts (skipped at ``speed`` 0).
    ``shadow_steer`` and ``shadow_accel``: the differences between the person's and
    the policy's action that count as a disagreement in shadow mode (for the stack's
    shadow wrapper).
    """

    mode: str = "manual"
    speed: float = 1.0
    episodes: int = 0
    max_steps: int = 0
    end_pause_s: float = 2.0
    window_width_px: int = 1280
    message_s: float = 6.0
    infraction_s: float = 5.0
    shadow_steer: float = 0.3
    shadow_accel: float = 0.6
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"drive mode {self.mode!r} is unknown; use one of {', '.join(MODES)}")
        if not (math.isfinite(self.speed) and self.speed >= 0):
            raise ConfigError(f"drive speed must be >= 0 (0: as fast as possible), got {self.speed}")
        for name in ("episodes", "max_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"drive {name} must be >= 0 (0: no limit), got {getattr(self, name)}")
        if not 320 <= self.window_width_px <= 8192:
            raise ConfigError(f"drive window width must lie in [320, 8192] px, got {self.window_width_px}")
        for name in ("shadow_steer", "shadow_accel"):
            if not 0 < getattr(self, name) <= 2:
                raise ConfigError(f"drive {name} threshold must lie in (0, 2], got {getattr(self, name)}")


@dataclass
class DriveSummary:
    """What a drive did, for the CLI's last lines and for tests."""

    episodes: int = 0
    steps: int = 0
    interventions: int = 0
    disagreements: int = 0
    infractions: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    endings: list[str] = field(default_factory=list)


class Pacer:
    """Holds a loop to ``period_s`` per iteration on the wall clock (``0``: no waiting).
    Deadlines advance by whole periods, so short stalls are caught up; after a long
    one (more than a period behind) the schedule restarts instead of racing."""

    def __init__(self, period_s: float, clock: Callable[[], float] = time.perf_counter):
        self.period_s = period_s
        self._clock = clock
        self._deadline: float | None = None

    def wait(self) -> None:
        if self.period_s <= 0:
            return
        now = self._clock()
        if self._deadline is None or now - self._deadline > self.period_s:
            self._deadline = now
        self._deadline += self.period_s
        if self._deadline > now:
            time.sleep(self._deadline - now)


def open_pygame() -> Any:
    """pygame, imported quietly, its display initialised (no audio: none is needed)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    try:
        pygame.display.init()
    except pygame.error as exc:
        raise LoopdriveError(
            f"cannot open a window ({exc}); on a machine without a display set SDL_VIDEODRIVER=dummy"
        ) from None
    return pygame


def _infraction_text(event: Any) -> str:
    text = _INFRACTIONS[event.kind]
    if event.other_type >= 0 and event.kind != EventKind.COLLISION_STATIC:
        text += f" ({ActorType(event.other_type).name.lower()})"
    return f"{event.time_s:6.1f} s  {text}"


class DriveSession:
    """One person at the window with ``env`` and ``policy`` (see the module docstring).

    ``policy`` has ``reset(seed)`` and ``act(obs, info)``; the session asks it for
    actions in copilot mode (in shadow mode the stack's shadow wrapper does), and shows
    ``policy_name`` on the HUD. ``takeover`` is the takeover wrapper inside ``env``'s
    stack (copilot needs one). ``say`` receives every message for the person (they are
    also shown on the HUD).
    """

    def __init__(
        self,
        env: Any,
        policy: Any,
        *,
        policy_name: str = "policy",
        config: DriveConfig | None = None,
        controls: ControlsConfig | None = None,
        takeover: Any = None,
        say: Callable[[str], None] | None = None,
        title: str = "loopdrive drive",
    ):
        self.config = config or DriveConfig()
        if self.config.mode == "copilot" and takeover is None:
            raise ConfigError("copilot mode needs the takeover wrapper in the env stack")
        self.env = env
        self.policy = policy
        self.policy_name = policy_name
        self.takeover = takeover
        self.summary = DriveSummary()
        self._say_out = say if say is not None else (lambda text: print(text, file=sys.stderr))
        self._messages: list[tuple[str, float]] = []  # (text, shown until): before the devices speak
        self._pg = open_pygame()
        self.window = PygameWindow(title=f"{title} ({self.config.mode})", fps=0)
        self.devices = InputDevices(controls or ControlsConfig(), self._pg, self.say)
        base = env.unwrapped
        self.dt_s = float(base.config.world.dt_s)
        self._route_map = base.config.route_map
        self._views = camera_views(base.cameras.names)
        self._pacer = Pacer(self.dt_s / self.config.speed if self.config.speed > 0 else 0.0)
        self._infractions: list[tuple[str, float]] = []
        self._obs: dict[str, Any] = {}
        self._info: dict[str, Any] = {}
        self._last_action = np.zeros(2, np.float32)
        self.view = 0
        self.show_hud = True
        self.paused = False
        self.driver = self._default_driver()
        self.interventions = 0
        self.disagreements = 0
        self.steps = 0
        self._ended_at: float | None = None
        self._quit = False
        self._started = False

    # -- messages ----------------------------------------------------------------------

    def say(self, text: str) -> None:
        """Tell the person: stderr (or the ``say`` given) and the HUD for a few seconds."""
        self._messages.append((text, time.monotonic() + self.config.message_s))
        self.summary.messages.append(text)
        self._say_out(text)

    # -- episodes ----------------------------------------------------------------------

    def _default_driver(self) -> str:
        return "policy" if self.config.mode == "copilot" else "human"

    def start(self) -> None:
        """Open the window on the first episode (seeded by ``DriveConfig.seed``)."""
        self._reset(self.config.seed)
        self._started = True

    def _reset(self, seed: int | None) -> None:
        self._obs, self._info = self.env.reset(seed=seed)
        if self.config.mode == "copilot":  # (the shadow wrapper resets its own policy)
            self.policy.reset(int(self._info["episode_seed"]))
        self.devices.reset()
        self.driver = self._info.get("driver", self._default_driver())
        self.interventions = self.disagreements = 0
        self._infractions.clear()
        self._last_action = np.zeros(2, np.float32)
        self._ended_at = None
        self._show()

    def restart(self) -> None:
        """The episode again from its start (the same seed: the same route and traffic)."""
        self.paused = False
        self._reset(int(self._info["episode_seed"]))
        self.say("restarted the episode")

    # -- commands ----------------------------------------------------------------------

    def _command(self, command: Command) -> None:
        if command is Command.QUIT:
            self._quit = True
        elif command is Command.PAUSE:
            self.paused = not self.paused
        elif command is Command.RESTART:
            self.restart()
        elif command is Command.CAMERA:
            self.view = (self.view + 1) % len(self._views)
        elif command is Command.HUD:
            self.show_hud = not self.show_hud
        elif command is Command.HAND_BACK:
            self._hand_back()

    def _hand_back(self) -> None:
        if self.config.mode != "copilot":
            self.say(f"hand back: nothing to hand back in {self.config.mode} mode (the person drives)")
        elif self.driver == "human":
            self.takeover.hand_back()
            self.driver = "policy"
            self.say("control handed back to the policy")

    # -- the step ----------------------------------------------------------------------

    def _decide(self, touched_by: str) -> np.ndarray:
        """The action to step the env with (in copilot: the policy's; the person's goes
        to the takeover wrapper), after a takeover where the person touched a control."""
        obs, info = self._obs, self._info
        if self.config.mode == "copilot":
            policy_action = self.policy.act(obs, info)
            if touched_by and self.driver != "human":
                self.takeover.take_over("human", touched_by)
                self.driver = "human"
                self.devices.seed(self._last_action)
            person = self.devices.update(self.dt_s)
            if self.driver == "human":
                self.takeover.set_override(person)
            return policy_action
        return self.devices.update(self.dt_s)

    def _after_step(self, info: dict[str, Any], action: np.ndarray) -> None:
        executed = info.get("executed_action")
        self._last_action = np.asarray(executed if executed is not None else action, np.float32)
        if "driver" in info:
            self.driver = info["driver"]
        if info.get("intervention"):
            self.interventions += 1
            self.summary.interventions += 1
        if info.get("disagreement"):
            self.disagreements += 1
            self.summary.disagreements += 1
        now = time.monotonic()
        for event in info["state"].events:
            if event.kind in _INFRACTIONS:
                text = _infraction_text(event)
                self._infractions.append((text, now + self.config.infraction_s))
                self.summary.infractions.append(text)

    def _end_episode(self, info: dict[str, Any]) -> None:
        reason = info["termination_reason"].value
        score = info["score"]
        text = f"episode ended: {reason.replace('_', ' ')}, DS {score['driving_score']:.1f}"
        self.summary.episodes += 1
        self.summary.endings.append(reason)
        self._ended_at = time.monotonic()
        self.say(text)

    def _after_end(self) -> None:
        """After an ended episode has been shown: the next one, or the end of the drive."""
        wait = self.config.end_pause_s if self.config.speed > 0 else 0.0
        if time.monotonic() - self._ended_at < wait:
            return
        if self.config.episodes and self.summary.episodes >= self.config.episodes:
            self._quit = True
            return
        self._reset(None)

    def tick(self) -> bool:
        """One iteration: events, commands, one env step (unless paused or between
        episodes), the frame. ``False`` once the drive is over (quit, limits)."""
        if not self._started:
            self.start()
        frame = self.devices.poll(self._pg.event.get())
        for command in frame.commands:
            self._command(command)
            if self._quit:
                return False
        if self._ended_at is not None:
            self._after_end()
        elif not self.paused:
            action = self._decide(frame.touched_by)
            self._obs, _, terminated, truncated, self._info = self.env.step(action)
            self.steps += 1
            self.summary.steps += 1
            self._after_step(self._info, action)
            if terminated or truncated:
                self._end_episode(self._info)
        if self._quit:
            return False
        self._show()
        return not (self.config.max_steps and self.steps >= self.config.max_steps)

    def run(self) -> DriveSummary:
        """Tick until the drive is over, paced (see :class:`DriveConfig`); the summary."""
        while self.tick():
            self._pacer.wait()
        return self.summary

    # -- the window --------------------------------------------------------------------

    def _hud(self) -> DriveHud:
        now = time.monotonic()
        self._messages = [(t, until) for t, until in self._messages if until > now]
        self._infractions = [(t, until) for t, until in self._infractions if until > now]
        banner = ""
        if self._ended_at is not None and self.summary.endings:
            banner = f"ended: {self.summary.endings[-1].replace('_', ' ')}"
        return DriveHud(
            mode=self.config.mode,
            driver=self.driver,
            policy_name=self.policy_name,
            interventions=self.interventions,
            disagreements=self.disagreements,
            infractions=[t for t, _ in self._infractions[-5:]],
            messages=[t for t, _ in self._messages[-3:]],
            paused=self.paused,
            banner=banner,
            view_name=self._views[self.view],
        )

    def frame(self) -> np.ndarray:
        """The window's picture now (``uint8`` RGB)."""
        return drive_frame(
            self._obs,
            self._info,
            self._route_map,
            self._hud(),
            view=self.view,
            show_hud=self.show_hud,
            min_width_px=self.config.window_width_px,
        )

    def _show(self) -> None:
        self.window.show(self.frame())

    def screenshot(self, path: str | Path) -> Path:
        """Save what the window shows now (PNG), creating the folder."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.window.save(path)
        return path

    def close(self) -> None:
        """Close the env (the recorder finishes its episode) and the window."""
        self.env.close()
        self.window.close()

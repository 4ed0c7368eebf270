"""The person's controls: keyboard with smooth ramps, a game pad or wheel, commands.

:class:`ControlsConfig` says which keys and joystick axes and buttons do what, and how
fast the keyboard ramps; :func:`load_controls` reads it from a small TOML or YAML file.
A bad file never stops a drive: a missing file, a value of the wrong type, an unknown
section, action or key name each give one clear message, and the defaults are kept
for whatever was wrong.

:class:`InputDevices` reads pygame events (never ``pygame.key.get_pressed``, so events
posted with ``pygame.event.post`` drive it like real ones) and turns them into

* commands (:class:`Command`: pause, restart, quit, camera, hud, hand back), and
* the person's action ``[steer, accel]`` in ``[-1, 1]``: a held arrow key moves the
  steering towards full lock at ``steer_rate_per_s`` and, released, it returns to the
  centre at ``steer_return_per_s``; throttle and brake ramp up and down the same way
  (``accel = throttle - brake``). A joystick's axes, where they are off their rest
  position, take precedence over the keyboard.

Joysticks come and go with ``JOYDEVICEADDED`` / ``JOYDEVICEREMOVED``: a removed one is
dropped with a message and the keyboard drives on, its steering ramp starting from
where the joystick left it.

An example file (every section and field optional)::

    [ramps]
    steer_rate_per_s = 2.5

    [keys]
    steer_left = ["left", "a"]
    hand_back = ["return"]

    [joystick]
    steer = { axis = 0, deadzone = 0.05 }
    throttle = { axis = 5, rest = -1.0 }
    brake = { axis = 2, rest = -1.0 }
    buttons = { hand_back = 0, pause = 7 }
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "Command",
    "DRIVE_ACTIONS",
    "DEFAULT_KEYS",
    "DEFAULT_BUTTONS",
    "RampConfig",
    "AxisConfig",
    "JoystickConfig",
    "ControlsConfig",
    "load_controls",
    "InputDevices",
    "InputFrame",
]


class Command(Enum):
    """What a key or button asks of the drive loop (besides driving)."""

    PAUSE = "pause"
    RESTART = "restart"
    QUIT = "quit"
    CAMERA = "camera"
    HUD = "hud"
    HAND_BACK = "hand_back"


#: the actions that drive the car (a press of one of these is "control input")
DRIVE_ACTIONS: tuple[str, ...] = ("steer_left", "steer_right", "throttle", "brake")
#: key names (pygame's, as ``pygame.key.key_code`` reads them) per action
DEFAULT_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "steer_left": ("left", "a"),
        "steer_right": ("right", "d"),
        "throttle": ("up", "w"),
        "brake": ("down", "s", "space"),
        "pause": ("p",),
        "restart": ("r",),
        "quit": ("escape", "q"),
        "camera": ("c", "tab"),
        "hud": ("h",),
        "hand_back": ("return", "b"),
    }
)
#: joystick button per command (an Xbox-style pad as SDL numbers it)
DEFAULT_BUTTONS: Mapping[str, int] = MappingProxyType(
    {"hand_back": 0, "hud": 2, "camera": 3, "restart": 6, "pause": 7}
)


@dataclass(frozen=True)
class RampConfig:
    """How fast the keyboard's steering and pedals move, in full ranges per second."""

    steer_rate_per_s: float = 2.5  # held: from centre to full lock in 0.4 s
    steer_return_per_s: float = 4.0  # released: back to the centre
    throttle_rate_per_s: float = 2.0
    throttle_release_per_s: float = 4.0
    brake_rate_per_s: float = 4.0
    brake_release_per_s: float = 6.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if value <= 0:
                raise ValueError(f"{f.name} must be > 0, got {value}")


@dataclass(frozen=True)
class AxisConfig:
    """One joystick axis. ``axis`` -1 switches it off. ``rest`` is where the axis sits
    untouched: 0 for a centred stick or wheel (the value spans [-1, 1]), -1 or 1 for a
    trigger or pedal (the value spans [0, 1], 0 at rest). ``invert`` flips the raw
    value first; readings within ``deadzone`` of rest count as rest."""

    axis: int = -1
    invert: bool = False
    deadzone: float = 0.05
    rest: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.axis, bool) or not isinstance(self.axis, int) or self.axis < -1:
            raise ValueError(f"axis must be an integer >= 0 (or -1: off), got {self.axis!r}")
        if not isinstance(self.invert, bool):
            raise ValueError(f"invert must be true or false, got {self.invert!r}")
        if not isinstance(self.deadzone, int | float) or not 0 <= self.deadzone < 1:
            raise ValueError(f"deadzone must lie in [0, 1), got {self.deadzone!r}")
        if self.rest not in (-1, 0, 1):
            raise ValueError(f"rest must be -1, 0 or 1, got {self.rest!r}")

    def value(self, raw: float) -> float:
        """The axis reading ``raw`` (pygame's [-1, 1]) in control units (0 at rest)."""
        v = -float(raw) if self.invert else float(raw)
        if self.rest == 0:
            magnitude = (abs(v) - self.deadzone) / (1.0 - self.deadzone)
            return math.copysign(min(max(magnitude, 0.0), 1.0), v)
        pressed = (v - self.rest) / (-2.0 * self.rest)  # rest -> 0, the other end -> 1
        return min(max((pressed - self.deadzone) / (1.0 - self.deadzone), 0.0), 1.0)


@dataclass(frozen=True)
class JoystickConfig:
    """A game pad or wheel: the axes for steering, throttle and brake, buttons per command."""

    steer: AxisConfig = field(default_factory=lambda: AxisConfig(axis=0))
    throttle: AxisConfig = field(default_factory=lambda: AxisConfig(axis=5, rest=-1.0))
    brake: AxisConfig = field(default_factory=lambda: AxisConfig(axis=2, rest=-1.0))
    buttons: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_BUTTONS))


@dataclass(frozen=True)
class ControlsConfig:
    """Keys per action (pygame key names), the joystick and the keyboard's ramps."""

    keys: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_KEYS))
    joystick: JoystickConfig = field(default_factory=JoystickConfig)
    ramps: RampConfig = field(default_factory=RampConfig)


# -- the file --------------------------------------------------------------------------


def _read_file(path: Path) -> Any:
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text) or {}
    return tomllib.loads(text)


def _ramps(data: Any, where: str, say: Callable[[str], None]) -> RampConfig:
    if not isinstance(data, dict):
        say(f"{where}: [ramps] must be a table; using the default ramps")
        return RampConfig()
    names = {f.name for f in dataclasses.fields(RampConfig)}
    kept = {}
    for name, value in data.items():
        if name not in names:
            say(f"{where}: [ramps] has no setting {name!r} (valid: {', '.join(sorted(names))}); ignored")
            continue
        try:
            RampConfig(**{name: value})
        except ValueError as exc:
            say(f"{where}: [ramps] {exc}; keeping the default")
            continue
        kept[name] = value
    return RampConfig(**kept)


def _keys(data: Any, where: str, say: Callable[[str], None]) -> dict[str, tuple[str, ...]]:
    keys = dict(DEFAULT_KEYS)
    if not isinstance(data, dict):
        say(f"{where}: [keys] must be a table of action = [key names]; using the default keys")
        return keys
    for action, names in data.items():
        if action not in keys:
            say(f"{where}: [keys] unknown action {action!r} (valid: {', '.join(DEFAULT_KEYS)}); ignored")
            continue
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            say(f"{where}: [keys] {action} must be a key name or a list of them; keeping the default")
            continue
        keys[action] = tuple(names)
    return keys


def _axis(data: Any, default: AxisConfig, where: str, say: Callable[[str], None]) -> AxisConfig:
    if not isinstance(data, dict):
        say(f"{where} must be a table like {{ axis = 0 }}; keeping the default")
        return default
    try:
        return dataclasses.replace(default, **data)
    except (TypeError, ValueError) as exc:
        say(f"{where}: {exc}; keeping the default (axis {default.axis})")
        return default


def _buttons(data: Any, where: str, say: Callable[[str], None]) -> dict[str, int]:
    buttons = dict(DEFAULT_BUTTONS)
    if not isinstance(data, dict):
        say(f"{where} must be a table of command = button number; using the default buttons")
        return buttons
    commands = {c.value for c in Command}
    for name, number in data.items():
        if name not in commands:
            say(f"{where}: unknown command {name!r} (valid: {', '.join(sorted(commands))}); ignored")
        elif isinstance(number, bool) or not isinstance(number, int) or number < 0:
            say(f"{where}: {name} must be a button number >= 0, got {number!r}; keeping the default")
        else:
            buttons[name] = number
    return buttons


def _joystick(data: Any, where: str, say: Callable[[str], None]) -> JoystickConfig:
    base = JoystickConfig()
    if not isinstance(data, dict):
        say(f"{where}: [joystick] must be a table; using the default joystick mapping")
        return base
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in ("steer", "throttle", "brake"):
            values[name] = _axis(value, getattr(base, name), f"{where}: [joystick] {name}", say)
        elif name == "buttons":
            values[name] = _buttons(value, f"{where}: [joystick] buttons", say)
        else:
            valid = "steer, throttle, brake, buttons"
            say(f"{where}: [joystick] has no setting {name!r} (valid: {valid}); ignored")
    return dataclasses.replace(base, **values)


def load_controls(path: str | Path | None) -> tuple[ControlsConfig, list[str]]:
    """The controls in ``path`` (TOML, or YAML for ``.yaml``/``.yml``), and the messages
    about what in it was wrong and replaced by the defaults. ``None``: the defaults."""
    if path is None:
        return ControlsConfig(), []
    path = Path(path)
    messages: list[str] = []
    say = messages.append
    where = f"controls file {path}"
    try:
        data = _read_file(path)
    except FileNotFoundError:
        return ControlsConfig(), [f"{where} not found; driving with the default keys (arrows/WASD)"]
    except (OSError, UnicodeDecodeError) as exc:
        return ControlsConfig(), [f"{where} cannot be read ({exc}); driving with the default keys"]
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError: a malformed file
        reason = str(exc).splitlines()[0]
        return ControlsConfig(), [f"{where} is not valid {_kind(path)} ({reason}); using the default keys"]
    if not isinstance(data, dict):
        return ControlsConfig(), [f"{where} must hold tables (keys, joystick, ramps); using the defaults"]
    parts: dict[str, Any] = {}
    readers = {"keys": _keys, "joystick": _joystick, "ramps": _ramps}
    for section, value in data.items():
        reader = readers.get(section)
        if reader is None:
            say(f"{where}: unknown section [{section}] (valid: keys, joystick, ramps); ignored")
            continue
        parts[section] = reader(value, where, say)
    return ControlsConfig(**parts), messages


def _kind(path: Path) -> str:
    return "YAML" if path.suffix.lower() in (".yaml", ".yml") else "TOML"


# -- the devices -----------------------------------------------------------------------


@dataclass
class InputFrame:
    """What one batch of events asked for: commands in order, and whether the person
    touched the controls (a drive key pressed or a joystick axis moved off rest), by
    which device (``"keyboard"`` or ``"joystick"``; empty when untouched)."""

    commands: list[Command] = field(default_factory=list)
    touched_by: str = ""


def _read_axis(axis: AxisConfig, raw_by_axis: dict[int, float]) -> float:
    """``axis``'s value from the latest raw readings (at rest until it has moved)."""
    if axis.axis < 0 or axis.axis not in raw_by_axis:
        return 0.0
    return axis.value(raw_by_axis[axis.axis])


def _toward(value: float, target: float, step: float) -> float:
    if value < target:
        return min(value + step, target)
    return max(value - step, target)


class InputDevices:
    """The keyboard and any joysticks, read from pygame events (see the module docstring).

    ``pygame`` is the imported module (its display initialised); ``say`` receives every
    message for the person (unknown key names, joysticks plugged in and out).
    """

    def __init__(self, config: ControlsConfig, pygame: Any, say: Callable[[str], None]):
        self.config = config
        self._pg = pygame
        self._say = say
        self._key_actions = self._resolve_keys(config.keys)
        self._button_commands = {n: Command(c) for c, n in config.joystick.buttons.items()}
        self._held: set[str] = set()  # drive actions whose key is down
        self._held_keys: dict[int, str] = {}
        self._joysticks: dict[int, Any] = {}  # instance id -> pygame Joystick
        self._names: dict[int, str] = {}
        self._axes: dict[int, dict[int, float]] = {}  # instance id -> axis -> raw value
        self.steer = 0.0  # keyboard ramps
        self.throttle = 0.0
        self.brake = 0.0
        pygame.joystick.init()

    def _resolve_keys(self, keys: Mapping[str, tuple[str, ...]]) -> dict[int, str]:
        out: dict[int, str] = {}
        for action, names in keys.items():
            codes, bad = [], []
            for name in names:
                try:
                    codes.append(self._pg.key.key_code(name))
                except ValueError:
                    bad.append(name)
            if bad:
                default = DEFAULT_KEYS[action]
                self._say(
                    f"controls: unknown key name {', '.join(map(repr, bad))} for {action} "
                    f"(pygame key names, e.g. 'left', 'a', 'space', 'return'); "
                    + ("keeping the others" if codes else f"keeping the default ({', '.join(default)})")
                )
                if not codes:
                    codes = [self._pg.key.key_code(n) for n in default]
            for code in codes:
                out[code] = action
        return out

    # -- events ------------------------------------------------------------------------

    def poll(self, events: list[Any]) -> InputFrame:
        """Apply a batch of pygame events; what they ask for."""
        frame = InputFrame()
        for event in events:
            self._handle(event, frame)
        return frame

    def _handle(self, event: Any, frame: InputFrame) -> None:
        pg = self._pg
        kind = event.type
        if kind == pg.KEYDOWN:
            self._key(event.key, True, frame)
        elif kind == pg.KEYUP:
            self._key(event.key, False, frame)
        elif kind == pg.QUIT:
            frame.commands.append(Command.QUIT)
        elif kind == getattr(pg, "WINDOWFOCUSLOST", -1):
            self.release_keys()  # a key released in another window never sends KEYUP here
        elif kind == pg.JOYAXISMOTION:
            self._axis_motion(event.instance_id, event.axis, event.value, frame)
        elif kind == pg.JOYBUTTONDOWN:
            command = self._button_commands.get(event.button)
            if command is not None:
                frame.commands.append(command)
        elif kind == pg.JOYDEVICEADDED:
            self._added(event.device_index)
        elif kind == pg.JOYDEVICEREMOVED:
            self._removed(event.instance_id)

    def _key(self, code: int, down: bool, frame: InputFrame) -> None:
        action = self._key_actions.get(code)
        if action is None:
            return
        if action in DRIVE_ACTIONS:
            if down:
                self._held_keys[code] = action
                frame.touched_by = frame.touched_by or "keyboard"
            else:
                self._held_keys.pop(code, None)
            self._held = set(self._held_keys.values())
        elif down:
            frame.commands.append(Command(action))

    def _axis_motion(self, instance: int, axis: int, raw: float, frame: InputFrame) -> None:
        axes = self._axes.setdefault(instance, {})
        before = self._joystick_action(instance)
        axes[axis] = float(raw)
        after = self._joystick_action(instance)
        if after is not None and before is None:
            frame.touched_by = frame.touched_by or "joystick"

    def _added(self, device_index: int) -> None:
        try:
            joystick = self._pg.joystick.Joystick(device_index)
            joystick.init()
        except self._pg.error as exc:
            self._say(
                f"joystick {device_index} could not be opened ({exc}); driving goes on with the keyboard"
            )
            return
        instance = joystick.get_instance_id()
        name = joystick.get_name()
        self._joysticks[instance] = joystick
        self._names[instance] = name
        self._axes[instance] = {}
        n_axes = joystick.get_numaxes()
        self._say(f"joystick '{name}' connected ({n_axes} axes, {joystick.get_numbuttons()} buttons)")
        cfg = self.config.joystick
        for part in ("steer", "throttle", "brake"):
            axis = getattr(cfg, part).axis
            if axis >= n_axes:
                self._say(f"joystick '{name}' has no axis {axis} for {part} ({n_axes} axes); {part} off")

    def _removed(self, instance: int) -> None:
        action = self._joystick_action(instance)
        if action is not None:  # the keyboard takes over where the joystick left off
            self.steer = float(action[0])
        self._axes.pop(instance, None)
        joystick = self._joysticks.pop(instance, None)
        name = self._names.pop(instance, f"#{instance}")
        if joystick is not None:
            with contextlib.suppress(self._pg.error):  # already gone with the device
                joystick.quit()
        self._say(f"joystick '{name}' unplugged; driving goes on with the keyboard")

    def release_keys(self) -> None:
        """Forget every held key (focus lost, restart, hand back)."""
        self._held_keys.clear()
        self._held = set()

    # -- the action --------------------------------------------------------------------

    @property
    def joystick_names(self) -> tuple[str, ...]:
        return tuple(self._names.values())

    @property
    def held(self) -> frozenset[str]:
        """The drive actions whose key is held down."""
        return frozenset(self._held)

    def _joystick_action(self, instance: int) -> np.ndarray | None:
        """This joystick's ``[steer, accel]``, or ``None`` while all its axes are at rest."""
        axes = self._axes.get(instance)
        if not axes:
            return None
        cfg = self.config.joystick
        steer, throttle, brake = (_read_axis(a, axes) for a in (cfg.steer, cfg.throttle, cfg.brake))
        if steer == 0.0 and throttle == 0.0 and brake == 0.0:
            return None
        return np.array([steer, throttle - brake], np.float32)

    def seed(self, action: np.ndarray) -> None:
        """Start the keyboard's ramps from ``action`` (a takeover without a jump)."""
        steer, accel = float(action[0]), float(action[1])
        self.steer = min(max(steer, -1.0), 1.0)
        self.throttle = min(max(accel, 0.0), 1.0)
        self.brake = min(max(-accel, 0.0), 1.0)

    def reset(self) -> None:
        """Centre the ramps and forget held keys (a new episode)."""
        self.steer = self.throttle = self.brake = 0.0
        self.release_keys()

    def update(self, dt_s: float) -> np.ndarray:
        """Advance the keyboard's ramps by ``dt_s``; the person's ``float32 [steer, accel]``
        (a joystick off its rest position wins over the keyboard)."""
        r = self.config.ramps
        held = self._held
        target = float(("steer_right" in held) - ("steer_left" in held))
        if target == 0.0:
            rate = r.steer_return_per_s
        elif self.steer * target >= 0.0:
            rate = r.steer_rate_per_s
        else:  # the other way: at least as fast as letting go
            rate = max(r.steer_return_per_s, r.steer_rate_per_s)
        self.steer = _toward(self.steer, target, rate * dt_s)
        up, down = "throttle" in held, "brake" in held
        throttle_rate = r.throttle_rate_per_s if up else r.throttle_release_per_s
        self.throttle = _toward(self.throttle, float(up), throttle_rate * dt_s)
        brake_rate = r.brake_rate_per_s if down else r.brake_release_per_s
        self.brake = _toward(self.brake, float(down), brake_rate * dt_s)
        for instance in self._axes:
            action = self._joystick_action(instance)
            if action is not None:
                return action
        return np.array([self.steer, self.throttle - self.brake], np.float32)

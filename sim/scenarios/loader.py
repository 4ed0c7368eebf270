"""Loading scenario and suite files (YAML) into typed objects, with one-line errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from sim.errors import ConfigError, LoopdriveError, MapError
from sim.maps import CARLA_PREFIX, GENERATED_PREFIX, resolve_map, shared_dir
from sim.scenario import RouteRequest, Scenario, scenario_from_dict

__all__ = [
    "LIBRARY_DIR",
    "SUITES_DIR",
    "Suite",
    "library_names",
    "load_scenario",
    "load_suite",
    "suite_names",
    "scenario_unavailable",
    "suite_jobs",
    "MissingData",
]

#: the library's scenario files and suites (package data)
LIBRARY_DIR = Path(__file__).resolve().parent / "library"
SUITES_DIR = Path(__file__).resolve().parent / "suites"
_ROUTE_KEYS = tuple(f.name for f in dataclasses.fields(RouteRequest)) + ("leaderboard",)


def library_names() -> list[str]:
    """Names of the library's scenarios (their file names without ``.yaml``), sorted."""
    return sorted(p.stem for p in LIBRARY_DIR.glob("*.yaml"))


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def _display(path: Path) -> str:
    """How messages name a file: relative to the package for library files."""
    try:
        return str(path.resolve().relative_to(LIBRARY_DIR.parent.parent))
    except ValueError:
        return str(path)


def _scenario_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"{path}: no such scenario file")
        return path
    path = LIBRARY_DIR / f"{text}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown scenario {text!r}; library scenarios: {', '.join(library_names())} "
            "(or give a .yaml path)"
        )
    return path


def _read_yaml(path: Path, what: str) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{_display(path)}:{where} not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{_display(path)}: a {what} file is a mapping of keys, got {type(data).__name__}")
    return data


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A library scenario by name, or a scenario file by path; ConfigError (file, key
    path, reason) on any mistake. A CARLA town or route file that is absent does not
    fail here unless the route needs reading (see :func:`scenario_unavailable`)."""
    path = _scenario_path(name_or_path)
    data = _read_yaml(path, "scenario")
    shown = _display(path)
    data.setdefault("name", path.stem)
    try:
        data["map"] = _map_spec(data.get("map"), path)
        if isinstance(data.get("route"), dict):
            data["route"] = _route(dict(data["route"]), path)
        return scenario_from_dict(data)
    except LoopdriveError as exc:
        raise type(exc)(f"{shown}: {exc}") from None


def _map_spec(value, path: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError("map: missing; give generated:SEED, carla:TOWN or a path to an .xodr/.osm file")
    if value.startswith((GENERATED_PREFIX, CARLA_PREFIX)):
        return value
    file = Path(value) if Path(value).is_absolute() else (path.parent / value)
    if not file.is_file():
        raise ConfigError(
            f"map: no such map file {file} (give generated:SEED, carla:TOWN or an existing path)"
        )
    return str(file.resolve())


def _route(route: dict, path: Path) -> dict:
    unknown = sorted(set(route) - set(_ROUTE_KEYS))
    if unknown:
        raise ConfigError(
            f"route: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ROUTE_KEYS))}"
        )
    board = route.pop("leaderboard", None)
    if board is None:
        return route
    if not isinstance(board, dict) or set(board) != {"file", "id"}:
        raise ConfigError("route.leaderboard: give {file: ROUTES.xml, id: ROUTE_ID}")
    from sim.maps.leaderboard import read_route_file, select_route

    rel = str(board["file"])
    candidates = [path.parent / rel, shared_dir() / "routes" / "carla_leaderboard" / rel]
    file = next((c for c in candidates if c.is_file()), None)
    if file is None:
        raise MissingData(
            f"route.leaderboard.file: {rel} not found (looked in {', '.join(map(str, candidates))})"
        )
    spec = select_route(read_route_file(file), str(board["id"]))
    route["keypoints_xyz_m"] = [[float(c) for c in p] for p in spec.keypoints_xyz_m]
    if spec.keypoint_yaw_rad is not None:
        route["keypoint_yaw_rad"] = [float(v) for v in spec.keypoint_yaw_rad]
    route.setdefault("route_id", spec.route_id)
    return route


class MissingData(LoopdriveError):
    """Shared data a scenario needs (a CARLA town, a Leaderboard route file) is absent."""


def scenario_unavailable(scenario: Scenario) -> str | None:
    """Why the scenario cannot run here (its CARLA town is absent), or None."""
    try:
        resolve_map(scenario.map)
    except MapError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class Suite:
    """Scenarios x seeds: ``entries`` are (scenario name or path, seed) pairs."""

    name: str
    description: str
    entries: tuple[tuple[str, int], ...]


def load_suite(name_or_path: str | Path) -> Suite:
    """A suite file: ``scenarios`` (library names, or ``all``), ``seeds`` (a list of
    integers) and an optional ``description``."""
    text = str(name_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) else SUITES_DIR / f"{text}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown suite {text!r}; suites: {', '.join(suite_names())} (or give a .yaml path)"
        )
    data = _read_yaml(path, "suite")
    shown = _display(path)
    allowed = ("name", "description", "scenarios", "seeds")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(f"{shown}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    scenarios = data.get("scenarios")
    if scenarios == "all":
        scenarios = library_names()
    if not isinstance(scenarios, list) or not scenarios or not all(isinstance(s, str) for s in scenarios):
        raise ConfigError(f"{shown}: scenarios: must be a non-empty list of scenario names (or all)")
    names = library_names()
    for k, s in enumerate(scenarios):
        if s not in names and not s.endswith((".yaml", ".yml")):
            raise ConfigError(f"{shown}: scenarios[{k}]: unknown scenario {s!r}; library: {', '.join(names)}")
    seeds = data.get("seeds", [0])
    ok = (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in seeds)
    )
    if not ok:
        raise ConfigError(f"{shown}: seeds: must be a non-empty list of integers >= 0, got {seeds!r}")
    entries = tuple((s, int(seed)) for s in scenarios for seed in seeds)
    return Suite(str(data.get("name", path.stem)), str(data.get("description", "")), entries)


def suite_jobs(suite: Suite):
    """The suite's entries as :class:`sim.evaluation.RouteJob` s, and (name, reason) of
    the entries skipped because their data is absent (a CARLA town)."""
    from sim.evaluation import RouteJob

    jobs, skipped = [], []
    cache: dict[str, Scenario | None] = {}
    for name, seed in suite.entries:
        if name not in cache:
            try:
                scenario = load_scenario(name)
                reason = scenario_unavailable(scenario)
            except MissingData as exc:
                scenario, reason = None, str(exc)
            cache[name] = scenario
            if reason:
                cache[name] = None
                skipped.append((name, reason))
        if cache[name] is not None:
            sc = cache[name]
            jobs.append(RouteJob(f"{sc.name}#{seed}", sc.map, sc, seed))
    return jobs, skipped

"""Closed-loop evaluation of a driver on a suite of routes, with Leaderboard scores.

A *driver* is anything with ``act(state) -> Control`` built per route by a factory
``make_driver(backend) -> driver`` (the autopilot, a random policy, later a trained
network through the env). Scripts call :func:`evaluate_suite`; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from sim.embedded import EmbeddedBackend
from sim.errors import RouteError
from sim.maps.leaderboard import RouteSpec
from sim.scenario import RouteRequest, Scenario, TrafficConfig, WorldConfig
from sim.scoring import RouteResult, score_route

__all__ = ["RouteJob", "jobs_from_specs", "random_jobs", "run_route", "evaluate_suite"]


@dataclass(frozen=True)
class RouteJob:
    """One route to drive: the scenario and the seed."""

    route_id: str
    town: str
    scenario: Scenario
    seed: int


def jobs_from_specs(
    map_spec: str,
    town: str,
    specs: Iterable[RouteSpec],
    traffic: TrafficConfig,
    seed: int,
    world: WorldConfig | None = None,
) -> list[RouteJob]:
    """Leaderboard routes (already filtered to the map's town) as jobs."""
    jobs = []
    for k, spec in enumerate(specs):
        yaws = tuple(float(v) for v in spec.keypoint_yaw_rad) if spec.keypoint_yaw_rad is not None else ()
        route = RouteRequest(
            tuple(tuple(float(c) for c in p) for p in spec.keypoints_xyz_m), yaws, route_id=spec.route_id
        )
        scenario = Scenario(
            map=map_spec,
            route=route,
            traffic=traffic,
            world=world or WorldConfig(),
            name=f"{town}/{spec.route_id}",
        )
        jobs.append(RouteJob(spec.route_id, town, scenario, seed + k))
    return jobs


def random_jobs(
    map_spec: str,
    town: str,
    count: int,
    length_m: float,
    traffic: TrafficConfig,
    seed: int,
    world: WorldConfig | None = None,
) -> list[RouteJob]:
    """``count`` random routes of about ``length_m`` (the route is drawn from the job's seed)."""
    return [
        RouteJob(
            f"random_{k}",
            town,
            Scenario(
                map=map_spec,
                route=RouteRequest(random_length_m=length_m, route_id=f"random_{k}"),
                traffic=traffic,
                world=world or WorldConfig(),
                name=f"{town}/random_{k}",
            ),
            seed + k,
        )
        for k in range(count)
    ]


def run_route(backend: EmbeddedBackend, job: RouteJob, make_driver: Callable) -> RouteResult:
    """Drive one route until it ends (completed, deviated, blocked or timed out)."""
    state = backend.reset(job.scenario, job.seed)
    driver = make_driver(backend)
    monitor = backend.monitor
    while not monitor.done:
        backend.apply_control(driver.act(state))
        state = backend.tick()
    return score_route(monitor, route_id=job.route_id, town=job.town)


def evaluate_suite(
    jobs: list[RouteJob],
    make_driver: Callable,
    *,
    backend: EmbeddedBackend | None = None,
    skip_unplannable: bool = False,
) -> Iterator[tuple[RouteJob, RouteResult | None, str]]:
    """Drive every job; yields (job, result, message) as each route ends. A route that
    cannot be planned yields ``None`` with the reason when ``skip_unplannable``."""
    backend = backend or EmbeddedBackend()
    for job in jobs:
        try:
            yield job, run_route(backend, job, make_driver), ""
        except RouteError as exc:
            if not skip_unplannable:
                raise
            yield job, None, str(exc)


class RandomDriver:
    """Uniform random controls from a seeded generator (a baseline)."""

    def __init__(self, seed: int):
        self._rng = np.random.default_rng(seed)

    def act(self, state):
        from sim.state import Control

        steer, accel = self._rng.uniform(-1.0, 1.0, 2)
        return Control(float(steer), float(accel))

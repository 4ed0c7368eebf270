"""Leaderboard score arithmetic on hand-made events, and a scored Town01 route."""

from __future__ import annotations

import json

import pytest

from sim.infractions import InfractionMonitor
from sim.scoring import INFRACTION_KINDS, PENALTY, SuiteResult, infraction_penalty, route_result, score_route
from sim.state import ActorType, Event, EventKind
from tests.conftest import needs_shared, shared_map
from tests.test_infractions import ENTRY, Driver, lane_route, straight_chain


def ev(kind: EventKind, t: float = 1.0, other_id: int = -1, other_type: int = -1) -> Event:
    return Event(kind, t, (1.0, 2.0, 0.0), other_id, other_type)


def test_penalty_table_is_the_leaderboards():
    assert dict(PENALTY) == {
        EventKind.COLLISION_WALKER: 0.50,
        EventKind.COLLISION_VEHICLE: 0.60,
        EventKind.COLLISION_STATIC: 0.65,
        EventKind.RED_LIGHT: 0.70,
        EventKind.STOP_SIGN: 0.80,
        EventKind.ROUTE_TIMEOUT: 0.70,
    }
    with pytest.raises(TypeError):
        PENALTY[EventKind.RED_LIGHT] = 1.0  # read-only


def test_penalty_multiplies_per_event():
    assert infraction_penalty([]) == 1.0
    assert infraction_penalty([ev(EventKind.COLLISION_VEHICLE), ev(EventKind.RED_LIGHT)]) == pytest.approx(
        0.42
    )
    assert infraction_penalty([EventKind.COLLISION_WALKER] * 2) == pytest.approx(0.25)
    kinds = [EventKind.COLLISION_STATIC, EventKind.STOP_SIGN, EventKind.ROUTE_TIMEOUT]
    assert infraction_penalty(kinds) == pytest.approx(0.65 * 0.8 * 0.7)
    # no factor for these: deviation and blocked cost the rest of the route instead
    free = [EventKind.ROUTE_DEVIATION, EventKind.AGENT_BLOCKED, EventKind.ROUTE_COMPLETED,
            EventKind.OUTSIDE_ROUTE_LANES, EventKind.NPC_COLLISION]  # fmt: skip
    assert infraction_penalty(free) == 1.0
    assert infraction_penalty([EventKind.RED_LIGHT], outside_share=0.2) == pytest.approx(0.56)
    assert infraction_penalty([], outside_share=1.7) == 0.0


def test_route_result_scores_and_counts():
    events = [
        ev(EventKind.COLLISION_VEHICLE, 3.0, 7, ActorType.CAR),
        ev(EventKind.RED_LIGHT, 9.5),
        ev(EventKind.OUTSIDE_ROUTE_LANES, 12.0),
        ev(EventKind.ROUTE_DEVIATION, 20.0),
    ]
    r = route_result(
        route_id="7",
        town="Town01",
        events=events,
        completion_share=0.5,
        length_m=800.0,
        distance_driven_m=420.0,
        duration_s=20.0,
        end_reason=EventKind.ROUTE_DEVIATION,
    )
    assert r.route_completion == pytest.approx(50.0)
    assert r.infraction_penalty == pytest.approx(0.42)
    assert r.driving_score == pytest.approx(21.0)
    assert r.infractions["collision_vehicle"] == 1 and r.infractions["red_light"] == 1
    assert r.infractions["outside_route_lanes"] == 1 and r.infractions["route_deviation"] == 1
    assert sum(r.infractions.values()) == 4
    assert r.km_completed == pytest.approx(0.4)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["driving_score"] == 21.0 and d["route_completion"] == 50.0 and d["infraction_penalty"] == 0.42
    assert d["end_reason"] == "route_deviation"
    assert [e["type"] for e in d["events"]] == ["collision_vehicle", "red_light", "outside_route_lanes",
                                                "route_deviation"]  # fmt: skip
    assert d["events"][0]["other_type"] == "car"


def test_outside_share_scales_the_penalty():
    r = route_result(route_id="a", town="T", events=[], completion_share=1.0, length_m=100.0,
                     outside_lanes_share=0.2)  # fmt: skip
    assert r.infraction_penalty == pytest.approx(0.8) and r.driving_score == pytest.approx(80.0)


def test_suite_means_and_infractions_per_km():
    a = route_result(
        route_id="0",
        town="Town01",
        events=[ev(EventKind.COLLISION_VEHICLE), ev(EventKind.RED_LIGHT)],
        completion_share=0.5,
        length_m=1000.0,
    )  # DS 21, 0.5 km completed
    b = route_result(
        route_id="1",
        town="Town01",
        events=[ev(EventKind.ROUTE_COMPLETED)],
        completion_share=1.0,
        length_m=1500.0,
    )  # DS 100, 1.5 km
    c = route_result(
        route_id="2",
        town="Town03",
        events=[ev(EventKind.COLLISION_WALKER), ev(EventKind.AGENT_BLOCKED)],
        completion_share=0.0,
        length_m=700.0,
    )  # DS 0, 0 km completed -> counted as 1 m
    suite = SuiteResult((a, b, c))
    assert suite.route_count == 3
    assert suite.driving_score == pytest.approx((21.0 + 100.0 + 0.0) / 3)
    assert suite.route_completion == pytest.approx(50.0)
    assert suite.infraction_penalty == pytest.approx((0.42 + 1.0 + 0.5) / 3)
    km = 0.5 + 1.5 + 0.001
    per_km = suite.infractions_per_km
    assert per_km["collision_vehicle"] == pytest.approx(1 / km)
    assert per_km["red_light"] == pytest.approx(1 / km)
    assert per_km["collision_walker"] == pytest.approx(1 / km)
    assert per_km["agent_blocked"] == pytest.approx(1 / km)
    assert per_km["stop_sign"] == 0.0
    assert per_km["total"] == pytest.approx(4 / km)
    assert set(per_km) == {k.name.lower() for k in INFRACTION_KINDS} | {"total"}
    d = json.loads(json.dumps(suite.to_dict()))
    keys = {"driving_score", "route_completion", "infraction_penalty", "infractions_per_km", "route_count"}
    assert set(d["suite"]) >= keys
    assert d["suite"]["route_count"] == 3 and d["suite"]["driving_score"] == pytest.approx(40.333, abs=1e-3)
    assert [r["route_id"] for r in d["routes"]] == ["0", "1", "2"]
    for r in d["routes"]:
        assert {"route_id", "driving_score", "route_completion", "infraction_penalty", "events"} <= set(r)


def test_empty_suite():
    suite = SuiteResult(())
    assert (suite.route_count, suite.driving_score, suite.route_completion) == (0, 0.0, 0.0)
    assert suite.infractions_per_km["total"] == 0.0
    assert json.loads(json.dumps(suite.to_dict()))["routes"] == []


@needs_shared
def test_score_a_monitored_town01_route():
    town01 = shared_map("carla/Town01.xodr")
    route = lane_route(town01, straight_chain(town01, ENTRY, 150))
    drive = Driver(InfractionMonitor(town01, route), route)
    drive.cruise(0.0, 40.0, 8.0)
    drive.step(40.4, 8.0, contacts=[(11, ActorType.WALKER)])
    drive.cruise(40.4, route.length_m, 8.0)
    r = score_route(drive.monitor, route_id="r0", town="Town01")
    assert r.route_completion == 100.0
    assert r.infraction_penalty == pytest.approx(0.5)
    assert r.driving_score == pytest.approx(50.0)
    assert r.end_reason == "route_completed"
    assert r.infractions["collision_walker"] == 1
    assert r.length_m == pytest.approx(route.length_m)
    assert r.duration_s == pytest.approx(r.events[-1]["time_s"], abs=1e-3)  # the route ended there
    assert [e["type"] for e in r.events] == ["collision_walker", "route_completed"]

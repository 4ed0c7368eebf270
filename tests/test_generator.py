"""Procedural towns: valid OpenDRIVE, strongly connected, exact joins, parameters that show.

Every town is parsed by the real ``carla`` client (offline) through RoadMap.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
from collections import Counter
from functools import cache

import numpy as np
import pytest

from sim.errors import ConfigError, MapError
from sim.maps import RoadMap, load_map
from sim.maps.generator import TownConfig, generate_town
from sim.maps.lanegraph import LaneGraph, lane_joins
from sim.maps.roadmap import Marking

MAX_GAP_M = 0.1
MAX_KINK_DEG = 5.0


@cache
def town(config: TownConfig) -> RoadMap:
    return RoadMap.from_xodr(f"town_{config.seed}", generate_town(config))


def street_lane_counts(road_map: RoadMap) -> Counter:
    """(road id, direction sign) -> number of driving lanes, for roads outside junctions."""
    return Counter((k.road_id, k.lane_id > 0) for k, lane in road_map.lanes.items() if not lane.in_junction)


def junction_arm_counts(road_map: RoadMap) -> Counter:
    """How many junctions have 3 arms, 4 arms, ... (distinct streets touching the junction)."""
    counts: Counter = Counter()
    for junction in road_map.junctions.values():
        streets = set()
        for key in junction.lanes:
            lane = road_map.lanes[key]
            streets.update(k.road_id for k in lane.predecessors + lane.successors)
        counts[len(streets)] += 1
    return counts


def assert_sound(road_map: RoadMap) -> None:
    assert LaneGraph(road_map).is_strongly_connected()
    assert LaneGraph(road_map, lane_changes=False).is_strongly_connected()
    joins = lane_joins(road_map)
    assert joins
    worst_gap = max(j.gap_m for j in joins)
    worst_kink = max(j.kink_deg for j in joins)
    assert worst_gap <= MAX_GAP_M, worst_gap
    assert worst_kink <= MAX_KINK_DEG, worst_kink


# -- hard requirements -----------------------------------------------------------------------


def test_default_town_is_sound_and_town03_sized():
    road_map = town(TownConfig())
    assert_sound(road_map)
    x0, y0, x1, y1 = road_map.bounds
    assert 380.0 <= x1 - x0 <= 440.0 and 380.0 <= y1 - y0 <= 440.0
    arms = junction_arm_counts(road_map)
    # 6 x 6 nodes: 4 curved corners, 16 border T-junctions, 16 inner nodes of which
    # round(0.3 * 16) = 5, rounded up to 6 (edges come out in pairs), become T-junctions.
    assert arms == Counter({3: 22, 4: 10})


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_varied_towns_are_sound(seed):
    assert_sound(town(TownConfig.varied(seed)))


@pytest.mark.slow
def test_hundred_varied_towns_are_sound():
    for seed in range(100):
        road_map = RoadMap.from_xodr(f"varied_{seed}", generate_town(TownConfig.varied(seed)))
        assert_sound(road_map)


def test_varied_configs_mix_parameters():
    configs = [TownConfig.varied(seed) for seed in range(40)]
    assert {c.lanes_per_direction for c in configs} == {1, 2, 3}
    assert {c.sidewalks for c in configs} == {True, False}
    assert len({(c.blocks_x, c.blocks_y) for c in configs}) >= 8
    assert TownConfig.varied(7) == TownConfig.varied(7)
    assert TownConfig.varied(7).seed == 7


def test_three_way_fraction_controls_junction_mix():
    only_four = town(TownConfig(three_way_fraction=0.0, blocks_x=4, blocks_y=4))
    assert junction_arm_counts(only_four) == Counter({3: 12, 4: 9})
    many_three = town(TownConfig(three_way_fraction=1.0, blocks_x=4, blocks_y=4))
    arms = junction_arm_counts(many_three)
    assert arms[4] <= 1 and arms[3] >= 20 and set(arms) == {3, 4}
    assert_sound(many_three)


@pytest.mark.parametrize("lanes", [1, 3])
def test_lane_count_shows(lanes):
    config = TownConfig(lanes_per_direction=lanes, blocks_x=3, blocks_y=3, seed=11)
    counts = street_lane_counts(town(config))
    assert max(counts.values()) == lanes and min(counts.values()) == lanes
    assert {float(np.round(lane.width_m[0], 6)) for lane in town(config).lanes.values()} == {3.5}


def one_way_roads(road_map: RoadMap) -> list[int]:
    counts = street_lane_counts(road_map)
    roads = sorted({road for road, _ in counts})
    return [road for road in roads if ((road, True) in counts) != ((road, False) in counts)]


def test_one_way_streets_show():
    config = TownConfig(one_way_fraction=0.5, blocks_x=3, blocks_y=3, seed=2)
    # 19 streets (24 edges, 4 two-edge corners, one inner edge removed): round(0.5 * 19) = 10 asked
    assert len(one_way_roads(town(config))) == 10
    assert_sound(town(config))
    # a small positive share still gives one one-way street (2 x 2 blocks have 8 streets)
    assert len(one_way_roads(town(TownConfig(one_way_fraction=0.05, blocks_x=2, blocks_y=2)))) == 1
    two_way = street_lane_counts(town(TownConfig(one_way_fraction=0.0, blocks_x=3, blocks_y=3, seed=2)))
    assert all((road, True) in two_way and (road, False) in two_way for road, _ in two_way)


def test_sidewalks_show_in_xml_and_in_carla():
    import carla

    config = TownConfig(blocks_x=2, blocks_y=2, sidewalk_width_m=2.5, lanes_per_direction=2)
    text = generate_town(config)
    assert text.count('type="sidewalk"') >= 2 * 12  # both sides of all 12 streets, plus corners
    wp = town(config).carla_map.get_waypoint_xodr(1, -3, 5.0)
    assert wp is not None and wp.lane_type == carla.LaneType.Sidewalk
    assert wp.lane_width == pytest.approx(2.5)
    assert 'type="sidewalk"' not in generate_town(TownConfig(blocks_x=2, blocks_y=2, sidewalks=False))


def test_speed_limits_drawn_from_config():
    config = TownConfig(speed_limits_kmh=(30.0, 60.0), blocks_x=3, blocks_y=3)
    limits = {round(lane.speed_limit_mps * 3.6, 9) for lane in town(config).lanes.values()}
    assert limits == {30.0, 60.0}


def test_markings_and_lane_changes():
    road_map = town(TownConfig(lanes_per_direction=2, blocks_x=2, blocks_y=2, one_way_fraction=0.0))
    inner, outer = road_map.lanes[(1, 0, -1)], road_map.lanes[(1, 0, -2)]
    assert inner.left_marking[1] == Marking.SOLID_SOLID and inner.left_color == "yellow"
    assert inner.right_marking[1] == Marking.BROKEN and outer.right_marking[1] == Marking.SOLID
    assert inner.right == outer.key and outer.left == inner.key
    assert LaneGraph(road_map).graph.edges[inner.key, outer.key]["kind"] == "change_right"


def test_bent_streets_bend_and_come_back():
    def bent(road_map: RoadMap) -> int:
        count = 0
        for lane in road_map.lanes.values():
            if lane.in_junction or lane.key.lane_id != -1:
                continue
            deviation = np.abs(np.remainder(lane.yaw_rad - lane.yaw_rad[0] + np.pi, 2 * np.pi) - np.pi)
            end_turn = abs(math.remainder(lane.yaw_rad[-1] - lane.yaw_rad[0], 2 * math.pi))
            count += bool(deviation.max() > math.radians(10) and end_turn < math.radians(1))
        return count

    base = dict(blocks_x=3, blocks_y=3, seed=5, three_way_fraction=0.0)
    # 3 x 3 blocks: 24 edges, 4 corners of two edges each, so 16 straight streets.
    assert bent(town(TownConfig(curved_fraction=1.0, **base))) == 16
    assert bent(town(TownConfig(curved_fraction=0.0, **base))) == 0


def test_signals_at_junctions_face_incoming_traffic():
    config = TownConfig(three_way_fraction=0.0, one_way_fraction=0.0, signal_fraction=1.0)
    road_map = town(config)
    kinds = Counter(s.kind for s in road_map.signals)
    assert kinds == Counter({"traffic_light": 4 * 16, "stop": 16})  # every arm of 16 crossings, 16 T stems
    for lm in road_map.carla_map.get_all_landmarks():
        positive = str(lm.orientation).endswith("Positive")
        wp = road_map.carla_map.get_waypoint_xodr(lm.road_id, -1 if positive else 1, lm.s)
        assert wp is not None, lm.id
        ahead = wp.next(4.0)
        assert ahead and all(w.is_junction for w in ahead), lm.id  # the governed lane runs into the junction


def test_same_config_same_bytes():
    config = TownConfig(seed=42, blocks_x=3, blocks_y=3)
    assert generate_town(config) == generate_town(TownConfig(seed=42, blocks_x=3, blocks_y=3))
    assert generate_town(config) != generate_town(TownConfig(seed=43, blocks_x=3, blocks_y=3))


def test_generated_spec_loads_the_default_config():
    road_map = load_map("generated:3")
    assert road_map.content_hash == RoadMap.from_xodr("x", generate_town(TownConfig(seed=3))).content_hash


def test_default_town_generates_and_parses_fast():
    start = time.perf_counter()
    RoadMap.from_xodr("fast", generate_town(TownConfig(seed=9)))
    assert time.perf_counter() - start < 2.0  # about 0.5 s measured; generous for a shared machine


# -- bad configs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("lanes_per_direction", 0, "lanes_per_direction must be an integer from 1 to 3, got 0"),
        ("lanes_per_direction", 4, "lanes_per_direction must be an integer from 1 to 3, got 4"),
        ("block_length_m", -5.0, "block_length_m must be positive"),
        ("block_length_m", 20.0, "block_length_m: 20 m is too short"),
        ("lane_width_m", -3.5, "lane_width_m must be a number from 2.5 to 5 m"),
        ("sidewalk_width_m", 0.0, "sidewalk_width_m"),
        ("three_way_fraction", 1.5, "three_way_fraction must be a number from 0 to 1, got 1.5"),
        ("curved_fraction", -0.1, "curved_fraction must be a number from 0 to 1"),
        ("one_way_fraction", 2.0, "one_way_fraction"),
        ("signal_fraction", float("nan"), "signal_fraction"),
        ("speed_limits_kmh", (), "speed_limits_kmh must be a non-empty tuple"),
        ("speed_limits_kmh", (50.0, -10.0), "speed_limits_kmh"),
        ("blocks_x", 1, "blocks_x must be an integer from 2 to 20"),
        ("seed", -1, "seed must be an integer of 0 or more, got -1"),
        ("lanes_per_direction", 2.0, "lanes_per_direction must be an integer"),
        ("sidewalks", "yes", "sidewalks must be true or false"),
    ],
)
def test_bad_config_raises_one_line(field, value, words):
    with pytest.raises(ConfigError) as info:
        TownConfig(**{field: value})
    message = str(info.value)
    assert message.startswith("TownConfig.") and words in message and "\n" not in message


# -- command line ------------------------------------------------------------------------------


def _generate_parser() -> argparse.ArgumentParser:
    from scripts import map_generate

    parser = argparse.ArgumentParser(prog="loopdrive map generate")
    map_generate.register(parser)
    return parser


def test_map_generate_writes_file_and_summary(tmp_path, capsys):
    out = tmp_path / "town.xodr"
    argv = ["--seed", "3", "--blocks-x", "3", "--blocks-y", "3", "--out", str(out)]
    args = _generate_parser().parse_args(argv)
    assert args.func(args) == 0
    text = out.read_text(encoding="utf-8")
    assert text == generate_town(TownConfig(seed=3, blocks_x=3, blocks_y=3))
    assert [p.name for p in tmp_path.iterdir()] == ["town.xodr"]  # no temporary file left behind
    road_map = town(TownConfig(seed=3, blocks_x=3, blocks_y=3))
    line = capsys.readouterr().out.strip()
    assert line == (
        f"{out}: {text.count('<road ')} roads, {len(road_map.junctions)} junctions, "
        f"{len(road_map.lanes)} driving lanes, {road_map.driving_lane_km:.2f} lane km"
    )


def test_map_generate_missing_folder_is_one_line(tmp_path):
    out = tmp_path / "missing" / "town.xodr"
    args = _generate_parser().parse_args(["--out", str(out)])
    with pytest.raises(MapError, match=r"town.xodr: the output folder .*missing does not exist"):
        args.func(args)


@pytest.mark.skipif(
    importlib.util.find_spec("scripts.map_show") is None,
    reason="scripts/map_cmd.py imports every map action and scripts/map_show.py does not exist yet",
)
def test_cli_map_generate(tmp_path, capsys):
    from scripts.cli import main

    out = tmp_path / "town.xodr"
    assert main(["map", "generate", "--seed", "3", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == generate_town(TownConfig(seed=3))
    assert "32 junctions" in capsys.readouterr().out
    assert main(["map", "generate", "--lanes-per-direction", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    expected = "TownConfig.lanes_per_direction must be an integer from 1 to 3, got 4"
    assert err.strip() == f"loopdrive: error: {expected}"
    assert main(["map", "generate", "--out", str(tmp_path / "no" / "t.xodr")]) == 2
    assert "does not exist" in capsys.readouterr().err

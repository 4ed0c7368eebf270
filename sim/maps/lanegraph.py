"""The driving-lane graph: lanes as nodes, successors and allowed lane changes as edges.

Edge attributes: ``kind`` ("follow", "change_left" or "change_right") and
``length_m`` (the length of the lane being left for "follow" edges; a lane change
costs its own distance, set by the planner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from sim.maps.roadmap import LaneChange, LaneKey, RoadMap

__all__ = ["LaneGraph", "LaneJoin", "lane_joins"]


@dataclass(frozen=True)
class LaneJoin:
    """How the end of one lane meets the start of its successor."""

    from_key: LaneKey
    to_key: LaneKey
    gap_m: float
    kink_deg: float
    in_junction: bool  # either lane is a junction connecting lane


def lane_joins(road_map: RoadMap) -> list[LaneJoin]:
    """Every successor join of the map, with its positional gap and heading kink."""
    joins = []
    for key, lane in road_map.lanes.items():
        end, end_yaw = lane.xyz_m[-1], lane.yaw_rad[-1]
        for succ_key in lane.successors:
            succ = road_map.lanes[succ_key]
            gap = float(np.hypot(*(succ.xyz_m[0, :2] - end[:2])))
            kink = abs(math.degrees(math.remainder(succ.yaw_rad[0] - end_yaw, 2 * math.pi)))
            joins.append(LaneJoin(key, succ_key, gap, kink, lane.in_junction or succ.in_junction))
    return joins


def _change_allowed(flags: np.ndarray, side: LaneChange) -> bool:
    """A lane change is allowed when the marking permits it along most of the lane."""
    return bool(np.mean((flags & side) != 0) >= 0.5)


class LaneGraph:
    """A :class:`networkx.DiGraph` over the driving lanes of a :class:`RoadMap`."""

    def __init__(self, road_map: RoadMap, *, lane_changes: bool = True):
        self.road_map = road_map
        g = nx.DiGraph()
        for key, lane in road_map.lanes.items():
            g.add_node(key, length_m=lane.length_m)
        for key, lane in road_map.lanes.items():
            for succ in lane.successors:
                g.add_edge(key, succ, kind="follow", length_m=lane.length_m)
            if not lane_changes or lane.in_junction:
                continue
            if lane.left is not None and _change_allowed(lane.lane_change, LaneChange.LEFT):
                g.add_edge(key, lane.left, kind="change_left", length_m=0.0)
            if lane.right is not None and _change_allowed(lane.lane_change, LaneChange.RIGHT):
                g.add_edge(key, lane.right, kind="change_right", length_m=0.0)
        self.graph = g

    def is_strongly_connected(self) -> bool:
        return self.graph.number_of_nodes() > 0 and nx.is_strongly_connected(self.graph)

    def largest_component_share(self) -> float:
        """Share of driving-lane length in the largest strongly connected component."""
        total = sum(lane.length_m for lane in self.road_map.lanes.values())
        if total <= 0:
            return 0.0
        best = max(
            (
                sum(self.road_map.lanes[k].length_m for k in comp)
                for comp in nx.strongly_connected_components(self.graph)
            ),
            default=0.0,
        )
        return best / total

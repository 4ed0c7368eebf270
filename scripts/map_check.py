"""``loopdrive map check MAP...``: load, raster and report on each map."""

from __future__ import annotations

import argparse
import json
import time

from scripts.common import add_map_argument

__all__ = ["register", "check_map"]


def register(parser: argparse.ArgumentParser) -> None:
    add_map_argument(parser, nargs="+")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per map")
    parser.add_argument(
        "--m-per-px", type=float, default=0.1, help="raster resolution in metres per pixel (default: 0.1)"
    )
    parser.set_defaults(func=run)


def check_map(spec: str, *, m_per_px: float = 0.1) -> dict:
    """Load one map, build its raster and return the report as a dict."""
    from sim.maps import load_map
    from sim.maps.lanegraph import LaneGraph, lane_joins
    from sim.maps.raster import build_raster

    t0 = time.perf_counter()
    road_map = load_map(spec)
    load_s = time.perf_counter() - t0
    graph = LaneGraph(road_map)
    connected = graph.is_strongly_connected()
    t0 = time.perf_counter()
    raster = build_raster(road_map, m_per_px=m_per_px)
    raster_s = time.perf_counter() - t0
    joins = lane_joins(road_map)
    kinds: dict[str, int] = {}
    for signal in road_map.signals:
        kinds[signal.kind] = kinds.get(signal.kind, 0) + 1
    return {
        "map": spec,
        "name": road_map.name,
        "content_hash": road_map.content_hash,
        "driving_lanes": len(road_map.lanes),
        "junctions": len(road_map.junctions),
        "signals": len(road_map.signals),
        "signal_kinds": kinds,
        "lane_km": round(road_map.driving_lane_km, 3),
        "strongly_connected": connected,
        "largest_component_share": round(1.0 if connected else graph.largest_component_share(), 4),
        "max_join_gap_m": round(max((j.gap_m for j in joins), default=0.0), 3),
        "max_join_kink_deg": round(max((j.kink_deg for j in joins), default=0.0), 2),
        "load_seconds": round(load_s, 3),
        "raster_seconds": round(raster_s, 3),
        "raster_shape": list(raster.labels.shape),
        "m_per_px": m_per_px,
    }


def _line(r: dict) -> str:
    conn = (
        "yes"
        if r["strongly_connected"]
        else f"no (largest component {100 * r['largest_component_share']:.1f} %)"
    )
    return (
        f"{r['name']}: {r['driving_lanes']} driving lanes, {r['junctions']} junctions, "
        f"{r['signals']} signals, "
        f"{r['lane_km']:.2f} lane-km, strongly connected: {conn}, raster {r['raster_shape'][1]}x"
        f"{r['raster_shape'][0]} px in {r['raster_seconds']:.2f} s"
    )


def run(args: argparse.Namespace) -> int:
    reports = []
    for spec in args.map:
        report = check_map(spec, m_per_px=args.m_per_px)
        reports.append(report)
        if not args.json:
            print(_line(report), flush=True)
    if args.json:
        print(json.dumps(reports, indent=2))
    return 0

"""The scenario library: declarative YAML scenario files, their loader, and suites.

::

    from sim.scenarios import load_scenario, library_names, load_suite

    scenario = load_scenario("cut_in_town2")         # a library name, or a path to a .yaml file
    suite = load_suite("eval")                       # scenarios x seeds
    for name, seed in suite.entries: ...

A scenario file holds the fields of :class:`sim.scenario.Scenario` (``map``,
``route``, ``traffic``, ``world``, ``weather``, ``rig``, ``seed``, ``events``,
``description``); ``name`` defaults to the file name. Two conveniences the loader
resolves: ``map`` may be a path relative to the file, ``generated:SEED``,
``carla:TOWN`` (a CARLA town in the shared data folder) or ``.osm``; ``route`` may
be ``leaderboard: {file: v1/routes_devtest.xml, id: "3"}`` (a CARLA Leaderboard route
file, relative to the shared ``routes/carla_leaderboard`` folder or to the scenario
file), read into keypoints. Every mistake is one :class:`~sim.errors.ConfigError`
line naming the file, the key path and what is allowed.
"""

from sim.scenarios.loader import (
    LIBRARY_DIR,
    SUITES_DIR,
    MissingData,
    Suite,
    library_names,
    load_scenario,
    load_suite,
    scenario_unavailable,
    suite_jobs,
    suite_names,
)

__all__ = [
    "load_scenario",
    "library_names",
    "load_suite",
    "suite_names",
    "Suite",
    "suite_jobs",
    "MissingData",
    "scenario_unavailable",
    "LIBRARY_DIR",
    "SUITES_DIR",
]

"""The world, with no learning in it: maps, routes, simulators, scenarios, scoring.

`sim` never imports `envs` or `policy` (a test enforces it).
"""

__all__: list[str] = []

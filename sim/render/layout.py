"""Named positions in the renderer's flat arrays (shared by the numba and torch paths).

A box is one row of ``BOX_FIELDS`` float64 numbers: an upright box (only yaw turns
it) whose bottom face lies at ``Z`` (world, metres) and whose centre is at
``(X, Y, Z + HZ)``; it spans ``2 HX`` along its yaw, ``2 HY`` across and ``2 HZ`` up.
``RADIUS`` bounds it (distance from the centre to a corner); a box with ``LOD_PX`` > 0 is
only drawn while its bounding sphere spans at least that many pixels (a detail of a
larger shape, like the second, turned box of a tree's canopy). ``MAT`` says how it is
coloured; ``AUX`` and ``AUX2`` carry what the material needs.
"""

from __future__ import annotations

__all__ = [
    "X",
    "Y",
    "Z",
    "YAW",
    "HX",
    "HY",
    "HZ",
    "R",
    "G",
    "B",
    "MAT",
    "AUX",
    "AUX2",
    "RADIUS",
    "LOD_PX",
    "BOX_FIELDS",
    "MAT_PLAIN",
    "MAT_BUILDING",
    "MAT_SIGNAL_LAMP",
    "MAT_NIGHT_LAMP",
    "EGO_FIELDS",
    "EGO_X",
    "EGO_Y",
    "EGO_Z",
    "EGO_YAW",
    "W_FOG_R",
    "W_FOG_G",
    "W_FOG_B",
    "W_FOG_DIST",
    "W_FAR",
    "W_FOG_NORM",
    "W_AMBIENT",
    "W_SUN",
    "W_SUN_X",
    "W_SUN_Y",
    "W_SUN_Z",
    "W_HEADLIGHTS",
    "W_HL_STRENGTH",
    "W_HL_RANGE",
    "W_LAMPS_ON",
    "W_TINT_R",
    "W_TINT_G",
    "W_TINT_B",
    "WEATHER_FIELDS",
    "NEAR_M",
    "FACE_COUNT",
    "TILE_PX",
]

X, Y, Z, YAW, HX, HY, HZ, R, G, B, MAT, AUX, AUX2, RADIUS, LOD_PX = range(15)
BOX_FIELDS = 15

#: lit by the weather's light and fog only
MAT_PLAIN = 0
#: a building: a grid of windows on its walls (AUX: the building's number, lights windows at night)
MAT_BUILDING = 1
#: a traffic-light lamp: glows in its colour while the signal row ``AUX`` shows state ``AUX2``, else dark
MAT_SIGNAL_LAMP = 2
#: a lamp (street lamp, car light): glows when the weather has ``lamps_on``, else plain
MAT_NIGHT_LAMP = 3

EGO_X, EGO_Y, EGO_Z, EGO_YAW = range(4)
EGO_FIELDS = 4

(
    W_FOG_R,
    W_FOG_G,
    W_FOG_B,
    W_FOG_DIST,
    W_FAR,
    W_FOG_NORM,
    W_AMBIENT,
    W_SUN,
    W_SUN_X,
    W_SUN_Y,
    W_SUN_Z,
    W_HEADLIGHTS,
    W_HL_STRENGTH,
    W_HL_RANGE,
    W_LAMPS_ON,
    W_TINT_R,
    W_TINT_G,
    W_TINT_B,
) = range(18)
WEATHER_FIELDS = 18

#: hits nearer than this (m) along a ray are ignored (the camera is inside that box)
NEAR_M = 0.05
#: box faces: +x, -x, +y, -y, top, bottom
FACE_COUNT = 6
#: side (pixels) of the square tiles whose farthest depth lets the kernels skip hidden boxes
TILE_PX = 8

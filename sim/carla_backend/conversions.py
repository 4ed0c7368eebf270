"""Conversions between ``carla`` types and loopdrive's, in one place.

Frames: CARLA's world frame is loopdrive's (x forward, y right, z up, metres), so a
position crosses unchanged; angles are degrees in ``carla`` and radians in loopdrive
(yaw wrapped to (-pi, pi], positive from +x toward +y). Actor positions in
:class:`sim.state.Actors` are box centres at ground level: the bottom centre of the
actor's bounding box, which CARLA gives relative to the actor's origin.

Controls: :func:`vehicle_control` turns the policy's ``[steer, accel]`` into a
``carla.VehicleControl`` through :func:`sim.vehicle.control_to_physical`, so a steer
command asks for the same front-wheel angle on both simulators (the ego's CARLA
steering range is read from its physics); ``accel`` becomes the throttle pedal
(``accel >= 0``) or the brake pedal (``accel < 0``), whose effect is CARLA's engine
and brake model, not the embedded limits.

Cameras: :func:`camera_mount` places a :class:`sim.render.camera.CameraSpec` on the
ego exactly where the embedded renderer puts it (relative to the box centre at
ground level) with CARLA's rotation convention, which ``CameraSpec`` already uses;
:func:`camera_attributes` gives the sensor the same image size and horizontal fov,
hence the same focal length ``width / 2 / tan(fov / 2)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import carla
import numpy as np

from sim.state import Actors, ActorType, Control, EgoState, LightState
from sim.vehicle import VehicleParams, control_to_physical

__all__ = [
    "Pose",
    "yaw_rad_of",
    "pose_of",
    "transform_of",
    "ground_centre",
    "vehicle_control",
    "carla_steer_of",
    "camera_mount",
    "camera_attributes",
    "actor_type_of",
    "light_state_of",
    "ActorRecord",
    "actors_of",
    "ego_state_of",
]


class Pose(NamedTuple):
    """A pose in loopdrive's units: metres and radians, CARLA's world frame."""

    x_m: float
    y_m: float
    z_m: float
    yaw_rad: float
    pitch_rad: float = 0.0
    roll_rad: float = 0.0


def yaw_rad_of(degrees: float) -> float:
    """A CARLA angle (degrees, any range) in radians, wrapped to (-pi, pi]."""
    return math.remainder(math.radians(degrees), 2.0 * math.pi)


def pose_of(transform: carla.Transform) -> Pose:
    """The pose of a ``carla.Transform`` (location unchanged, angles in radians)."""
    loc, rot = transform.location, transform.rotation
    return Pose(
        float(loc.x),
        float(loc.y),
        float(loc.z),
        yaw_rad_of(rot.yaw),
        yaw_rad_of(rot.pitch),
        yaw_rad_of(rot.roll),
    )


def transform_of(
    x_m: float, y_m: float, z_m: float, yaw_rad: float, pitch_rad: float = 0.0, roll_rad: float = 0.0
) -> carla.Transform:
    """A ``carla.Transform`` of a pose in metres and radians."""
    return carla.Transform(
        carla.Location(x=float(x_m), y=float(y_m), z=float(z_m)),
        carla.Rotation(pitch=math.degrees(pitch_rad), yaw=math.degrees(yaw_rad), roll=math.degrees(roll_rad)),
    )


def ground_centre(transform: carla.Transform, bbox: carla.BoundingBox) -> tuple[float, float, float]:
    """World position of the bottom centre of an actor's bounding box (box centre at
    ground level); ``bbox`` is relative to the actor, as ``actor.bounding_box``."""
    c, e = bbox.location, bbox.extent
    p = transform.transform(carla.Location(x=c.x, y=c.y, z=c.z - e.z))
    return float(p.x), float(p.y), float(p.z)


def carla_steer_of(steer: float, params: VehicleParams, carla_max_steer_rad: float) -> float:
    """CARLA's steer in [-1, 1] that asks for the front-wheel angle loopdrive's ``steer``
    means (``steer * params.max_steer_rad``), for a vehicle whose full lock is
    ``carla_max_steer_rad``; clipped where CARLA's vehicle cannot turn that far."""
    if not (math.isfinite(carla_max_steer_rad) and carla_max_steer_rad > 0):
        raise ValueError(f"the vehicle's maximum steering angle must be positive, got {carla_max_steer_rad}")
    steer_rad, _ = control_to_physical(steer, 0.0, params)
    return min(1.0, max(-1.0, steer_rad / carla_max_steer_rad))


def vehicle_control(
    control: Control, params: VehicleParams, carla_max_steer_rad: float
) -> carla.VehicleControl:
    """The ``carla.VehicleControl`` of a loopdrive :class:`~sim.state.Control` (see the
    module docstring): same wheel angle, ``accel`` as throttle or brake pedal."""
    _, accel_mps2 = control_to_physical(control.steer, control.accel, params)
    throttle = accel_mps2 / params.max_accel_mps2 if accel_mps2 > 0 else 0.0
    brake = -accel_mps2 / params.max_brake_mps2 if accel_mps2 < 0 else 0.0
    return carla.VehicleControl(
        throttle=float(throttle),
        steer=float(carla_steer_of(control.steer, params, carla_max_steer_rad)),
        brake=float(brake),
        hand_brake=False,
        reverse=False,
    )


def camera_mount(spec, bbox: carla.BoundingBox) -> carla.Transform:
    """Where a :class:`~sim.render.camera.CameraSpec` sits relative to the ego actor.

    The spec's mount is relative to the ego box centre at ground level; the actor's
    origin is elsewhere (``bbox`` says where the box lies relative to it), so the mount
    is shifted by the box's bottom centre. Yaw and pitch keep their signs: CARLA turns
    a sensor right for positive yaw and up for positive pitch, as ``CameraSpec`` does.
    """
    c, e = bbox.location, bbox.extent
    return carla.Transform(
        carla.Location(x=c.x + spec.x_m, y=c.y + spec.y_m, z=c.z - e.z + spec.z_m),
        carla.Rotation(pitch=math.degrees(spec.pitch_rad), yaw=math.degrees(spec.yaw_rad), roll=0.0),
    )


def camera_attributes(spec) -> dict[str, str]:
    """Blueprint attributes of the RGB sensor for a spec (image size and horizontal fov)."""
    return {
        "image_size_x": str(int(spec.width_px)),
        "image_size_y": str(int(spec.height_px)),
        "fov": repr(float(spec.fov_deg)),
        "sensor_tick": "0.0",  # every tick of the synchronous world
    }


_TRUCKS = frozenset(("truck", "bus", "van"))
_TWO_WHEELERS = frozenset(("bicycle", "motorcycle"))


def actor_type_of(type_id: str, attributes: dict[str, str] | None = None) -> ActorType:
    """The :class:`~sim.state.ActorType` of a CARLA actor from its ``type_id`` and
    attributes (``base_type`` since 0.9.15, else ``number_of_wheels``)."""
    attributes = attributes or {}
    if type_id.startswith("walker."):
        return ActorType.WALKER
    if not type_id.startswith("vehicle."):
        return ActorType.STATIC
    base = str(attributes.get("base_type", "")).lower()
    if base in _TRUCKS:
        return ActorType.TRUCK
    if base in _TWO_WHEELERS or str(attributes.get("number_of_wheels", "4")) == "2":
        return ActorType.BICYCLE
    return ActorType.CAR


_LIGHTS = {
    carla.TrafficLightState.Red: LightState.RED,
    carla.TrafficLightState.Yellow: LightState.YELLOW,
    carla.TrafficLightState.Green: LightState.GREEN,
    carla.TrafficLightState.Off: LightState.OFF,
    carla.TrafficLightState.Unknown: LightState.OFF,
}


def light_state_of(state: carla.TrafficLightState) -> LightState:
    """A ``carla.TrafficLightState`` as a :class:`~sim.state.LightState` (Unknown: OFF)."""
    return _LIGHTS[state]


class ActorRecord(NamedTuple):
    """One non-ego actor as read from the server in one tick."""

    id: int
    type: ActorType
    transform: carla.Transform
    velocity: carla.Vector3D
    bbox: carla.BoundingBox


def actors_of(records: list[ActorRecord]) -> Actors:
    """The seam's :class:`~sim.state.Actors` (boxes at ground level) of server records."""
    if not records:
        return Actors.empty()
    n = len(records)
    xyz, half, vel = np.empty((n, 3)), np.empty((n, 3)), np.empty((n, 2))
    yaw = np.empty(n)
    for i, r in enumerate(records):
        xyz[i] = ground_centre(r.transform, r.bbox)
        e = r.bbox.extent
        half[i] = (e.x, e.y, e.z)
        vel[i] = (r.velocity.x, r.velocity.y)
        # the box may be turned within the actor; vehicles' boxes are not, in practice
        yaw[i] = yaw_rad_of(r.transform.rotation.yaw + r.bbox.rotation.yaw)
    return Actors(
        id=np.array([r.id for r in records], np.int64),
        type=np.array([int(r.type) for r in records], np.int8),
        xyz_m=xyz,
        yaw_rad=yaw,
        half_extent_m=half,
        velocity_mps=vel,
    )


def ego_state_of(
    transform: carla.Transform,
    velocity: carla.Vector3D,
    bbox: carla.BoundingBox,
    *,
    steer_rad: float,
    accel_mps2: float,
) -> EgoState:
    """The ego's :class:`~sim.state.EgoState` (box centre at ground level, speed the
    horizontal speed, as the embedded ego reports)."""
    x, y, z = ground_centre(transform, bbox)
    e = bbox.extent
    return EgoState(
        x_m=x,
        y_m=y,
        z_m=z,
        yaw_rad=yaw_rad_of(transform.rotation.yaw),
        speed_mps=math.hypot(velocity.x, velocity.y),
        accel_mps2=float(accel_mps2),
        steer_rad=float(steer_rad),
        length_m=2.0 * e.x,
        width_m=2.0 * e.y,
        height_m=2.0 * e.z,
    )

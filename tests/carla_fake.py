"""A fake CARLA server at the connection edge, for the backend's bookkeeping tests.

It stands where ``carla.Client`` stands (``CarlaBackend(client_factory=...)``) and
answers the few calls the backend makes, with the real ``carla`` types wherever they
can exist offline: ``carla.Map`` parsed from a real OpenDRIVE file, ``carla.WorldSettings``,
``carla.Transform``, ``carla.BoundingBox``, ``carla.VehicleControl``, the real
``carla.command`` objects the backend sends. Cameras deliver synthetic images from
another thread after each tick, as the server's sensor stream does. ``alive = False``
makes every call time out like a dead server. Nothing here is a mock of ``carla``.
"""

from __future__ import annotations

import fnmatch
import threading
from types import SimpleNamespace

import carla

EGO_BOX = carla.BoundingBox(carla.Location(x=0.1, y=0.0, z=0.75), carla.Vector3D(x=2.45, y=1.05, z=0.75))
NPC_BOX = carla.BoundingBox(carla.Location(x=0.0, y=0.0, z=0.7), carla.Vector3D(x=2.2, y=0.95, z=0.7))


class _Blueprint:
    def __init__(self, bp_id: str, attributes: dict[str, str] | None = None):
        self.id = bp_id
        self.attributes = dict(attributes or {})

    def has_attribute(self, name):
        return name in self.attributes

    def set_attribute(self, name, value):
        self.attributes[name] = str(value)

    def get_attribute(self, name):
        value = self.attributes[name]
        return SimpleNamespace(as_str=lambda: value, recommended_values=["0", value, value])


class _Library:
    IDS = {
        "vehicle.lincoln.mkz_2020": {"base_type": "car", "number_of_wheels": "4"},
        "vehicle.carlamotors.carlacola": {"base_type": "truck", "number_of_wheels": "4"},
        "vehicle.bh.crossbike": {"base_type": "bicycle", "number_of_wheels": "2"},
        "walker.pedestrian.0001": {"speed": "1.3"},
        "controller.ai.walker": {},
        "sensor.camera.rgb": {},
        "sensor.other.collision": {},
        "sensor.other.lane_invasion": {},
    }

    def find(self, bp_id):
        return _Blueprint(bp_id, self.IDS[bp_id])

    def filter(self, pattern):
        return [self.find(i) for i in self.IDS if fnmatch.fnmatch(i, pattern)]


class _Actors(list):
    def filter(self, pattern):
        return _Actors(a for a in self if fnmatch.fnmatch(a.type_id, pattern))


class FakeActor:
    def __init__(self, server, actor_id, type_id, transform, attributes=None, parent=None):
        self.server, self.id, self.type_id = server, actor_id, type_id
        self.attributes = dict(attributes or {})
        self.transform, self.parent = transform, parent
        self.bounding_box = EGO_BOX if type_id == "vehicle.lincoln.mkz_2020" else NPC_BOX
        self.callback = None
        self.controls: list[carla.VehicleControl] = []

    def listen(self, callback):
        self.callback = callback

    def stop(self):
        self.server.call()
        self.callback = None

    def set_autopilot(self, enabled, port):
        self.server.call()
        self.server.tm_calls.append(("set_autopilot", port, self.id, enabled))

    def apply_control(self, control):
        self.server.call()
        self.controls.append(control)

    def get_physics_control(self):
        return SimpleNamespace(wheels=[SimpleNamespace(max_steer_angle=70.0)] * 4)

    def get_wheel_steer_angle(self, wheel):
        return 0.0

    def get_transform(self):
        return self.transform

    def get_velocity(self):
        return carla.Vector3D(1.0, 0.0, 0.0) if self.type_id.startswith("vehicle.") else carla.Vector3D()


class _Snapshot(list):
    def find(self, actor_id):
        return next((a for a in self if a.id == actor_id), None)


class FakeWorld:
    def __init__(self, server, carla_map):
        self.server, self.map = server, carla_map

    def get_settings(self):
        self.server.call()
        s = self.server.settings
        return carla.WorldSettings(
            synchronous_mode=bool(s.synchronous_mode), fixed_delta_seconds=float(s.fixed_delta_seconds or 0.0)
        )

    def apply_settings(self, settings):
        self.server.call()
        self.server.settings = settings
        self.server.settings_log.append((settings.synchronous_mode, settings.fixed_delta_seconds))

    def get_map(self):
        return self.map

    def set_weather(self, weather):
        self.server.weather = weather

    def set_pedestrians_seed(self, seed):
        pass

    def set_pedestrians_cross_factor(self, factor):
        pass

    def get_random_location_from_navigation(self):
        return None  # no pedestrian navigation on this fake

    def get_blueprint_library(self):
        return _Library()

    def try_spawn_actor(self, bp, transform, attach_to=None):
        self.server.call()
        return self.server.spawn(bp.id, transform, bp.attributes, attach_to)

    def tick(self, timeout=10.0):
        self.server.call()
        self.server.frame += 1
        frame = self.server.frame
        for actor in list(self.server.actors.values()):
            if actor.type_id == "sensor.camera.rgb" and actor.callback is not None:
                self.server.deliver(actor, frame)
        return frame

    def get_actors(self, ids=None):
        actors = self.server.actors.values()
        return _Actors(a for a in actors if ids is None or a.id in ids)

    def get_actor(self, actor_id):
        return self.server.actors.get(actor_id)

    def get_snapshot(self):
        self.server.call()
        return _Snapshot(
            SimpleNamespace(id=a.id, get_transform=a.get_transform, get_velocity=a.get_velocity)
            for a in self.server.actors.values()
        )


class FakeServer:
    """One fake server; ``client_factory`` goes to ``CarlaBackend(client_factory=...)``."""

    def __init__(self, *, camera_delay_s: float = 0.002, drop_frames: frozenset[int] = frozenset()):
        self.alive = True
        self.frame = 100
        self.next_id = 1
        self.actors: dict[int, FakeActor] = {}
        self.settings = carla.WorldSettings(synchronous_mode=False, fixed_delta_seconds=0.0)
        self.settings_log: list[tuple[bool, float]] = []
        self.world: FakeWorld | None = None
        self.weather = None
        self.tm_calls: list[tuple] = []
        self.fail_spawn: str | None = None  # a blueprint id whose spawn comes back empty
        self.camera_delay_s = camera_delay_s
        self.drop_frames = drop_frames
        self.connections = 0
        self.destroyed: list[int] = []

    def call(self):
        if not self.alive:
            raise RuntimeError("time-out of 1000ms while waiting for the simulator")

    def spawn(self, type_id, transform, attributes, parent=None):
        if type_id == self.fail_spawn:
            return None  # as try_spawn_actor answers when the place is taken
        actor = FakeActor(self, self.next_id, type_id, transform, attributes, parent)
        self.actors[actor.id] = actor
        self.next_id += 1
        return actor

    def deliver(self, camera, frame):
        if frame in self.drop_frames:
            return
        w, h = int(camera.attributes["image_size_x"]), int(camera.attributes["image_size_y"])
        raw = bytes([frame % 256, camera.id % 256, 7, 255]) * (w * h)
        image = SimpleNamespace(frame=frame, width=w, height=h, raw_data=raw)
        callback = camera.callback
        threading.Timer(self.camera_delay_s, lambda: callback(image)).start()

    def client_factory(self, host, port):
        return _Client(self, host, port)


class _TrafficManager:
    def __init__(self, server, port):
        self.server, self.port = server, port

    def __getattr__(self, name):
        def record(*args):
            self.server.call()
            self.server.tm_calls.append((name, self.port, *args))

        return record


class _Client:
    def __init__(self, server, host, port):
        self.server, self.host, self.port = server, host, port

    def set_timeout(self, seconds):
        self.timeout = seconds

    def get_server_version(self):
        self.server.call()
        self.server.connections += 1
        return "0.9.16"

    def get_world(self):
        self.server.call()
        if self.server.world is None:
            self.server.world = FakeWorld(self.server, carla.Map("Town00", _EMPTY_XODR))
        return self.server.world

    def get_trafficmanager(self, port):
        return _TrafficManager(self.server, port)

    def generate_opendrive_world(self, xodr, params):
        self.server.call()
        self.server.world = FakeWorld(self.server, carla.Map("generated", xodr))
        return self.server.world

    def get_available_maps(self):
        return ["/Game/Carla/Maps/Town01"]

    def apply_batch_sync(self, commands, do_tick=False):
        self.server.call()
        out = []
        for cmd in commands:
            if isinstance(cmd, carla.command.DestroyActor):
                self.server.actors.pop(cmd.actor_id, None)
                self.server.destroyed.append(cmd.actor_id)
                out.append(SimpleNamespace(error="", actor_id=cmd.actor_id))
            else:  # SpawnActor (with SetAutopilot after it): an NPC car, or a walker controller
                kind = "controller.ai.walker" if cmd.parent_id else "vehicle.lincoln.mkz_2020"
                actor = self.server.spawn(kind, cmd.transform, {"base_type": "car"})
                out.append(SimpleNamespace(error="", actor_id=actor.id))
        return out


_EMPTY_XODR = '<?xml version="1.0"?><OpenDRIVE><header revMajor="1" revMinor="4"/></OpenDRIVE>'

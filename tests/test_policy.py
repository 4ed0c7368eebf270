"""The end-to-end policy: network shapes, checkpoints, layout refusal, ONNX, SB3, BC, evaluation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from policy.network import (
    ACTION_SLICE,
    OUTPUT_SIZE,
    OUTPUT_SLICES,
    DrivingNetwork,
    ObservationLayout,
    split_outputs,
)
from tests.conftest import ROOT

SMALL = dict(route_length_m=(80.0, 120.0), map="generated:3")


def _obs(layout: ObservationLayout, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    from policy.export import example_inputs

    net = DrivingNetwork(layout)
    return {k: torch.as_tensor(v) for k, v in example_inputs(net, batch, seed).items()}


@pytest.fixture(scope="module")
def small_set():
    """Two short perturbed autopilot episodes, collected for real."""
    from policy.collect import CollectConfig, collect
    from policy.data import Samples

    config = CollectConfig(maps=("generated:3",), episodes=2, route_length_m=(80.0, 120.0), every=2, seed=5)
    parts = [s for _, _, s, _ in collect(config)]
    return Samples.concat(parts)


def test_collect_in_worker_processes_gives_the_frames_of_one_process():
    """Two worker processes (a town each) stream their episodes back in plan order, and
    the frames and logs are those of collecting in this process."""
    import dataclasses

    from policy.collect import CollectConfig, collect

    config = CollectConfig(
        maps=("generated:3", "generated:4"), episodes=3, route_length_m=(40.0, 60.0), every=4, seed=11
    )
    serial = list(collect(config))
    parallel = list(collect(config, workers=2))
    assert [(name, seed) for name, seed, _, _ in parallel] == [(name, seed) for name, seed, _, _ in serial]
    for (_, _, a, log_a), (_, _, b, log_b) in zip(serial, parallel, strict=True):
        assert log_a == log_b and len(a) > 0
        for f in dataclasses.fields(a):
            np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name), err_msg=f.name)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, small_set):
    from policy.bc import BCConfig, train_bc
    from policy.checkpoint import save_checkpoint

    net, report = train_bc(small_set, BCConfig(epochs=2, batch_size=32), progress=False)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "bc", net, {"report": report.to_dict()})


# -- network ----------------------------------------------------------------------------


@pytest.mark.parametrize("cams", [1, 3])
def test_network_shapes_and_named_outputs(cams):
    layout = ObservationLayout(camera_count=cams)
    net = DrivingNetwork(layout)
    out = net.forward_obs(_obs(layout, 4))
    assert out.shape == (4, OUTPUT_SIZE)
    parts = split_outputs(out)
    assert parts["action"].shape == (4, 2) and parts["waypoints"].shape == (4, 8)
    assert torch.all(parts["action"].abs() <= 1)
    assert slice(0, 2) == ACTION_SLICE and OUTPUT_SLICES["steer"] == slice(0, 1)


def test_rig_cameras_share_one_encoder():
    net = DrivingNetwork(ObservationLayout(camera_count=3))
    single = DrivingNetwork(ObservationLayout(camera_count=1))
    conv_params = sum(p.numel() for p in net.encoder.camera.parameters())
    assert conv_params == sum(p.numel() for p in single.encoder.camera.parameters())


def test_layout_from_env_space():
    from envs.spaces import observation_space
    from sim.routemap import RouteMapConfig

    space = observation_space((3, 80, 160, 3), RouteMapConfig())
    assert ObservationLayout.from_space(space) == ObservationLayout(camera_count=3)


def test_inference_under_5ms_at_batch_1():
    """CPU inference, one thread, batch 1 (measured under load: a generous repeat count)."""
    import time

    torch.set_num_threads(1)
    layout = ObservationLayout()
    net = DrivingNetwork(layout).eval()
    obs = _obs(layout, 1)
    with torch.inference_mode():
        for _ in range(5):
            net.forward_obs(obs)
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            net.forward_obs(obs)
            times.append(time.perf_counter() - t0)
    assert np.median(times) < 5e-3, f"median {1e3 * np.median(times):.2f} ms"


# -- checkpoints ------------------------------------------------------------------------


def test_checkpoint_round_trip_in_fresh_process(checkpoint, small_set, tmp_path):
    from policy.checkpoint import CheckpointPolicy

    obs = {
        k: getattr(small_set, k)[:3] for k in ("camera", "route", "speed", "command", "command_distance_m")
    }
    np.savez(tmp_path / "obs.npz", **obs)
    here = CheckpointPolicy(checkpoint).act_batch(obs)
    code = (
        "import numpy as np, sys; from policy.checkpoint import CheckpointPolicy;"
        f"o = dict(np.load({str(tmp_path / 'obs.npz')!r}));"
        f"a = CheckpointPolicy({str(checkpoint)!r}).act_batch(o); sys.stdout.write(a.tobytes().hex())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    there = np.frombuffer(bytes.fromhex(result.stdout), np.float32).reshape(3, 2)
    np.testing.assert_array_equal(here, there)


def test_checkpoint_files_are_safetensors_and_json(checkpoint):
    from safetensors.torch import load_file

    config = json.loads((checkpoint / "config.json").read_text())
    assert config["layout"] == ObservationLayout().to_dict()
    assert set(load_file(str(checkpoint / "model.safetensors"))) == set(
        DrivingNetwork(ObservationLayout()).state_dict()
    )


def test_layout_mismatch_is_refused_naming_the_field(checkpoint):
    from policy.checkpoint import LayoutMismatchError, load_network

    with pytest.raises(LayoutMismatchError, match="camera_count 1 vs 3"):
        load_network(checkpoint, ObservationLayout(camera_count=3))
    with pytest.raises(LayoutMismatchError, match="route_size_px 64 vs 32"):
        load_network(checkpoint, ObservationLayout(route_size_px=32))


def test_observations_of_another_camera_size_are_refused_naming_both(checkpoint):
    from policy.checkpoint import CheckpointPolicy, LayoutMismatchError

    policy = CheckpointPolicy(checkpoint)
    obs = {
        "camera": np.zeros((1, 160, 320, 3), np.uint8),
        "route": np.zeros((64, 64, 2), np.uint8),
        "speed": np.zeros(1, np.float32),
        "command": np.int64(0),
        "command_distance_m": np.zeros(1, np.float32),
    }
    with pytest.raises(LayoutMismatchError, match=r"\(1, 80, 160, 3\).*\(1, 160, 320, 3\)"):
        policy.act(obs)
    batch = {k: np.asarray(v)[None] for k, v in obs.items()}
    with pytest.raises(LayoutMismatchError):
        policy.act_batch(batch)
    obs["camera"] = np.zeros((1, 80, 160, 3), np.uint8)
    assert policy.act(obs).shape == (2,)


def test_bad_checkpoints_are_clear_errors(tmp_path, checkpoint):
    from policy.checkpoint import CheckpointError, load_network

    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_network(tmp_path / "nothing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((checkpoint / "config.json").read_text())
    (bad / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_network(bad)


def test_cli_refuses_a_rig_the_checkpoint_was_not_made_for(checkpoint):
    from scripts.cli import main

    code = main(
        [
            "evaluate",
            "--policy",
            str(checkpoint),
            "--rig",
            "front3",
            "--map",
            "generated:3",
            "--routes",
            "random:1",
        ]
    )
    assert code == 2


# -- ONNX -------------------------------------------------------------------------------


def test_onnx_matches_torch(checkpoint, tmp_path):
    from policy.export import TOLERANCE, check_onnx, export_onnx

    path = export_onnx(checkpoint, tmp_path / "m.onnx")
    assert check_onnx(checkpoint, path, batch=3) <= TOLERANCE


# -- data and behaviour cloning ---------------------------------------------------------


def test_collected_set_is_labelled_by_the_autopilot(small_set):
    assert len(small_set) > 50
    assert small_set.camera.dtype == np.uint8 and small_set.camera.shape[1:] == (1, 80, 160, 3)
    assert np.all(np.abs(small_set.action) <= 1)
    assert 0 < small_set.waypoints_valid.mean() < 1  # perturbations invalidate some futures
    forward = small_set.waypoints[small_set.waypoints_valid][:, 6]  # 2 s ahead, forward
    assert np.all(forward >= -0.05)


def test_bc_loss_decreases_on_real_data(small_set):
    from policy.bc import BCConfig, train_bc

    part = small_set.subset(np.arange(min(len(small_set), 192)))
    _, report = train_bc(part, BCConfig(epochs=10, batch_size=32, seed=1, val_share=0.0), progress=False)
    assert report.train_loss[-1] < 0.75 * report.train_loss[0], report.train_loss


def test_empty_training_set_is_a_clear_error(small_set, tmp_path):
    from policy.bc import train_bc
    from policy.data import DataError, Samples

    empty = small_set.subset(np.zeros(0, np.int64))
    with pytest.raises(DataError, match="no usable frames"):
        train_bc(empty)
    empty.save_npz(tmp_path / "empty.npz")
    from scripts.cli import main

    assert main(["train", "bc", "--data", str(tmp_path / "empty.npz"), "--out", str(tmp_path / "c")]) == 2
    assert len(Samples.load_npz(tmp_path / "empty.npz")) == 0


def test_npz_round_trip_without_pickle(small_set, tmp_path):
    from policy.data import Samples

    part = small_set.subset(np.arange(5))
    back = Samples.load_npz(part.save_npz(tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.camera, part.camera)
    np.testing.assert_array_equal(back.action, part.action)


# -- evaluation -------------------------------------------------------------------------


@pytest.mark.slow
def test_autopilot_scores_the_same_through_the_env_and_the_bare_world():
    from policy.evaluate import AutopilotPolicy, evaluate_jobs
    from sim.embedded import EmbeddedBackend
    from sim.evaluation import evaluate_suite, random_jobs
    from sim.scenario import TrafficConfig

    jobs = random_jobs("generated:3", "g3", 1, 120.0, TrafficConfig(), 11)
    via_env = [r.to_dict() for _, r, _ in evaluate_jobs(jobs, AutopilotPolicy())]
    bare = [
        r.to_dict()
        for _, r, _ in evaluate_suite(jobs, lambda b: b.make_autopilot(), backend=EmbeddedBackend())
    ]
    assert via_env == bare


@pytest.mark.slow
def test_default_checkpoint_reproduces_its_evaluation_in_a_fresh_process(tmp_path):
    """The shipped checkpoint, evaluated here and by the CLI in another process: the same
    route result, exactly."""
    from policy.evaluate import evaluate_jobs, make_policy
    from sim.evaluation import random_jobs
    from sim.scenario import TrafficConfig

    jobs = random_jobs("generated:3", "generated_3", 1, 60.0, TrafficConfig(), 4)
    here = [r.to_dict() for _, r, _ in evaluate_jobs(jobs, make_policy("default"))]
    out = tmp_path / "r.json"
    args = ["evaluate", "--policy", "default", "--map", "generated:3", "--routes", "random:1"]
    args += ["--length", "60", "--seed", "4", "--out", str(out)]
    subprocess.run([sys.executable, "-m", "scripts.cli", *args], cwd=ROOT, check=True, capture_output=True)
    there = json.loads(out.read_text())
    assert there["policy"] == "default"
    assert there["routes"] == here
    assert here[0]["route_completion"] > 0  # it drove


# -- SB3 --------------------------------------------------------------------------------


@pytest.mark.slow
def test_features_extractor_in_ppo_matches_bc_encoder(checkpoint):
    from envs.config import DrivingEnvConfig
    from policy.checkpoint import load_network, obs_to_tensors
    from policy.ppo import PPOConfig, make_ppo, ppo_to_network

    model = make_ppo(
        PPOConfig(num_envs=2, n_steps=8, batch_size=8, n_epochs=1),
        DrivingEnvConfig(**SMALL),
        init=str(checkpoint),
    )
    raw = model.env.venv.reset()  # the env's own observation; SB3 sees it transposed
    seen = model.env.transpose_observations({k: v.copy() for k, v in raw.items()})
    t = obs_to_tensors(raw, batched=True)

    def features(net):
        onehot = torch.nn.functional.one_hot(t["command"], 7)
        return net.encoder(t["camera"], t["route"], t["speed"], onehot, t["command_distance_m"])

    def sb3_features():
        tensor, _ = model.policy.obs_to_tensor(seen)
        return model.policy.extract_features(tensor)  # (actor's, critic's): each its own encoder

    with torch.no_grad():
        actor, critic = sb3_features()
        torch.testing.assert_close(actor, features(load_network(checkpoint)), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(critic, actor)  # both start from the BC encoder
    model.learn(total_timesteps=16)  # a few real PPO updates through the extractors
    back = ppo_to_network(model, init=str(checkpoint))  # read back as a checkpoint network
    with torch.no_grad():
        actor, critic = sb3_features()
        torch.testing.assert_close(actor, features(back), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(critic, actor)  # the critic's encoder learned on its own


def test_store_without_usable_frames_is_a_clear_error(tmp_path):
    from policy.data import DataError
    from policy.store_data import samples_from_store
    from scripts.cli import main

    with pytest.raises(DataError, match="no usable frames"):
        samples_from_store(tmp_path)
    with pytest.raises(DataError, match="no such episode store"):
        samples_from_store(tmp_path / "missing")
    assert main(["train", "bc", "--data", str(tmp_path), "--out", str(tmp_path / "c")]) == 2

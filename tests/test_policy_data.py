"""Training data through the episode store: ``collect --suite --out STORE``, ``train bc|dagger``
on a store (and DAgger's rollouts recorded with their interventions), ``evaluate --suite``,
and the clear errors of unusable data."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from scripts.cli import main

# a short random route on a generated town: seed 4 plans 26 m, seed 7 about 100 m
SCENARIO = """\
description: a short route in light traffic
map: generated:3
route: {random_length_m: 100}
traffic: {vehicles_per_km: 2.0, walkers_per_km: 2.0}
"""


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    folder = tmp_path_factory.mktemp("suite")
    (folder / "short.yaml").write_text(SCENARIO)
    path = folder / "tiny.yaml"
    path.write_text(f"description: two short routes\nscenarios: [{folder / 'short.yaml'}]\nseeds: [4, 7]\n")
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory, suite):
    """Two perturbed autopilot episodes of the suite, recorded by ``loopdrive collect``."""
    out = tmp_path_factory.mktemp("store") / "episodes"
    args = ["collect", "--suite", str(suite), "--episodes", "2", "--max-steps", "120"]
    assert main([*args, "--perturb-rate-per-s", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, store):
    out = tmp_path_factory.mktemp("ckpt") / "bc"
    assert main(["train", "bc", "--data", str(store), "--out", str(out), "--epochs", "1"]) == 0
    return out


def _rows(path) -> dict:
    cols = ["step", "driver", "policy_action", "executed_action", "autopilot_action", "intervention"]
    return pq.read_table(path, columns=cols).to_pydict()


def test_collect_suite_records_the_perturbed_autopilot_with_its_corrective_labels(store):
    from envs.catalog import Catalog

    catalog = Catalog.scan(store)
    assert not catalog.problems
    episodes = catalog.episodes(policy="autopilot+perturbation")
    assert len(episodes) == 2 == len(catalog.entries)
    assert sorted(e.header["seed"] for e in episodes) == [4, 7]  # the suite's entries, in turn
    assert {e.scenario_name for e in episodes} == {"short"}
    perturbed = 0
    for e in episodes:
        t = _rows(e.path)
        acted = [k for k, a in enumerate(t["executed_action"]) if a is not None]
        assert {t["driver"][k] for k in acted} == {"autopilot"}
        executed = np.array([t["executed_action"][k] for k in acted])
        label = np.array([t["autopilot_action"][k] for k in acted])
        np.testing.assert_array_equal(executed, np.array([t["policy_action"][k] for k in acted]))
        apart = np.any(executed != label, axis=1)
        assert (~apart).any()  # the clean autopilot drove between perturbations
        perturbed += int(apart.sum())
    assert perturbed > 0  # and the executed action was perturbed now and then


def test_train_bc_reads_the_store_with_the_autopilot_labels(store, checkpoint):
    from envs.catalog import Catalog
    from policy.checkpoint import CheckpointPolicy
    from policy.store_data import samples_from_store

    data = samples_from_store(store)
    labels, executed = [], []
    for e in Catalog.scan(store).episodes():
        t = _rows(e.path)
        keep = [k for k, a in enumerate(t["autopilot_action"]) if a is not None and t["executed_action"][k]]
        labels += [t["autopilot_action"][k] for k in keep]
        executed += [t["executed_action"][k] for k in keep]
    assert len(data) == len(labels) > 100
    np.testing.assert_array_equal(np.sort(data.action, axis=0), np.sort(np.float32(labels), axis=0))
    assert not np.array_equal(np.sort(data.action, axis=0), np.sort(np.float32(executed), axis=0))
    training = json.loads((checkpoint / "config.json").read_text())["training"]
    assert training["frames"] == len(data)
    policy = CheckpointPolicy(checkpoint)
    obs = {
        "camera": data.camera[0],
        "route": data.route[0],
        "speed": data.speed[0],
        "command": data.command[0],
        "command_distance_m": data.command_distance_m[0],
    }
    action = policy.act(obs)
    assert action.shape == (2,) and np.isfinite(action).all()


def test_unusable_stores_are_one_line_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "0123456789abcdef.parquet").write_bytes(b"not parquet at all")
    (corrupt / "notes.parquet").write_text("PAR1")
    for folder in (empty, corrupt):
        assert main(["train", "bc", "--data", str(folder), "--out", str(tmp_path / "c")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("loopdrive: error: ") and "no usable frames" in err[-1], err
        assert str(folder) in err[-1] and not any("Traceback" in line for line in err)
    assert not (tmp_path / "c").exists()


def test_frames_of_different_layouts_are_a_clear_error():
    from policy.data import DataError, Samples

    def frames(cams: int) -> Samples:
        n = 2
        return Samples(
            camera=np.zeros((n, cams, 8, 16, 3), np.uint8),
            route=np.zeros((n, 64, 64, 2), np.uint8),
            speed=np.zeros((n, 1), np.float32),
            command=np.zeros(n, np.int64),
            command_distance_m=np.zeros((n, 1), np.float32),
            action=np.zeros((n, 2), np.float32),
            waypoints=np.zeros((n, 8), np.float32),
            waypoints_valid=np.ones(n, np.bool_),
            weight=np.ones(n, np.float32),
        )

    assert len(Samples.concat([frames(1), frames(1)])) == 4
    with pytest.raises(DataError, match=r"camera \(1, 8, 16, 3\) vs \(3, 8, 16, 3\)"):
        Samples.concat([frames(1), frames(3)])


def test_evaluate_suite_scores_autopilot_and_random_on_the_same_entries(suite, tmp_path):
    results = {}
    for policy in ("autopilot", "random"):
        out = tmp_path / f"{policy}.json"
        assert main(["evaluate", "--policy", policy, "--suite", str(suite), "--out", str(out)]) == 0
        results[policy] = json.loads(out.read_text())
    for policy, d in results.items():
        assert d["policy"] == policy and d["suite_name"] == "tiny" and d["skipped"] == []
        s = d["suite"]
        assert s["route_count"] == 2
        for key in ("driving_score", "route_completion", "infraction_penalty", "collisions_per_km"):
            assert isinstance(s[key], float)
        assert s["infractions_per_km"]["total"] >= s["collisions_per_km"]
        assert [r["route_id"] for r in d["routes"]] == ["short#4", "short#7"]
        for r in d["routes"]:
            ds = r["route_completion"] * r["infraction_penalty"]
            assert r["driving_score"] == pytest.approx(ds, abs=0.01)
            km = max(r["length_m"] * r["route_completion"] / 1e5, 0.001)  # route km completed
            assert r["infractions_per_km"] == pytest.approx(sum(r["infractions"].values()) / km, rel=1e-3)
            collisions = sum(v for k, v in r["infractions"].items() if k.startswith("collision"))
            assert r["collisions_per_km"] == pytest.approx(collisions / km, rel=1e-3)
    auto, rand = results["autopilot"], results["random"]
    # the same routes for both: the same planned lengths
    assert [r["length_m"] for r in auto["routes"]] == [r["length_m"] for r in rand["routes"]]
    assert auto["suite"]["route_completion"] == 100.0
    assert rand["suite"]["driving_score"] < auto["suite"]["driving_score"]


def test_evaluate_needs_one_source(suite, capsys):
    assert main(["evaluate", "--policy", "autopilot"]) == 2
    assert "give --map" in capsys.readouterr().err
    args = ["evaluate", "--suite", str(suite), "--map", "generated:3", "--routes", "random:1"]
    assert main(args) == 2
    assert "--suite replaces --map" in capsys.readouterr().err


def test_dagger_records_its_rollouts_and_interventions_in_a_store(store, checkpoint, tmp_path, capsys):
    from envs.catalog import Catalog

    rollouts = tmp_path / "rollouts"
    args = ["train", "dagger", "--data", str(store), "--init", str(checkpoint), "--out", str(tmp_path / "d")]
    args += ["--iterations", "1", "--episodes", "1", "--maps", "generated:3", "--seed", "4"]
    args += ["--route-length-m", "90", "110", "--max-steps", "60", "--epochs", "1", "--store", str(rollouts)]
    # a strict gate: takeovers for sure; patience 2 lets the policy drive the step before each one
    args += ["--gate-steer-gap", "0.02", "--gate-patience", "2"]
    assert main(args) == 0
    history = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    catalog = Catalog.scan(rollouts)
    (episode,) = catalog.entries
    assert episode.policy_id.startswith("ckpt:") and episode.policy_id.endswith("+autopilot-gate")
    t = _rows(episode.path)
    triggers = [v for v in t["intervention"] if v is not None]
    assert history[0]["takeovers"] == len(triggers) == len(catalog.interventions()) > 0
    assert set(triggers) == {"disagreement"}
    drivers = [d for d in t["driver"] if d is not None]
    assert {"policy", "autopilot"} <= set(drivers)
    for k, d in enumerate(t["driver"]):
        if d == "autopilot":  # a takeover applies the autopilot's own action
            assert t["executed_action"][k] == t["autopilot_action"][k]
        elif d == "policy":
            assert t["executed_action"][k] == t["policy_action"][k]

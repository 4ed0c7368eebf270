"""ONNX export of a checkpoint, checked against torch with onnxruntime.

:func:`export_onnx` writes the network with the env's inputs (``camera`` uint8,
``route`` uint8, ``speed`` float32, ``command`` int64, ``command_distance_m`` float32,
batch dimension dynamic) and one output ``outputs`` ``(B, OUTPUT_SIZE)`` whose
positions :data:`~policy.network.OUTPUT_SLICES` names (also stored in the model's
metadata). :func:`check_onnx` runs both on the same inputs and returns the largest
absolute difference; :data:`TOLERANCE` (1e-4) is the bar.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from policy.checkpoint import load_network
from policy.network import OUTPUTS, DrivingNetwork
from sim.errors import LoopdriveError

__all__ = ["export_onnx", "check_onnx", "example_inputs", "TOLERANCE", "INPUT_NAMES"]

#: the largest difference allowed between onnxruntime and torch
TOLERANCE = 1e-4
#: the ONNX graph's inputs, in order
INPUT_NAMES = ("camera", "route", "speed", "command", "command_distance_m")


def example_inputs(network: DrivingNetwork, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the network's layout (all commands and ranges represented)."""
    lay = network.layout
    rng = np.random.default_rng(seed)
    return {
        "camera": rng.integers(
            0, 256, (batch, lay.camera_count, lay.camera_height_px, lay.camera_width_px, 3), dtype=np.uint8
        ),
        "route": rng.integers(
            0, 256, (batch, lay.route_size_px, lay.route_size_px, lay.route_channels), np.uint8
        ),
        "speed": rng.uniform(0, 20, (batch, 1)).astype(np.float32),
        "command": rng.integers(0, lay.command_count, (batch,), dtype=np.int64),
        "command_distance_m": rng.uniform(0, 300, (batch, 1)).astype(np.float32),
    }


def export_onnx(checkpoint: str | os.PathLike, out: str | os.PathLike, *, opset: int = 17) -> Path:
    """Write the checkpoint's network as ONNX to ``out``."""
    import onnx

    network = load_network(checkpoint)
    inputs = example_inputs(network, 2)
    args = tuple(torch.as_tensor(inputs[k]) for k in INPUT_NAMES)
    out = Path(out)
    if not out.parent.is_dir():
        raise LoopdriveError(f"{out}: the folder {out.parent} does not exist")
    tmp = out.with_name(out.name + ".tmp")
    torch.onnx.export(
        network,
        args,
        str(tmp),
        input_names=list(INPUT_NAMES),
        output_names=["outputs"],
        dynamic_axes={**{k: {0: "batch"} for k in INPUT_NAMES}, "outputs": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )
    model = onnx.load(str(tmp))
    entry = model.metadata_props.add()
    entry.key, entry.value = "outputs", json.dumps([[n, w] for n, w in OUTPUTS])
    onnx.save(model, str(tmp))
    os.replace(tmp, out)
    return out


def check_onnx(checkpoint: str | os.PathLike, onnx_path: str | os.PathLike, *, batch: int = 4) -> float:
    """The largest absolute difference between onnxruntime and torch on random inputs."""
    import onnxruntime as ort

    network = load_network(checkpoint)
    inputs = example_inputs(network, batch, seed=1)
    with torch.inference_mode():
        want = network(*(torch.as_tensor(inputs[k]) for k in INPUT_NAMES)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(["outputs"], inputs)[0]
    return float(np.max(np.abs(got - want)))

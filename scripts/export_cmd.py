"""``loopdrive export --onnx CKPT [--out FILE]``: the checkpoint as ONNX, checked against
torch with onnxruntime (largest difference at most 1e-4, else an error)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sim.errors import LoopdriveError

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onnx", required=True, metavar="CKPT", help="checkpoint folder (or default)")
    parser.add_argument("--out", type=Path, default=None, help="ONNX file (default: CKPT/model.onnx)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from policy.checkpoint import resolve_checkpoint
    from policy.export import TOLERANCE, check_onnx, export_onnx

    folder = resolve_checkpoint(args.onnx)
    out = args.out or folder / "model.onnx"
    export_onnx(folder, out)
    diff = check_onnx(folder, out)
    print(json.dumps({"onnx": str(out), "max_abs_diff": diff, "tolerance": TOLERANCE}))
    if not diff <= TOLERANCE:
        raise LoopdriveError(f"{out}: onnxruntime differs from torch by {diff:.3g} > {TOLERANCE}")
    return 0

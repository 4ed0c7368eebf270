"""Structure kept by tools: ruff, the layer rule, no pickle, a quiet import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYERS = {"sim": {"envs", "policy", "scripts"}, "envs": {"policy", "scripts"}, "policy": {"scripts"}}


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_point_one_way(layer):
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        bad += [
            f"{path.relative_to(ROOT)} imports {name}" for name in _imports(path) if name in LAYERS[layer]
        ]
    assert not bad, "layer rule broken (sim <- envs <- policy <- scripts): " + "; ".join(bad)


def test_no_pickle_anywhere():
    offenders = [
        str(p.relative_to(ROOT))
        for layer in ("sim", "envs", "policy", "scripts")
        for p in (ROOT / layer).rglob("*.py")
        if "pickle" in set(_imports(p))
    ]
    assert not offenders


def test_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")
    ruff = str(ruff) if ruff.exists() else shutil.which("ruff")
    assert ruff, "ruff is not installed: pip install -c constraints.txt -e '.[test]'"
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_prints_nothing():
    code = "import sim, sim.maps, envs, policy, scripts.cli"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""

"""The package's layering, as pyproject.toml's import-linter contract states it (docs/architecture.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contract_layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]


def test_the_package_keeps_its_layers() -> None:
    result = subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def test_every_public_module_has_a_layer() -> None:
    # A module or package left out of the contract could import anything: each non-private one must be in a
    # layer (a package's modules are its layer's).
    layered = [name for layer in contract_layers() for name in layer]
    package = ROOT / "recommender"
    modules = [p.stem for p in package.glob("*.py")] + [p.parent.name for p in package.glob("*/__init__.py")]
    assert sorted(layered) == sorted(m for m in modules if not m.startswith("_"))


def test_the_contract_catches_an_upward_import(tmp_path: Path) -> None:
    # The same contract on a copy of two layers, the lower one importing the upper: lint-imports must fail.
    package = tmp_path / "layered"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("X = 1\n")
    (package / "lookups.py").write_text("from layered.model import X\n")
    config = tmp_path / "contract.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "layered"\n\n[[tool.importlinter.contracts]]\n'
        'name = "layers"\ntype = "layers"\ncontainers = ["layered"]\nlayers = ["model", "lookups"]\n'
    )
    result = subprocess.run(
        [LINT_IMPORTS, "--no-cache", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "layered.lookups -> layered.model" in result.stdout

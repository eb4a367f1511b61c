"""The independence rule, enforced: ``numerics/`` imports nothing from ``theory/`` (nor from ``verify/``)."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NUMERICS = sorted((ROOT / "numerics").glob("*.py"))


def imported_modules(path: pathlib.Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in ``path`` names, at any depth (also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_numerics_has_modules():
    assert len(NUMERICS) >= 5  # the glob found the package


@pytest.mark.parametrize("path", NUMERICS, ids=[p.name for p in NUMERICS])
def test_numerics_imports_no_theory(path):
    forbidden = {m for m in imported_modules(path) if m.split(".")[0] in ("theory", "verify")}
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}: numerics must compute from definitions"


def test_the_rule_detects_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from theory.linear import OptimalAffineDenoiser\n")
    assert "theory.linear" in imported_modules(bad)


def test_one_sampler_registry():
    """Every registered sampler has a step map, every step map a registry entry (numerics.registry.SPECS)."""
    from numerics.registry import SPECS
    from numerics.samplers import REGISTRY
    from theory.steps import MULTISTEP_UPDATES, TITLES, UPDATES

    assert set(SPECS) == set(REGISTRY) == set(UPDATES) | set(MULTISTEP_UPDATES)
    assert {n for n, s in SPECS.items() if s.multistep} == set(MULTISTEP_UPDATES)
    assert all(TITLES[n] for n in SPECS)

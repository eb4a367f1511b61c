"""The mutation suite's machinery: plant one error in a theory formula, run the CLI that names it, expect FAIL.

A row is data: which theory attribute to replace (``"module:Name.attr"`` or ``"module:DICT[key]"``),
a factory that builds the wrong formula from the original, the CLI and its arguments (the smallest
documented settings that detect it), and the check that must fail. A new result adds rows.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Callable

import pytest


@dataclass(frozen=True)
class Mutation:
    name: str
    target: str                   # "module:Name.attr" or "module:DICT[key]"
    wrong: Callable               # original -> replacement
    cli: str                      # e.g. "verify.linear"
    argv: tuple
    fails: str                    # start of the name of the check that must FAIL


def resolve(target: str):
    """``(owner, key, is_item)`` of a target path; ``owner`` holds the attribute or dict item."""
    module_name, path = target.split(":")
    owner = importlib.import_module(module_name)
    if path.endswith("]"):
        dict_name, key = path[:-1].split("[")
        return getattr(owner, dict_name), key, True
    *parents, attribute = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    return owner, attribute, False


def clear_caches() -> None:
    """Forget every functools cache in ``theory`` (derived step maps, lambdified evaluators)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("theory"):
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()


def apply(monkeypatch: pytest.MonkeyPatch, mutation: Mutation) -> None:
    owner, key, is_item = resolve(mutation.target)
    if is_item:
        monkeypatch.setitem(owner, key, mutation.wrong(owner[key]))
    else:
        original = vars(owner)[key] if isinstance(owner, type) else getattr(owner, key)
        monkeypatch.setattr(owner, key, mutation.wrong(original))
    clear_caches()


def run_cli(cli: str, argv, capsys) -> tuple[int, str]:
    """Run ``python -m <cli> <argv>`` in-process; return the exit code and what it printed."""
    code = importlib.import_module(cli).main(list(argv))
    return code, capsys.readouterr().out


def failed_checks(output: str) -> list[str]:
    """The lines of a report that mark a failed check (table rows ending in FAIL, or 'failed ...' lines)."""
    return [line for line in output.splitlines() if line.rstrip().endswith("FAIL") or ": failed " in line]


def assert_caught(mutation: Mutation, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Plant ``mutation``, run its CLI: it must exit 1 with the named check among the failed rows."""
    apply(monkeypatch, mutation)
    code, output = run_cli(mutation.cli, mutation.argv, capsys)
    assert code == 1, f"{mutation.name}: {mutation.cli} exited {code}\n{output}"
    assert any(mutation.fails in line for line in failed_checks(output)), \
        f"{mutation.name}: expected '{mutation.fails}' to FAIL\n{output}"


@pytest.fixture
def fresh_caches():
    """Every theory cache forgotten before and after a test (a mutant's derived maps must not leak)."""
    clear_caches()
    yield
    clear_caches()

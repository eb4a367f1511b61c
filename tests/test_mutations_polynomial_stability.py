"""Mutation rows for Result 17 (the blow-up criterion): a planted error in ``theory.polynomial_stability``
must make ``python -m verify.polynomial`` FAIL its ``Result 17: blow-up criterion vs sampler`` check,
in 1-D (default degree 3) and in d = 2 (degree 2); the unmutated runs pass (tests/test_mutations_polynomial.py).
"""
from __future__ import annotations

import pytest

from tests.mutations import Mutation, assert_caught, fresh_caches  # noqa: F401  (fixture)

ONE_D = ("--samples", "500")
TWO_D = ("--dim", "2", "--degree", "2", "--samples", "64", "--n-train", "150")
CHECK = "Result 17: blow-up criterion vs sampler"


def exponent_k_not_k_minus_1(original):
    return lambda G, k: original(G, k + 1)  # rho = (max G)^(-1/k) instead of ^(-1/(k-1))


def growth_factor_k(original):
    return lambda sigmas, a, b, k: original(sigmas, a, b, k) * k / (k - 1)  # G with k instead of k - 1 in front


def contraction_dropped(original):
    return lambda sigmas, a, b, k: original(sigmas, a + 1.0, b, k)  # Lambda = int a instead of int (a - 1)


ROWS = [Mutation(f"{name} ({label})", f"theory.polynomial_stability:{attr}", wrong, "verify.polynomial", argv, CHECK)
        for name, attr, wrong in (("escape radius exponent 1/k", "escape_radius", exponent_k_not_k_minus_1),
                                  ("growth integral factor k", "growth_integral", growth_factor_k),
                                  ("linear contraction dropped", "growth_integral", contraction_dropped))
        for label, argv in (("1-D", ONE_D), ("2-D", TWO_D))]


@pytest.mark.parametrize("mutation", ROWS, ids=[m.name for m in ROWS])
def test_mutant_fails_the_stability_check(mutation, monkeypatch, capsys, fresh_caches):  # noqa: F811
    assert_caught(mutation, monkeypatch, capsys)

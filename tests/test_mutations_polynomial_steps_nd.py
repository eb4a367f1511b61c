"""Mutation rows for Result 16 (``theory.polynomial_steps_nd``), on the machinery of ``tests/mutations.py``.

Each planted error in the composition or the Gaussian moments must make ``python -m verify.polynomial --dim 2
--degree 2`` exit 1 with the named Result 16 check failing (the unmutated run passes:
``tests/test_mutations_polynomial.py::test_clean_run_passes[2-D]`` runs these settings).
"""
import numpy as np
import pytest

from mutations import Mutation, assert_caught, fresh_caches  # noqa: F401 (fresh_caches: a fixture)

ND = ("--dim", "2", "--degree", "2", "--samples", "64", "--n-train", "150")
PROBE = "Result 16: P_N(z) vs 3 Euler steps (probe)"
TARGET = "theory.polynomial_steps_nd:"


def _double_factorial_of_order(original):
    """``E[n^a] = a!!`` instead of ``(a - 1)!!`` for even ``a`` (E[n^2] = 2, E[n^4] = 8)."""
    return lambda order: 0 if order % 2 else int(np.prod(np.arange(order, 0, -2), dtype=object))


def _cross_terms_dropped(original):
    """Products keep only pairs of terms with equal exponents or a constant factor: ``(a + b)^2 -> a^2 + b^2``."""
    def product(p, q):
        a, b = p.exponents, q.exponents
        keep = [(r, s) for r in range(len(a)) for s in range(len(b))
                if np.array_equal(a[r], b[s]) or not a[r].any() or not b[s].any()]
        r, s = (np.array(i) for i in zip(*keep))
        return original(type(p)(p.exponents[r], p.coef[r]), type(q)(q.exponents[s], q.coef[s]))  # diagonal pairs only
    return product


def _uncentred_covariance(original):
    def output_moments(P):
        mean, cov = original(P)
        return mean, cov + np.outer(mean, mean)  # E[P P^T] reported as the covariance
    return output_moments


def _step_to_inflated_sigma(original):
    return lambda denoiser, y, sigma_value, sigma_next: original(denoiser, y, sigma_value, 1.01 * sigma_next)


MUTATIONS = [
    Mutation("Result 16: Gaussian moments a!! instead of (a - 1)!!", TARGET + "gaussian_moment",
             _double_factorial_of_order, "verify.polynomial", ND, "Result 16: exact covariance vs Monte Carlo"),
    Mutation("Result 16: cross terms dropped in the composition", TARGET + "product", _cross_terms_dropped,
             "verify.polynomial", ND, PROBE),
    Mutation("Result 16: E[P P^T] reported as the covariance", TARGET + "output_moments", _uncentred_covariance,
             "verify.polynomial", ND, "Result 16: exact covariance vs Monte Carlo"),
    Mutation("Result 16: Euler step to 1.01 sigma_next", TARGET + "euler_step", _step_to_inflated_sigma,
             "verify.polynomial", ND, PROBE),
]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutant_fails_its_check(mutation, monkeypatch, capsys, fresh_caches):
    assert_caught(mutation, monkeypatch, capsys)

"""The total-degree fit with the Gaussian noise integrated in closed form (``numerics.polynomial_noise``).

It must equal the least-squares fit whose noise integral is an exact quadrature (tensor Gauss--Hermite,
``q = k + 1`` points per axis integrate the degree-``2k`` residual exactly) wherever such a rule is at hand,
and it is what lets ``python -m verify.polynomial --dim d --degree 3`` run for ``d > 3``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import numerics.polynomial_noise as exact_noise
from numerics.polynomial import fit_multivariate, monomial_exponents
from numerics.polynomial_noise import fit_multivariate_exact, normal_moment_matrix
from verify import polynomial as cli


def tensor_rule(d: int, q: int):
    t, h = np.polynomial.hermite_e.hermegauss(q)
    nodes = np.array(list(itertools.product(t, repeat=d)))
    return nodes, np.prod(np.array(list(itertools.product(h / h.sum(), repeat=d))), axis=1)


@settings(max_examples=12)
@given(d=st.integers(1, 4), k=st.integers(0, 3), n=st.integers(3, 30), seed=st.integers(0, 2**31 - 1))
def test_equals_the_exact_quadrature_fit(d, k, n, seed):
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
    weights = rng.dirichlet(np.ones(n))
    levels = [0.05, 0.7, 9.0]
    nodes, h = tensor_rule(d, k + 1)
    quadrature = fit_multivariate(atoms, weights, levels, k, noise_nodes=nodes, noise_weights=h)
    closed = fit_multivariate_exact(atoms, weights, levels, k)
    y = atoms[:3] + rng.standard_normal((3, d))
    for sigma in levels:
        a, b = (f(torch.as_tensor(y), sigma).numpy() for f in (quadrature, closed))
        scale = 1.0 + np.abs(atoms).max()
        assert np.abs(a - b).max() <= 1e-8 * scale  # two float64 solves of one (possibly ill-conditioned) system


def test_normal_moment_matrix_is_the_gaussian_moments():
    combos = monomial_exponents(2, 2)  # (), (0,), (1,), (0, 0), (0, 1), (1, 1)
    N = normal_moment_matrix(combos, 2)
    nodes, h = tensor_rule(2, 3)  # exact for degree <= 5 per axis
    phi = np.stack([np.prod(nodes[:, list(c)], axis=1) for c in combos], axis=1)
    np.testing.assert_allclose(N, phi.T @ (h[:, None] * phi), atol=1e-13)  # Gauss-Hermite round-off
    assert N[3, 3] == 3 and N[3, 5] == 1 and N[4, 4] == 1  # E[n0^4], E[n0^2 n1^2], E[(n0 n1)^2]


def test_too_many_monomials_is_refused():
    with pytest.raises(ValueError, match="monomials of degree <= k"):
        fit_multivariate_exact(np.zeros((3, 64)), None, [1.0], 3)


def test_a_wrong_noise_moment_in_the_fit_fails_the_denoiser_check(monkeypatch, capsys):
    """The d > 3, degree-3 path of verify.polynomial uses this fit: E[n^4] = 2.7 there must FAIL its check."""
    argv = ["--dim", "4", "--degree", "3", "--samples", "64", "--n-train", "150"]
    monkeypatch.setattr(exact_noise, "_double_factorial", lambda m: 0.9 * _df(m) if m == 3 else _df(m))  # 3!! -> 2.7
    assert cli.main(argv) == 1
    assert any("Result 15 denoiser" in line and line.rstrip().endswith("FAIL")
               for line in capsys.readouterr().out.splitlines())


def _df(m: int) -> int:
    return 1 if m <= 0 else m * _df(m - 2)

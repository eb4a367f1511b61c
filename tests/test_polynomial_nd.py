"""Result 14: mixed moments used by the multivariate normal equations; positive cubature surrogates."""
from math import comb

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.polynomial import fit_multivariate, fit_random_features_law, random_projection
from theory.polynomial_nd import (MultivariateMomentEquivalence, _monomial_matrix, moments_used, multi_indices,
                                  noisy_mixed_moment, positive_cubature)

SIGMAS = [0.05, 0.7, 5.0]


@pytest.mark.parametrize("dim,degree", [(1, 1), (2, 1), (2, 2), (3, 2), (2, 3)])
def test_gram_uses_orders_up_to_2k_and_rhs_up_to_k_plus_1(dim, degree):
    used = moments_used(dim, degree)
    assert used["gram"] == list(range(2 * degree + 1))
    assert used["rhs"] == list(range(1, degree + 2))


@given(st.integers(1, 4), st.integers(0, 4))
@settings(max_examples=20)
def test_multi_indices_count_is_binomial(dim, order):
    indices = multi_indices(dim, order)
    assert len(indices) == len(set(indices)) == comb(dim + order, dim)
    assert all(sum(a) <= order for a in indices)


def test_noisy_moment_of_a_point_mass_is_a_gaussian_moment():
    point = np.array([0.3, -1.2])
    moment = lambda a: float(np.prod(point ** np.asarray(a)))
    rng = np.random.default_rng(0)
    y = point + 0.5 * rng.standard_normal((400_000, 2))
    # Monte-Carlo error of E[y1^2 y2^2] at n = 4e5: sd ~ 0.003
    assert abs(noisy_mixed_moment((2, 2), (0, 0), moment, 0.5) - np.mean(y[:, 0] ** 2 * y[:, 1] ** 2)) < 0.02


def _rotated_mixture(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    return x + 2.0 * (rng.random((n, 1)) < 0.4)


@pytest.mark.parametrize("dim,order", [(2, 4), (3, 4), (2, 6), (5, 2)])
def test_cubature_matches_every_mixed_moment_with_few_positive_atoms(dim, order):
    x = _rotated_mixture(300, dim, dim + order)
    atoms, w = positive_cubature(x, None, order)
    assert np.all(w > 0) and len(atoms) <= comb(dim + order, dim)
    A = _monomial_matrix(x, multi_indices(dim, order))
    B = _monomial_matrix(atoms, multi_indices(dim, order))
    scale = np.abs(A).mean(axis=1)
    np.testing.assert_allclose(B @ w / scale, A.mean(axis=1) / scale, atol=1e-8)  # float64 NNLS, ~1e-12 measured


def test_fits_on_the_cubature_equal_fits_on_the_points():
    x = _rotated_mixture(200, 3, 1)
    atoms, w = positive_cubature(x, None, 4)
    noise = np.random.default_rng(2).standard_normal((32, 3))
    R = random_projection(7, 3, torch.Generator().manual_seed(0))
    y = torch.as_tensor(np.random.default_rng(3).standard_normal((50, 3)) * 2)
    for fit in (lambda a, b: fit_multivariate(a, b, SIGMAS, 2, noise_nodes=noise),
                lambda a, b: fit_random_features_law(a, b, SIGMAS, 2, R, noise)):
        p, q = fit(x, None), fit(atoms, w)
        for s in SIGMAS:
            assert float((p(y, s) - q(y, s)).abs().max()) < 1e-8  # normal equations, cond x eps ~1e-11


def test_result_has_latex_and_assumptions():
    result = MultivariateMomentEquivalence()
    assert "2 k" in result.latex() or "2k" in result.latex().replace(" ", "")
    assert len(result.assumptions) == 3


@pytest.mark.parametrize("call,name", [
    (lambda: positive_cubature([[0.0, np.nan]], None, 2), "points"),
    (lambda: positive_cubature(np.ones((4, 2)), None, -1), "order"),
    (lambda: fit_multivariate(np.ones((3, 2)), None, [1.0], 1, noise_nodes=np.ones((4, 3))), "noise_nodes"),
    (lambda: fit_random_features_law(np.ones((3, 2)), None, [1.0], 1, np.ones((4, 3)), np.ones((2, 2))), "R must"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()

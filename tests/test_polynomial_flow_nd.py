"""Result 15: flow map and log-determinant in d dims, inverse flow; the theory's moment-built denoiser."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.polynomial_flow_nd import (MultivariateDenoiser, MultivariateFlowDensity, flow_escapes_nd, flow_map_nd,
                                       inverse_flow_nd, log_density)
from theory.polynomial_law import FlowDivergence


def _gaussian_points(n, d, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ np.diag(np.linspace(0.5, 1.5, d)) + 0.3


def test_degree_one_flow_of_a_gaussian_is_the_linear_law():
    # degree 1 = Wiener filter of the points' mean and covariance: T(z) = mu + sqrt(S + s^2)(S + S^2)^-1/2 z
    x = _gaussian_points(500, 2, 0)
    mu, S = x.mean(0), np.cov(x.T, bias=True)
    lam, U = np.linalg.eigh(S)
    z = np.random.default_rng(1).standard_normal((5, 2)) * 80
    T, L = flow_map_nd(MultivariateDenoiser(x, None, 1), z, 80.0, 0.002)
    gain = U @ np.diag(np.sqrt((lam + 0.002**2) / (lam + 80.0**2))) @ U.T
    expected = mu + (z - mu) @ gain.T  # the flow of an affine denoiser is affine (Result 2)
    np.testing.assert_allclose(T, expected, atol=1e-6)  # DOP853 rtol 1e-10 on |T| ~ 3
    np.testing.assert_allclose(L, np.log(np.linalg.det(gain)), atol=1e-6)


@given(st.integers(1, 3), st.integers(1, 2), st.integers(0, 5))
@settings(max_examples=6)
def test_inverse_flow_returns_the_start(dim, degree, seed):
    x = _gaussian_points(60, dim, seed) ** 3 / 3  # non-Gaussian atoms
    D = MultivariateDenoiser(x, None, degree)
    z = np.random.default_rng(seed).standard_normal((3, dim)) * 2.0
    T, _ = flow_map_nd(D, z, 2.0, 0.05)
    np.testing.assert_allclose(inverse_flow_nd(D, T, 2.0, 0.05), z, atol=1e-5)  # two DOP853 runs at rtol 1e-10


def test_log_density_is_prior_minus_logdet():
    z, L = np.zeros((1, 3)), np.array([0.5])
    assert np.isclose(log_density(z, L, 1.0)[0], -1.5 * np.log(2 * np.pi) - 0.5)


def test_result_has_three_formulas():
    assert len(MultivariateFlowDensity().formulas) == 3


@pytest.mark.parametrize("call,name", [
    (lambda: MultivariateDenoiser([[0.0, np.inf]], None, 1), "atoms"),
    (lambda: MultivariateDenoiser(np.ones((3, 64)), None, 3), "monomials"),
    (lambda: flow_map_nd(MultivariateDenoiser(np.eye(3), None, 1), np.zeros((1, 3)), -1.0, 0.1), "sigma_max"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_escapes_are_flagged_and_the_rest_is_the_flow_map():
    # degree 2 of skewed atoms: far starts along some rays blow up in finite sigma (Result 17); the rest must be T(z)
    x = _gaussian_points(60, 2, 0) ** 3 / 3
    D = MultivariateDenoiser(x, None, 2)
    theta = np.random.default_rng(0).standard_normal((8, 2))
    z = np.concatenate([0.5 * theta[:2], 200 * theta / np.linalg.norm(theta, axis=1, keepdims=True)])
    end, escaped = flow_escapes_nd(D, z, 2.0, 0.05)
    assert 0 < escaped.sum() < len(z) and not escaped[:2].any()
    for i in range(len(z)):  # each start alone: FlowDivergence exactly where it was flagged
        try:
            T, _ = flow_map_nd(D, z[i:i + 1], 2.0, 0.05)
            assert not escaped[i]
            np.testing.assert_allclose(end[i], T[0], atol=1e-6)  # two DOP853 runs at rtol 1e-10
        except FlowDivergence:
            assert escaped[i]

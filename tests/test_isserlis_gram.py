"""Result 14's normal equations assembled by Isserlis over slot subsets (``theory.isserlis_gram``).

The vectorized assembly behind :class:`theory.polynomial_flow_nd.MultivariateDenoiser` must equal the
entry-by-entry noisy-moment formula of :func:`theory.polynomial_nd.normal_system` (a per-coordinate binomial
expansion with ``E[n^g] = (g - 1)!!``: a different route to the same sums), and the numerics fit at d = 16,
where neither the symbolic system nor a quadrature rule is practical.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from numerics.polynomial_noise import fit_multivariate_exact
from theory import isserlis_gram as gram
from theory.polynomial_flow_nd import MultivariateDenoiser
from theory.polynomial_nd import multi_indices, normal_system


def _law(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
    return x ** 3 / 3 + x, rng.dirichlet(np.ones(n))  # skewed, correlated: every mixed moment enters


@settings(max_examples=15)
@given(d=st.integers(1, 3), k=st.integers(0, 3), n=st.integers(2, 25), seed=st.integers(0, 2**31 - 1),
       sigma=st.floats(0.01, 30.0))
def test_assembly_equals_the_entrywise_noisy_moments(d, k, n, seed, sigma):
    x, w = _law(n, d, seed)
    D = MultivariateDenoiser(x, w, k)
    u = (x - D.mean) / D.scale
    moment = lambda alpha: float(w @ np.prod(u ** np.asarray(alpha), axis=1))
    M_ref, V_ref = normal_system(d, k, moment, sigma / D.scale)
    order = [tuple(int(v) for v in e) for e in D.exponents]  # the assembly's monomial order
    perm = [multi_indices(d, k).index(a) for a in order]
    M, V = D.normal_equations(sigma)
    ref_M, ref_V = np.array(M_ref, float)[np.ix_(perm, perm)], np.array(V_ref, float)[perm]
    tol = 1e-11 * max(1.0, np.abs(ref_M).max())  # float64 sums of <= 64 terms of standardized (O(1)) moments
    np.testing.assert_allclose(M, ref_M, rtol=1e-11, atol=tol)
    np.testing.assert_allclose(V, ref_V, rtol=1e-11, atol=tol)


def test_isserlis_counts_the_gaussian_moments():
    # E[y^4] for one coordinate: m4 + 6 s^2 m2 + 3 s^4 (three pairings of four equal slots); E[y_0^2 y_1^2]: one pairing per side
    u, w = np.array([[1.0, 2.0], [-1.0, 0.5]]), np.array([0.5, 0.5])
    lookup = gram.MomentLookup(u, w, 4)
    c = gram.noisy_coefficients(np.array([[0, 0, 0, 0], [0, 0, 1, 1]]), lookup)
    m = lambda e0, e1: float(w @ (u[:, 0] ** e0 * u[:, 1] ** e1))
    np.testing.assert_allclose(c[0], [m(4, 0), 0, 6 * m(2, 0), 0, 3], rtol=1e-15)
    np.testing.assert_allclose(c[1], [m(2, 2), 0, m(2, 0) + m(0, 2), 0, 1], rtol=1e-15)


def test_theory_and_numerics_agree_in_dimension_16():
    x, _ = _law(60, 16, 3)
    D, fit = MultivariateDenoiser(x, None, 2), fit_multivariate_exact(x, None, [0.02, 1.0, 50.0], 2)
    y = x[:5] + np.random.default_rng(0).standard_normal((5, 16))
    for sigma in (0.02, 1.0, 50.0):
        claimed = y - D.field(y, sigma)[0]
        assert np.abs(fit(torch.as_tensor(y), sigma).numpy() - claimed).max() <= 1e-8 * D.scale  # two solves


def test_too_many_slots_and_key_overflow_are_refused():
    lookup = gram.MomentLookup(np.zeros((1, 2)), np.ones(1), 2)
    with pytest.raises(ValueError, match="more than 2 slots"):
        lookup.index(np.array([[0, 0, 1]]))
    with pytest.raises(ValueError, match="overflow"):
        gram.keys(np.zeros((1, 12), dtype=np.int64), 64)

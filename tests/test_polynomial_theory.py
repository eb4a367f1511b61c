"""Properties of the polynomial-denoiser theory: Result 9 (optimal degree-k denoiser), Result 10 (moment
equivalence, Gauss quadrature) and Result 11 (small-noise expansion, projected score).
"""
from __future__ import annotations

from math import factorial

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from theory.linear import OptimalAffineDenoiser
from theory.polynomial import (
    MomentEquivalence,
    OptimalPolynomialDenoiser,
    SmallNoiseExpansion,
    coefficients,
    denoise,
    empirical_moments,
    gauss_quadrature,
    gaussian_moment,
    moment_symbols,
    noisy_moment,
    score_projection,
)
from theory.symbols import lam, mu, sigma

SYMBOLIC = {k: OptimalPolynomialDenoiser(degree=k) for k in range(4)}  # one lambdify per degree
ORDER = 10  # moments m_0 .. m_10: enough for degree 4 (2k) and the 5-point rule (2(k+1) - 1 = 9)
HERMITE_X, HERMITE_W = np.polynomial.hermite_e.hermegauss(30)  # exact for E[poly(n)] of degree <= 59
HERMITE_W = HERMITE_W / HERMITE_W.sum()

# --------------------------------------------------------------------------- targets (moments m_0 .. m_10)


def gaussian_moments(mean, var, order=ORDER):
    """E[(mean + sqrt(var) Z)^i] by the binomial theorem."""
    return np.array([sum(float(sp.binomial(i, r)) * mean ** (i - r) * var ** (r / 2) * gaussian_moment(r)
                         for r in range(i + 1)) for i in range(order + 1)])


def uniform_moments(a, b, order=ORDER):
    return np.array([(b ** (i + 1) - a ** (i + 1)) / ((i + 1) * (b - a)) for i in range(order + 1)])


def laplace_moments(mean, scale, order=ORDER):
    """E[(mean + scale L)^i] with E[L^r] = r! for even r, 0 for odd r."""
    return np.array([sum(float(sp.binomial(i, r)) * mean ** (i - r) * scale**r * (factorial(r) if r % 2 == 0 else 0)
                         for r in range(i + 1)) for i in range(order + 1)])


def mixture_moments(w, m1, v1, m2, v2, order=ORDER):
    return w * gaussian_moments(m1, v1, order) + (1 - w) * gaussian_moments(m2, v2, order)


def training_set_moments(seed, n=9, order=ORDER):
    return empirical_moments(np.random.default_rng(seed).normal(size=n) * 1.5 + 0.3, order=order)


TARGETS = {
    "uniform": uniform_moments(-1.0, 2.0),
    "laplace": laplace_moments(0.5, 0.8),
    "mixture": mixture_moments(0.3, -1.0, 0.25, 1.5, 0.5),
    "training set": training_set_moments(0),  # 9 points > k + 1 = 5 for every k <= 4
}

SYMMETRIC = ("uniform", "laplace")  # symmetric about their mean

# --------------------------------------------------------------------------- module-level strategies
means = st.floats(-3.0, 3.0)
variances = st.floats(0.1, 10.0)
noise_levels = st.floats(0.05, 10.0)
degrees = st.integers(1, 4)
mixtures = st.tuples(st.floats(0.1, 0.9), means, st.floats(0.1, 2.0), means, st.floats(0.1, 2.0))
seeds = st.integers(0, 2**32 - 1)


def rel_err(a, b):
    """max |a - b| relative to the size of b (never divided by 0)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# --------------------------------------------------------------------------- noisy moments
def test_noisy_moment_symbolic():
    m = (1,) + moment_symbols[:4]
    m1, m2, m3, m4 = moment_symbols[:4]
    assert sp.expand(noisy_moment(1, 2, m, sigma) - (m3 + sigma**2 * m1)) == 0  # E[x0 (x0 + s n)^2]
    assert sp.expand(noisy_moment(0, 4, m, sigma) - (m4 + 6 * sigma**2 * m2 + 3 * sigma**4)) == 0


@given(seeds, st.integers(0, 4), st.integers(0, 8), noise_levels)
def test_noisy_moment_matches_quadrature_over_noise(seed, i, j, s):
    points = np.random.default_rng(seed).normal(size=5)
    brute = np.mean([np.sum(HERMITE_W * x**i * (x + s * HERMITE_X) ** j) for x in points])
    # both are float sums of ~10 terms of size up to (|x| + s)^12; rounding only
    assert abs(noisy_moment(i, j, empirical_moments(points, order=12), s) - brute) <= 1e-10 * max(
        1.0, np.mean([np.sum(HERMITE_W * np.abs(x) ** i * (np.abs(x) + s * np.abs(HERMITE_X)) ** j) for x in points]))


# --------------------------------------------------------------------------- Result 9
def test_degree_one_is_the_wiener_filter():
    c0, c1 = OptimalPolynomialDenoiser(degree=1).coefficient_exprs
    gaussian = {moment_symbols[0]: mu, moment_symbols[1]: lam + mu**2}
    affine = OptimalAffineDenoiser()
    assert sp.simplify(c1.subs(gaussian) - affine.gain_expr) == 0
    assert sp.simplify(c0.subs(gaussian) - affine.offset_expr) == 0


def test_gaussian_moments_give_the_linear_optimum_symbolically():
    k = 2
    coefs = OptimalPolynomialDenoiser(degree=k).coefficient_exprs
    gaussian = {moment_symbols[i - 1]: sp.expand(sum(sp.binomial(i, r) * mu ** (i - r) * lam ** sp.Rational(r, 2)
                                                     * gaussian_moment(r) for r in range(i + 1)))
                for i in range(1, 2 * k + 1)}
    reduced = [sp.simplify(c.subs(gaussian)) for c in coefs]
    assert reduced[2] == 0
    assert sp.simplify(reduced[1] - lam / (lam + sigma**2)) == 0


@given(means, variances, noise_levels, degrees)
def test_gaussian_moments_give_the_linear_optimum(m, v, s, k):
    c = coefficients(gaussian_moments(m, v), s, k)
    expected = np.zeros(k + 1)
    expected[:2] = m * s**2 / (v + s**2), v / (v + s**2)
    # float64 solve of a standardized (k+1)x(k+1) system, condition <= ~1e6 at these ranges
    assert rel_err(c, expected) < 1e-8


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_small_noise_limit_is_identity(name, k):
    c = coefficients(TARGETS[name], 1e-5, k)
    # c - e_1 = O(sigma^2) = 1e-10 times moment ratios of size <= ~1e2
    assert rel_err(c, np.eye(k + 1)[1]) < 1e-6


def test_small_noise_limit_symbolic():
    coefs = OptimalPolynomialDenoiser(degree=2).coefficient_exprs
    assert [sp.simplify(sp.limit(c, sigma, 0)) for c in coefs] == [0, 1, 0]


@pytest.mark.parametrize("k", [0, 1, 2, 3])
@given(mixture=mixtures, s=noise_levels)
def test_symbolic_coefficients_match_numeric(k, mixture, s):
    m = mixture_moments(*mixture)
    symbolic = SYMBOLIC[k].evaluate(m[: 2 * k + 2], s)
    # the lambdified closed form works in raw moments (no standardization): condition up to ~1e8 here
    assert rel_err(symbolic, coefficients(m, s, k)) < 1e-6


@given(seeds, degrees, noise_levels)
def test_numeric_coefficients_minimize_the_denoising_loss(seed, k, s):
    """Independent check: least squares over the exact (point x Gauss-Hermite) law of (x0, y)."""
    points = np.random.default_rng(seed).uniform(-2, 2, size=k + 3)
    x0 = np.repeat(points, HERMITE_X.size)
    y_values = x0 + s * np.tile(HERMITE_X, points.size)
    weights = np.sqrt(np.tile(HERMITE_W, points.size) / points.size)
    features = np.vander(y_values, k + 1, increasing=True) * weights[:, None]
    brute = np.linalg.lstsq(features, x0 * weights, rcond=None)[0]
    c = coefficients(empirical_moments(points), s, k)
    grid = np.linspace(-2 - s, 2 + s, 9)
    # compare the denoisers on a grid: monomial coefficients are ill-conditioned, the function is not;
    # both solve a system of condition up to ~1e8 (k = 4, well-separated points) in float64
    assert rel_err(denoise(c, grid), denoise(brute, grid)) < 1e-6


# --------------------------------------------------------------------------- Result 10
@pytest.mark.parametrize("points", [1, 2, 3, 4, 5])
def test_quadrature_reproduces_exactly_2n_minus_1_moments(points):
    m = uniform_moments(-1.0, 2.0, order=2 * points)
    nodes, weights = gauss_quadrature(m, points)
    q = empirical_moments(nodes, weights, order=2 * points)
    # Golub-Welsch in the standardized variable: eigen-decomposition rounding ~1e-14, margin 1e3
    assert rel_err(q[: 2 * points], m[: 2 * points]) < 1e-10
    # the Gauss rule is not exact for x^(2n) of a continuous law (gap = positive Christoffel term)
    assert abs(q[2 * points] - m[2 * points]) > 1e-6 * m[2 * points]


@given(mixtures, st.integers(1, 5))
def test_quadrature_of_random_mixtures(mixture, points):
    m = mixture_moments(*mixture)
    nodes, weights = gauss_quadrature(m, points)
    assert np.all(weights > 0) and np.all(np.diff(nodes) > 0)
    scale = np.abs(mixture[1]) + np.abs(mixture[3]) + 2.0  # moments of order i are of size ~scale^i
    q = empirical_moments(nodes, weights, order=2 * points - 1)
    # relative to scale^i: well-conditioned standardized inputs, 1e-14 rounding x Hankel condition
    assert np.all(np.abs(q - m[: 2 * points]) <= 1e-9 * scale ** np.arange(2 * points))


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_denoiser_cannot_tell_target_from_its_gauss_quadrature(name, k):
    m = TARGETS[name]
    nodes, weights = gauss_quadrature(m, k + 1)
    q = empirical_moments(nodes, weights, order=2 * k)
    for s in (0.1, 0.5, 2.0):
        # same normal equations up to the quadrature's ~1e-13 moment error times the condition number
        assert rel_err(coefficients(q, s, k), coefficients(m, s, k)) < 1e-9


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_surrogate_matching_only_2k_minus_1_moments_differs(name, k):
    m = TARGETS[name].copy()
    m[2 * k] *= 1.5  # still valid (raises the last Hankel diagonal entry); m_0 .. m_{2k-1} unchanged
    nodes, weights = gauss_quadrature(m, k + 1)
    q = empirical_moments(nodes, weights, order=2 * k)
    assert rel_err(q[: 2 * k], TARGETS[name][: 2 * k]) < 1e-10  # matches 2k - 1 moments (rounding)
    change = rel_err(coefficients(q, 0.5, k), coefficients(TARGETS[name], 0.5, k))
    if name in SYMMETRIC and k % 2 == 0:
        # symmetric p: the optimum is odd about the mean, so c_k = 0 and m_2k drops out (rounding only)
        assert change < 1e-9
    else:
        # a 50% change of m_2k moves the coefficients by O(1e-2) relative or more: far above rounding
        assert change > 1e-3


@pytest.mark.parametrize("name", ["mixture", "training set"])
def test_generated_law_is_the_same_for_target_and_quadrature(name):
    """Corollary: Euler on dy/dsigma = (y - D(y))/sigma maps every start identically for p and its rule."""
    k, m = 3, TARGETS[name]
    nodes, weights = gauss_quadrature(m, k + 1)
    q = empirical_moments(nodes, weights, order=2 * k)
    grid = np.geomspace(10.0, 0.05, 30)
    paths = []
    for moments in (m, q):
        y_values = np.linspace(-20.0, 20.0, 11)  # starts across the sigma_max = 10 prior
        for s, s_next in zip(grid[:-1], grid[1:]):
            y_values = y_values + (s_next - s) * (y_values - denoise(coefficients(moments, s, k), y_values)) / s
        paths.append(y_values)
    # 29 steps, each a contraction-ish map of denoisers equal to ~1e-12: rounding accumulates to << 1e-8
    assert rel_err(paths[1], paths[0]) < 1e-8


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
def test_normal_equations_use_exactly_the_first_2k_moments(k):
    assert MomentEquivalence().moments_used(k) == sp.symbols(f"m_1:{max(2 * k, 1) + 1}", real=True)


# --------------------------------------------------------------------------- Result 11
@pytest.mark.parametrize("k", [0, 1, 2])
def test_series_sigma2_term_is_the_projected_score(k):
    result = SmallNoiseExpansion(degree=k)
    assert all(sp.simplify(a - b) == 0 for a, b in zip(result.series_exprs, result.projection_exprs))


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_numeric_small_noise_expansion(name, k):
    m, grid = TARGETS[name], np.linspace(-1.0, 1.0, 5)
    score = denoise(score_projection(m, k), grid)

    def error(s):
        return np.max(np.abs((denoise(coefficients(m, s, k), grid) - grid) / s**2 - score))

    # the remainder is O(sigma^2): halving sigma divides it by ~4 (3 to 5 allows the O(sigma^4) term)
    ratio = error(0.02) / error(0.01)
    assert 3.0 < ratio < 5.0


@given(means, variances, st.integers(1, 4))
def test_gaussian_projected_score_is_the_exact_score(m, v, k):
    expected = np.zeros(k + 1)
    expected[:2] = m / v, -1.0 / v
    assert rel_err(score_projection(gaussian_moments(m, v), k), expected) < 1e-8  # float64 solve, cond <= 1e6


@given(mixtures, st.integers(1, 3))
def test_projection_matches_the_score_integrated_on_a_grid(mixture, k):
    w, m1, v1, m2, v2 = mixture
    x = np.linspace(-12.0, 12.0, 20001)
    p = w * np.exp(-(x - m1) ** 2 / (2 * v1)) / np.sqrt(2 * np.pi * v1) + (1 - w) * np.exp(
        -(x - m2) ** 2 / (2 * v2)) / np.sqrt(2 * np.pi * v2)
    dp = np.gradient(p, x)  # score * p
    gram = np.array([[np.trapezoid(x ** (i + j) * p, x) for j in range(k + 1)] for i in range(k + 1)])
    rhs = np.array([np.trapezoid(x**i * dp, x) for i in range(k + 1)])
    grid = np.linspace(-1, 1, 5)
    brute = denoise(np.linalg.solve(gram, rhs), grid)
    # grid spacing 1.2e-3: central differences and trapezoid errors ~h^2 / v ~ 1e-5 relative
    assert rel_err(denoise(score_projection(mixture_moments(*mixture), k), grid), brute) < 1e-3


# --------------------------------------------------------------------------- bad input and export
@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_degree(bad):
    with pytest.raises(ValueError, match="degree"):
        coefficients(TARGETS["uniform"], 1.0, bad)
    with pytest.raises(ValueError, match="degree"):
        score_projection(TARGETS["uniform"], bad)


def test_symbolic_degree_limits():
    with pytest.raises(ValueError, match="degree"):
        OptimalPolynomialDenoiser(degree=4)
    with pytest.raises(ValueError, match="degree"):
        SmallNoiseExpansion(degree=3)


@pytest.mark.parametrize("bad", [
    [1.0, 1.0, 0.5, 0.0, 1.0],             # m_2 < m_1^2
    [1.0, 0.0, np.nan, 0.0, 3.0],          # non-finite
    [1.0, 0.0, np.inf, 0.0, 3.0],          # non-finite
    [2.0, 0.0, 1.0, 0.0, 3.0],             # m_0 != 1
    [1.0, 0.0, 1.0],                       # too short for degree 2
    [1.0, 0.0, 1.0, 0.0, 0.5],             # m_4 < m_2^2: Hankel not positive definite
    list(empirical_moments([-1.0, 1.0], order=4)),  # 2 support points, degree 2 needs > 2
])
def test_invalid_moments(bad):
    with pytest.raises(ValueError, match="moments"):
        coefficients(bad, 1.0, 2)
    with pytest.raises(ValueError, match="moments"):
        score_projection(bad, 2)
    with pytest.raises(ValueError, match="moments"):
        gauss_quadrature(list(bad) + [0.0], 3)  # m_5 = 0 pads to m_0 .. m_5


def test_bad_sigma_and_points():
    with pytest.raises(ValueError, match="sigma"):
        coefficients(TARGETS["uniform"], 0.0, 2)
    with pytest.raises(ValueError, match="points"):
        gauss_quadrature(TARGETS["uniform"], 0)


@pytest.mark.parametrize("result, label", [
    (OptimalPolynomialDenoiser(degree=2), "c_2"),
    (OptimalPolynomialDenoiser(degree=3), "normal equations M c = v"),
    (MomentEquivalence(), "Gauss quadrature"),
    (SmallNoiseExpansion(degree=2), "projected score"),
])
def test_latex_export(result, label):
    text = result.latex()
    assert f"% {label}" in text and "Assumptions" in text and "support points" in text

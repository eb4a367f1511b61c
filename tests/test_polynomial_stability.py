"""Result 17 (theory.polynomial_stability): the Bernoulli blow-up criterion against direct integration."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st
from scipy.integrate import solve_ivp

from theory import polynomial_stability as result17
from tests.strategies import bernoulli_models

SIGMA_MAX, SIGMA_END = 80.0, 0.002
SIGMA_RTOL = 1e-3   # blow-up sigma from the 4001-point trapezoid vs DOP853 at rtol 1e-10: ~1e-5 measured
RADIUS_GAP = 0.02   # starts 2% inside / outside rho: far beyond the quadrature error (~1e-5 relative)


def coefficients(a0, a1, b0):
    return (lambda s: a0 + a1 * s / (1 + s)), (lambda s: b0 / (1 + s))


def criterion(model):
    k, a0, a1, b0 = model
    a, b = coefficients(a0, a1, b0)
    sigmas = result17.sigma_grid(SIGMA_MAX, SIGMA_END)
    G = result17.growth_integral(sigmas, a(sigmas), b(sigmas), k)
    return sigmas, G, float(result17.escape_radius(G, k))


def integrate(model, r0):
    """The ray ODE in tau = log(sigma_max / sigma) by DOP853; the sigma where r reaches 1e3 r0 (or where the
    step size underflows as r explodes: r ~ (tau_* - tau)^(-1/(k-1)) is steep for large k), or None."""
    k, a0, a1, b0 = model
    a, b = coefficients(a0, a1, b0)
    tau_end = np.log(SIGMA_MAX / SIGMA_END)

    def rhs(tau, r):
        s = SIGMA_MAX * np.exp(-tau)
        return (a(s) - 1) * r + b(s) * r**k
    escape = lambda tau, r: 1e3 * r0 - r[0]  # noqa: E731: 1e3 x the start: u = r^(1-k) within 1e-3 of 0
    escape.terminal = True
    with np.errstate(over="ignore", invalid="ignore"):  # trial steps past the blow-up overflow; the event stops it
        sol = solve_ivp(rhs, (0.0, tau_end), [r0], method="DOP853", rtol=1e-10, atol=1e-12, events=escape)
    if sol.t_events[0].size:
        return float(SIGMA_MAX * np.exp(-sol.t_events[0][0]))
    return float(SIGMA_MAX * np.exp(-sol.t[-1])) if sol.status == -1 and sol.y[0, -1] > r0 else None


@given(bernoulli_models())
def test_starts_inside_the_radius_stay_finite_outside_blow_up(model):
    _, _, rho = criterion(model)
    if not np.isfinite(rho):
        return
    assert integrate(model, (1 - RADIUS_GAP) * rho) is None
    assert integrate(model, (1 + RADIUS_GAP) * rho) is not None


@settings(max_examples=15)
@given(bernoulli_models(), st.floats(1.1, 3.0))
def test_blowup_sigma_matches_scipy(model, factor):
    sigmas, G, rho = criterion(model)
    if not np.isfinite(rho):
        return
    predicted = float(result17.blowup_sigma(factor * rho, sigmas, G, model[0]))
    observed = integrate(model, factor * rho)
    # r = 1e3 r0 is reached before r = inf, when u = r^(1-k) still holds <= 1e-3 of its start value
    assert observed == pytest.approx(predicted, rel=SIGMA_RTOL)


def test_constant_coefficients_formula_matches_the_quadrature():
    formula = result17.BernoulliBlowup().formulas["constant coefficients"].rhs
    f = sp.lambdify(sorted(formula.free_symbols, key=str), formula)  # (a, b, k, tau)
    sigmas = result17.sigma_grid(SIGMA_MAX, SIGMA_END)
    G = result17.growth_integral(sigmas, np.full(sigmas.size, 0.3), np.full(sigmas.size, 0.7), 3)
    assert G[-1] == pytest.approx(f(0.3, 0.7, 3, np.log(SIGMA_MAX / SIGMA_END)), rel=1e-5)


def test_stable_ray_has_infinite_radius():
    sigmas = result17.sigma_grid(SIGMA_MAX, SIGMA_END, 101)
    G = result17.growth_integral(sigmas, np.zeros(101), -np.ones(101), 2)
    assert np.isinf(result17.escape_radius(G, 2)) and np.isnan(result17.blowup_sigma(10.0, sigmas, G, 2))


def test_ray_terms_of_a_monomial_field():
    coef = lambda s: [0.0, 0.5, 0.0, 2.0]  # noqa: E731: D(y) = y/2 + 2 y^3, mean 0
    a, b = result17.polynomial_ray_terms(coef, 0.0, [1.0, 2.0], 3)
    assert np.allclose(a, 0.5) and np.allclose(b, 2.0)  # odd k: both rays push out alike
    a, b = result17.polynomial_ray_terms(lambda s: [0.0, 0.5, 2.0], 0.0, [1.0], 2)
    assert np.allclose(b, [[2.0, -2.0]])  # even k: the -1 ray is pulled in


@pytest.mark.parametrize("call,name", [
    (lambda: result17.growth_integral([1.0, 0.5], [0, 0], [0, 0], 1), "k"),
    (lambda: result17.growth_integral([0.5, 1.0], [0, 0], [0, 0], 2), "sigmas"),
    (lambda: result17.growth_integral([1.0, 0.5], [0, 0], [0, 0, 0], 2), "a and b"),
    (lambda: result17.blowup_sigma(-1.0, [1.0, 0.5], np.zeros((2, 1)), 2), "r0"),
    (lambda: result17.sigma_grid(1.0, 2.0), "sigma_end"),
    (lambda: result17.escape_radius(np.zeros(3), 2.5), "k"),
    (lambda: result17.feature_ray_terms(np.eye(2), np.eye(2), np.eye(2), 1.0, np.zeros((1, 2)), 2), "thetas"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()

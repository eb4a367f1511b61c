"""Result 12: the exact 1-D law of the PF-ODE with the optimal degree-k denoiser (flow map, density, CDF)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from numerics.samplers import sample_euler
from numerics.schedules import VESchedule
from tests.test_polynomial_theory import laplace_moments, mixture_moments, uniform_moments
from theory.linear import ContinuousFlowLaw
from theory.polynomial import coefficients, empirical_moments, gauss_quadrature
from theory.polynomial_law import (
    FlowDivergence,
    PolynomialFlowLaw,
    flow_map,
    generated_law,
    integrate_flow,
    optimal_coefficient_fn,
)

SIGMA_MAX, SIGMA_END = 80.0, 0.002  # VE defaults; the grid with final_zero=False ends at sigma_min = 0.002
TARGETS = {"uniform": uniform_moments(-1.0, 2.0), "laplace": laplace_moments(0.5, 0.8),
           "mixture": mixture_moments(0.3, -1.0, 0.25, 1.5, 0.5)}
FINITE = [("uniform", 3), ("mixture", 2), ("mixture", 3), ("laplace", 2)]  # no blow-up on +-8 prior sds
Z = np.linspace(-3, 3, 13) * SIGMA_MAX


def torch_denoiser(moments, degree):
    """The optimal degree-k polynomial denoiser as a torch callable ``D(y, sigma)``, coefficients() per call."""
    def D(y, sigma):
        c = coefficients(moments, sigma, degree)
        out = torch.zeros_like(y)
        for cj in c[::-1]:  # Horner
            out = out * y + float(cj)
        return out
    return D


def euler(moments, degree, z, steps):
    grid = VESchedule().grid(steps, final_zero=False)
    assert grid.sigma[-1] == pytest.approx(SIGMA_END, rel=1e-12)
    x = torch.as_tensor(np.asarray(z, dtype=np.float64))
    return sample_euler(torch_denoiser(moments, degree), x, grid).numpy()


def test_result_formulas_and_latex():
    result = PolynomialFlowLaw()
    assert set(result.formulas) == {"flow", "variational equation"}
    assert "variational" in result.latex()


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 5])
def test_fast_coefficients_equal_coefficients(degree):
    fn = optimal_coefficient_fn(TARGETS["mixture"], degree)
    for s in (SIGMA_END, 0.1, 1.0, 80.0):
        exact = coefficients(TARGETS["mixture"], s, degree)
        # same linear algebra in another order: agreement to ~100 eps of the largest coefficient
        np.testing.assert_allclose(fn(s), exact, rtol=0, atol=1e-13 * np.max(np.abs(exact)))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_degree_one_is_the_linear_flow(name):
    m = TARGETS[name]
    mu, lam = m[1], m[2] - m[1] ** 2
    T, dT = flow_map(m, 1, Z, SIGMA_MAX, SIGMA_END)
    expected, _ = ContinuousFlowLaw().ode(lam, mu, Z, 0.0, SIGMA_MAX, SIGMA_END)
    gain = np.sqrt((lam + SIGMA_END**2) / (lam + SIGMA_MAX**2))
    # rtol = 1e-11 over ~10 units of log sigma: ~1e-10 relative to the data scale
    np.testing.assert_allclose(T, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(dT, gain, rtol=1e-9)
    law = generated_law(m, 1, SIGMA_MAX, SIGMA_END)
    x = np.linspace(mu - 3 * np.sqrt(lam), mu + 3 * np.sqrt(lam), 50)
    normal = stats.norm(mu * (1 - gain), SIGMA_MAX * gain)  # T(N(0, sigma_max^2)): mean mu - mu gain
    np.testing.assert_allclose(law.cdf_at(x), normal.cdf(x), atol=1e-8)  # PCHIP of the smooth T^-1, 2001 nodes
    np.testing.assert_allclose(law.density_at(x), normal.pdf(x), rtol=1e-5)  # PCHIP of the density: O(h^3)


@pytest.mark.parametrize("name,degree", FINITE)
def test_law_is_a_probability_law(name, degree):
    law = generated_law(TARGETS[name], degree, SIGMA_MAX, SIGMA_END)
    assert np.all(np.diff(law.x) > 0) and np.all(law.density > 0)
    # trapezoid on 2001 nodes; the sharpest density (uniform, k = 3) gives ~2e-6, the tails beyond 8 sds ~1e-15
    assert law.total_mass() == pytest.approx(1.0, abs=5e-6)
    grid = np.linspace(law.x[0] - 1, law.x[-1] + 1, 500)
    cdf = law.cdf_at(grid)
    assert np.all(np.diff(cdf) >= 0) and cdf.min() >= 0 and cdf.max() <= 1
    assert law.density_at(np.array([law.x[0] - 1, law.x[-1] + 1])).tolist() == [0.0, 0.0]


def test_euler_converges_to_the_flow_map_at_first_order():
    m, z = TARGETS["mixture"], np.array([-120.0, -40.0, 10.0, 90.0])
    T, _ = flow_map(m, 3, z, SIGMA_MAX, SIGMA_END)
    errors = [np.max(np.abs(euler(m, 3, z, n) - T)) for n in (200, 400, 800)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    # first order: halving the step halves the error; 1.7..2.3 leaves room for the O(h^2) remainder
    assert np.all((ratios > 1.7) & (ratios < 2.3)), (errors, ratios)


def test_euler_samples_pass_ks_against_the_exact_cdf():
    m = TARGETS["mixture"]
    law = generated_law(m, 3, SIGMA_MAX, SIGMA_END)
    z = np.random.default_rng(0).normal(size=4000) * SIGMA_MAX
    samples = euler(m, 3, z, 1000)  # Euler error ~1e-3 of the data scale at 1000 steps, far below KS's ~0.02
    assert stats.kstest(samples, law.cdf_at).pvalue > 1e-3  # fixed seed; 1e-3 = false alarm rate if exact


@pytest.mark.parametrize("name,degree", FINITE)
def test_moment_equivalence_with_gauss_quadrature(name, degree):
    m = TARGETS[name]
    nodes, weights = gauss_quadrature(m, degree + 1)
    surrogate = empirical_moments(nodes, weights, order=2 * degree)
    T, dT = flow_map(m[: 2 * degree + 1], degree, Z, SIGMA_MAX, SIGMA_END)
    T_q, dT_q = flow_map(surrogate, degree, Z, SIGMA_MAX, SIGMA_END)
    # moments agree to round-off (~1e-14); the two solves differ by their integration error (~1e-10)
    np.testing.assert_allclose(T_q, T, rtol=0, atol=1e-8)
    np.testing.assert_allclose(dT_q, dT, rtol=1e-8)


def test_explosive_field_raises_with_the_exact_escape_sigma():
    # D = y + y^3: dy/dt = -y^3, so backwards in t = log sigma dy/d(-t) = y^3 blows up after
    # (1/y0^2 - 1/B^2)/2 units of log sigma; y0 = 0 stays at 0 and y0 = 0.01 survives (needs 5000 units)
    z = np.array([-2.0, 0.0, 0.01, 1.0])
    bound = 1e6
    with pytest.raises(FlowDivergence) as info:
        integrate_flow(lambda s: np.array([0.0, 1.0, 0.0, 1.0]), z, SIGMA_MAX, SIGMA_END, bound=bound)
    assert info.value.z.tolist() == [-2.0, 1.0]
    expected = SIGMA_MAX * np.exp(-(1 / np.array([4.0, 1.0]) - 1 / bound**2) / 2)
    np.testing.assert_allclose(info.value.sigma, expected, rtol=1e-8)  # event root to ~rtol of the solver
    assert "z=-2" in str(info.value) and "sigma=" in str(info.value)


def test_optimal_denoiser_divergence_names_starts_and_sigmas():
    z = np.array([-640.0, 0.0, 640.0])  # +-8 prior sds: Laplace's degree-3 field blows up on both tails
    with pytest.raises(FlowDivergence) as info:
        flow_map(TARGETS["laplace"], 3, z, SIGMA_MAX, SIGMA_END)
    assert info.value.z.tolist() == [-640.0, 640.0]
    assert np.all((info.value.sigma > SIGMA_END) & (info.value.sigma < SIGMA_MAX))
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("kwargs,name", [
    ({"sigma_end": 0.0}, "sigma_end"), ({"sigma_end": -1.0}, "sigma_end"), ({"sigma_end": 80.0}, "sigma_end"),
    ({"sigma_end": 100.0}, "sigma_end"), ({"degree": -1}, "degree"), ({"degree": 1.5}, "degree"),
    ({"moments": [1.0, 0.0, -1.0]}, "moments"), ({"moments": [2.0, 0.0, 1.0]}, "moments"),
    ({"moments": [1.0, np.nan, 1.0]}, "moments"), ({"sigma_max": 0.0}, "sigma_max"),
])
def test_bad_input_names_the_argument(kwargs, name):
    args = {"moments": TARGETS["mixture"], "degree": 1, "z": Z, "sigma_max": SIGMA_MAX, "sigma_end": SIGMA_END}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        flow_map(**args)
    if "z" in args and name != "degree" and name != "moments":
        with pytest.raises(ValueError, match=name):
            generated_law(args["moments"], args["degree"], args["sigma_max"], args["sigma_end"])

"""Finite-step output as an explicit polynomial P_N(z) of the initial state (theory.polynomial_steps)."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from verify.polynomial_checks import TheoryPolynomialDenoiser as MomentPolynomialDenoiser
from numerics.samplers import sample_ddim, sample_euler, sample_heun
from numerics.schedules import VESchedule, VPSchedule
from tests.test_polynomial_theory import mixture_moments
from theory.linear_law import spectral_law
from theory.polynomial import coefficients
from theory.polynomial_steps import (
    MAX_DEGREE,
    FiniteStepPolynomialLaw,
    numeric_output,
    output_degree,
    step_symbols,
    symbolic_output,
    z,
)

MOMENTS = mixture_moments(0.3, -1.0, 0.25, 1.5, 0.5)  # asymmetric: c_2 != 0, so the degree really is k^N
SAMPLE_FNS = {"euler": sample_euler, "heun": sample_heun, "ddim": sample_ddim}
# Sampler vs composed polynomial: both float64; observed <= 2e-14 of max|x_N| (k <= 3, N <= 3, VE and VP;
# Horner on P_N at |z| ~ 3 sigma_max = 240 cancels a few digits). 1e-9 leaves >4 orders of margin.
SAMPLER_RTOL = 1e-9


def run_sampler(sampler, degree, grid, zs):
    x = torch.tensor(zs, dtype=torch.float64)[:, None]
    return SAMPLE_FNS[sampler](MomentPolynomialDenoiser(MOMENTS, degree), x, grid)[:, 0].numpy()


@pytest.mark.parametrize("sampler, degree, schedule, steps", [
    ("euler", 2, VESchedule(), 3), ("euler", 3, VESchedule(), 3), ("euler", 1, VESchedule(), 50),
    ("euler", 2, VPSchedule(), 3), ("heun", 2, VESchedule(), 3), ("heun", 3, VPSchedule(), 3),
    ("ddim", 2, VPSchedule(), 3), ("euler", 2, VESchedule(), 12),  # 2^12 = MAX_DEGREE: the cap itself
])
def test_composition_matches_sampler(sampler, degree, schedule, steps):
    grid = schedule.grid(steps)
    zs = np.random.default_rng(steps + degree).standard_normal(64) * grid.prior_std
    P = numeric_output(MOMENTS, degree, grid, sampler)
    assert P.degree() <= output_degree(degree, grid, sampler) <= MAX_DEGREE
    expected = run_sampler(sampler, degree, grid, zs)
    np.testing.assert_allclose(P(zs), expected, rtol=0, atol=SAMPLER_RTOL * np.max(np.abs(expected)))


def test_degree_is_k_to_the_n():
    grid = VESchedule().grid(3)  # sigma_3 = 0: the last Euler step is D itself, still degree k
    assert numeric_output(MOMENTS, 2, grid).degree() == 8 == output_degree(2, grid)
    assert numeric_output(MOMENTS, 3, grid).degree() == 27
    assert output_degree(2, grid, "heun") == 4 * 4 * 2  # corrector steps k^2, final Euler step k
    assert numeric_output(MOMENTS, 0, grid).degree() == 0  # constant denoiser: output is c_0 at sigma_2


def test_symbolic_equals_numeric():
    grid = VESchedule().grid(3)  # s = 1, as the symbolic composition assumes
    c, sig = step_symbols(2, 3)
    values = {s_: float(v) for s_, v in zip(sig, grid.sigma)}
    for i in range(3):
        values.update(zip(c[i], coefficients(MOMENTS, float(grid.sigma[i]), 2)))
    expr = symbolic_output(2, 3)
    symbolic = np.array([float(a) for a in sp.Poly(expr.xreplace(values), z).all_coeffs()[::-1]])
    numeric = numeric_output(MOMENTS, 2, grid).coef
    assert symbolic.shape == numeric.shape == (9,)
    # Coefficient-wise relative (coefficients span 1e-43 .. 1, so no absolute floor); both float64 in a
    # different operation order: observed <= 2.1e-14, 1e-9 for margin.
    np.testing.assert_allclose(symbolic, numeric, rtol=1e-9, atol=0)


def test_symbolic_degree_and_result():
    assert sp.Poly(symbolic_output(2, 2), z).degree() == 4
    assert sp.Poly(symbolic_output(3, 1), z).degree() == 3
    assert sp.Poly(symbolic_output(1, 3), z).degree() == 1
    result = FiniteStepPolynomialLaw()
    (formula,) = result.formulas.values()
    assert sp.expand(formula.rhs - symbolic_output(2, 2)) == 0
    text = result.latex()
    assert "P_{2}" in text and "k^N" in text and result.exact


@pytest.mark.parametrize("schedule", [VESchedule(), VPSchedule()])
def test_affine_case_matches_gaussian_law(schedule):
    grid = schedule.grid(50)
    m = MOMENTS[:3]
    mean, variance = m[1], m[2] - m[1] ** 2
    P = numeric_output(m, 1, grid)
    assert P.degree() == 1
    law = spectral_law("euler", grid, np.array([variance]), np.array([mean]))
    # z ~ N(0, prior_std^2): P_N(z) ~ N(a_0, a_1^2 prior_std^2). Both are the same 50 products in float64
    # in another order; observed ~1e-15 relative, 1e-10 for margin.
    np.testing.assert_allclose(P.coef[0], law.mean[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(P.coef[1] ** 2 * grid.prior_std**2, law.cov[0], rtol=1e-10, atol=0)


def test_bad_input():
    grid = VESchedule().grid(3)
    with pytest.raises(ValueError, match="degree"):
        numeric_output(MOMENTS, -1, grid)
    with pytest.raises(ValueError, match="degree"):
        symbolic_output(-1, 2)
    with pytest.raises(ValueError, match="steps"):
        numeric_output(MOMENTS, 2, VESchedule().grid(13))  # 2^13 > 4096
    with pytest.raises(ValueError, match="steps"):
        numeric_output(MOMENTS, 2, VESchedule().grid(7), "heun")  # 4^6 * 2 > 4096
    with pytest.raises(ValueError, match="steps"):
        symbolic_output(2, 7)
    with pytest.raises(ValueError, match="steps"):
        symbolic_output(2, 0)
    with pytest.raises(ValueError, match="sampler"):
        numeric_output(MOMENTS, 2, grid, "ddpm")
    assert numeric_output(MOMENTS, 1, VESchedule().grid(500)).degree() == 1  # affine: no cap

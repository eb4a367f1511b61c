"""Result 16: finite-step output of a total-degree-k denoiser in d dims as P_N, exact mean and covariance."""
from __future__ import annotations

from types import SimpleNamespace

import itertools

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from numerics.samplers import SAMPLERS
from numerics.schedules import VESchedule, VPSchedule
from tests.strategies import ODE_SAMPLERS, seeds
from theory import polynomial as result9, polynomial_steps as result13
from theory.polynomial_nd import multi_indices
from theory.polynomial_steps_nd import (MAX_OUTPUT_DEGREE, FiniteStepMomentsND, check_size, finite_step_moments,
                                        output_moments, output_polynomial, symbolic_moments, symbolic_output)
from theory.polynomial_flow_nd import MultivariateDenoiser

SCHEDULES = {"ve": VESchedule(), "vp": VPSchedule()}
# P_N vs the numerics sampler run with the same (theory) denoiser, both float64, only the operation order
# differs: observed <= 2e-13 of max|x_N|, except Heun's corrector on the 1-step VP grid, where the sampler
# forms y_pred - D (size r = sigma_1/sigma_0 ~ 7e-5 of |y| ~ 450) and divides by sigma_1: it loses
# eps |y| sigma_0 / sigma_1 ~ 1e-9 of max|x_N| (observed <= 5e-10). 1e-8 covers that with margin.
SAMPLER_RTOL = 1e-8
# The same moments by two exact float64 routes (quadrature of the sampler map; Result 13's 1-D polynomial,
# whose raw-monomial normal equations are worse conditioned): observed <= 2e-10 of the output scale.
MOMENT_RTOL = 1e-8


class TheoryDenoiser:
    """The theory's moment-built denoiser as a numerics denoiser: tests of the composition algebra only (the
    theory-vs-fit agreement is Result 15's check; on a coarse Heun grid its gap, ~cond x eps at sigma = 0.002,
    is multiplied by h / sigma ~ 4e4 in the corrector)."""

    def __init__(self, denoiser: MultivariateDenoiser):
        self.denoiser = denoiser

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        y = x.numpy()
        return torch.as_tensor(y - self.denoiser.field(y, float(sigma))[0])


def atoms_of(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A skewed, correlated discrete law (normals plus their squares, mixed) with random weights."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, d))
    x = (g + 0.4 * g**2) @ (np.eye(d) + 0.4 * rng.standard_normal((d, d)))
    return x + rng.standard_normal(d), rng.dirichlet(np.full(n, 2.0))


def sizes_fit(d, k, grid, sampler) -> bool:
    try:
        check_size(d, k, grid, sampler)
    except ValueError:
        return False
    return True


def scale_of(cov: np.ndarray) -> float:
    return float(np.sqrt(np.trace(cov)))


@given(st.integers(1, 3), st.integers(0, 3), st.integers(1, 3), st.sampled_from(ODE_SAMPLERS),
       st.sampled_from(sorted(SCHEDULES)), seeds)
@settings(max_examples=20)
def test_composition_matches_the_numerics_sampler(d, k, steps, sampler, schedule, seed):
    grid = SCHEDULES[schedule].grid(steps)
    assume(sizes_fit(d, k, grid, sampler))
    atoms, weights = atoms_of(40, d, seed)
    denoiser = MultivariateDenoiser(atoms, weights, k)
    P = output_polynomial(denoiser, grid, sampler)
    assert P.degree() <= MAX_OUTPUT_DEGREE
    fit = TheoryDenoiser(denoiser)
    z = grid.prior_std * np.random.default_rng(seed).standard_normal((16, d))
    x = SAMPLERS[sampler](fit, torch.as_tensor(z), grid).numpy()
    np.testing.assert_allclose(P(z / grid.prior_std), x, rtol=0, atol=SAMPLER_RTOL * max(np.max(np.abs(x)), 1.0))


def test_degree_is_k_to_the_n():
    atoms, weights = atoms_of(40, 2, 0)  # skewed: no coefficient vanishes by symmetry
    grid = VESchedule().grid(3)  # sigma_3 = 0: the last Euler step is D itself, still degree k
    assert output_polynomial(MultivariateDenoiser(atoms, weights, 2), grid).degree() == 8
    assert output_polynomial(MultivariateDenoiser(atoms, weights, 3), VESchedule().grid(2)).degree() == 9
    assert output_polynomial(MultivariateDenoiser(atoms, weights, 2), VESchedule().grid(2), "heun").degree() == 8


def one_d_moments(poly: np.polynomial.Polynomial, std: float) -> tuple[float, float]:
    """Mean and variance of a 1-D polynomial of ``z ~ N(0, std^2)``: ``E z^j = std^j (j - 1)!!`` (j even)."""
    def expect(p):
        return sum(c * std**j * result9.gaussian_moment(j) for j, c in enumerate(p.coef))
    mean = expect(poly)
    return mean, expect((poly - mean) ** 2)


@given(st.integers(0, 3), st.integers(1, 3), st.sampled_from(ODE_SAMPLERS), seeds)
@settings(max_examples=20)
def test_one_dimension_agrees_with_result_13(k, steps, sampler, seed):
    grid = VESchedule().grid(steps)
    assume(sizes_fit(1, k, grid, sampler))
    atoms, weights = atoms_of(30, 1, seed)
    moments = result9.empirical_moments(atoms[:, 0], weights, order=2 * k + 2)
    mean_1d, var_1d = one_d_moments(result13.numeric_output(moments, k, grid, sampler), grid.prior_std)
    _, mean, cov = finite_step_moments(atoms, weights, k, grid, sampler)
    scale = np.sqrt(var_1d) + abs(mean_1d)
    assert abs(mean[0] - mean_1d) <= MOMENT_RTOL * scale
    assert abs(cov[0, 0] - var_1d) <= MOMENT_RTOL * scale**2


def affine_closed_form(atoms, weights, grid, sampler):
    """Degree 1: ``D(y) = mu + S (S + sigma^2)^-1 (y - mu)``; the state stays ``x = M w + c`` (w ~ N(0, I))."""
    mu = weights @ atoms
    S = np.cov(atoms.T, aweights=weights, bias=True).reshape(len(mu), len(mu))
    I = np.eye(len(mu))

    def slope(M, c, sigma):  # (y - D(y)) / sigma, applied to the affine state y = M w + c
        G = S @ np.linalg.inv(S + sigma**2 * I)
        return (I - G) @ M / sigma, (I - G) @ (c - mu) / sigma

    M, c = grid.prior_std * I, np.zeros(len(mu))
    for i in range(grid.steps):
        sigma, sigma_next, h = grid.sigma[i], grid.sigma[i + 1], grid.sigma[i + 1] - grid.sigma[i]
        M, c = M / grid.s[i], c / grid.s[i]
        dM, dc = slope(M, c, sigma)
        Mp, cp = M + h * dM, c + h * dc
        if sampler == "heun" and sigma_next > 0:
            dM2, dc2 = slope(Mp, cp, sigma_next)
            Mp, cp = M + 0.5 * h * (dM + dM2), c + 0.5 * h * (dc + dc2)
        M, c = grid.s[i + 1] * Mp, grid.s[i + 1] * cp
    return c, M @ M.T


@given(st.integers(1, 5), st.integers(1, 12), st.sampled_from(ODE_SAMPLERS), st.sampled_from(sorted(SCHEDULES)),
       seeds)
@settings(max_examples=20)
def test_affine_denoiser_gives_the_linear_gaussian_law(d, steps, sampler, schedule, seed):
    grid = SCHEDULES[schedule].grid(steps)
    atoms, weights = atoms_of(50, d, seed)
    P, mean, cov = finite_step_moments(atoms, weights, 1, grid, sampler)
    assert P.degree() == 1
    expected_mean, expected_cov = affine_closed_form(atoms, weights, grid, sampler)
    scale = scale_of(expected_cov) + np.max(np.abs(expected_mean))
    np.testing.assert_allclose(mean, expected_mean, rtol=0, atol=MOMENT_RTOL * scale)
    np.testing.assert_allclose(cov, expected_cov, rtol=0, atol=MOMENT_RTOL * scale**2)


def gauss_hermite_moments(fit, grid, sampler, d: int, degree: int):
    """Mean and covariance of the sampler output by a tensor Gauss-Hermite rule in the start, exact for a
    polynomial map of degree ``degree`` (the covariance integrand has degree 2 degree: degree + 1 nodes).
    Independent of Isserlis: the sampler runs the steps, the rule integrates."""
    t, h = np.polynomial.hermite_e.hermegauss(degree + 1)
    nodes = grid.prior_std * np.array(list(itertools.product(t, repeat=d)))
    weights = np.prod(np.array(list(itertools.product(h / h.sum(), repeat=d))), axis=1)
    x = SAMPLERS[sampler](fit, torch.as_tensor(nodes), grid).numpy()
    mean = weights @ x
    return mean, (x - mean).T @ ((x - mean) * weights[:, None])


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.sampled_from(ODE_SAMPLERS), seeds)
@settings(max_examples=15)
def test_exact_moments_match_the_sampler_by_quadrature(d, k, steps, sampler, seed):
    grid = VESchedule().grid(steps)
    assume(sizes_fit(d, k, grid, sampler))
    atoms, weights = atoms_of(40, d, seed)
    denoiser = MultivariateDenoiser(atoms, weights, k)
    P = output_polynomial(denoiser, grid, sampler)
    assume((P.degree() + 1) ** d <= 20000)  # quadrature nodes
    mean, cov = output_moments(P)
    expected_mean, expected_cov = gauss_hermite_moments(TheoryDenoiser(denoiser), grid, sampler, d, P.degree())
    scale = scale_of(expected_cov) + np.max(np.abs(expected_mean))
    np.testing.assert_allclose(mean, expected_mean, rtol=0, atol=MOMENT_RTOL * scale)
    np.testing.assert_allclose(cov, expected_cov, rtol=0, atol=MOMENT_RTOL * scale**2)


def test_exact_moments_match_brute_force_monte_carlo():
    atoms, weights = atoms_of(60, 2, 3)
    grid = VESchedule().grid(3)
    P, mean, cov = finite_step_moments(atoms, weights, 2, grid)
    x = P(np.random.default_rng(0).standard_normal((200_000, 2)))
    n = len(x)
    sd_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(axis=0) - mean) <= 6 * sd_mean)  # 6 standard errors: false alarm ~2e-9
    centred = x - mean
    products = centred[:, :, None] * centred[:, None, :]
    sd_cov = products.std(axis=0) / np.sqrt(n)  # CLT standard error of each second-moment entry
    assert np.all(np.abs(products.mean(axis=0) - cov) <= 6 * sd_cov)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_moments_of_a_known_polynomial():
    # P(w) = (w_1^2, w_1 w_2 + 2): mean (1, 2); Var w_1^2 = 2, Var w_1 w_2 = 1, Cov(w_1^2, w_1 w_2) = E w_1^3 w_2 = 0
    from theory.polynomial_steps_nd import VectorPolynomial
    P = VectorPolynomial(np.array([[2, 0], [1, 1], [0, 0]]), np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]]))
    mean, cov = output_moments(P)
    np.testing.assert_array_equal(mean, [1.0, 2.0])
    np.testing.assert_array_equal(cov, [[2.0, 0.0], [0.0, 1.0]])


class GenericDenoiser:
    """Raw monomials (mean 0, scale 1) with given coefficient matrices per noise level (for the symbolic check)."""

    def __init__(self, dim, degree, table):
        self.mean, self.scale, self.k = np.zeros(dim), 1.0, degree
        self.exponents, self.table = np.array(multi_indices(dim, degree)), table

    def coefficients(self, sigma_value):
        return self.table[sigma_value]


@pytest.mark.parametrize("degree, steps", [(2, 1), (1, 2)])
def test_symbolic_moments_equal_numeric(degree, steps):
    grid = VESchedule().grid(steps, final_zero=False)  # s = 1, as the symbolic composition assumes
    rng = np.random.default_rng(degree)
    basis = multi_indices(2, degree)
    table = {float(s): 0.3 * rng.standard_normal((len(basis), 2)) for s in grid.sigma}
    values = {sp.Symbol(f"sigma_{i}", positive=True): float(s) for i, s in enumerate(grid.sigma)}
    for i in range(steps):
        for row, alpha in enumerate(basis):
            for j in range(2):
                name = f"c_{i}_{j}_{''.join(map(str, alpha))}"
                values[sp.Symbol(name, real=True)] = table[float(grid.sigma[i])][row, j]
    mean, cov = symbolic_moments(2, degree, steps)
    numeric_mean, numeric_cov = output_moments(output_polynomial(GenericDenoiser(2, degree, table), grid))
    to_float = lambda m: np.array(m.xreplace(values).evalf(), dtype=float)
    scale = scale_of(numeric_cov) + np.max(np.abs(numeric_mean))
    np.testing.assert_allclose(to_float(mean)[:, 0], numeric_mean, rtol=0, atol=1e-10 * scale)  # round-off only
    np.testing.assert_allclose(to_float(cov), numeric_cov, rtol=0, atol=1e-10 * scale**2)


def test_result_formulas_and_latex():
    result = FiniteStepMomentsND()
    assert sorted(result.formulas) == ["covariance, d = 2, k = 1, N = 1", "mean, d = 2, k = 2, N = 1",
                                       "output degree"]
    mean, cov = symbolic_moments(2, 2, 1)
    assert sp.expand(result.formulas["mean, d = 2, k = 2, N = 1"].rhs - mean[0]) == 0
    assert sp.expand(result.formulas["covariance, d = 2, k = 1, N = 1"].rhs - symbolic_moments(2, 1, 1)[1][0, 1]) == 0
    assert "Isserlis" in result.statement and "\\begin{equation}" in result.latex()
    P, zs, _ = symbolic_output(2, 2, 1)
    assert sp.Poly(P[0], *zs).total_degree() == 2


@pytest.mark.parametrize("call, words", [
    (lambda D: output_polynomial(D(2, 2), VESchedule().grid(6)), ["steps = 6", "MAX_OUTPUT_DEGREE"]),
    (lambda D: output_polynomial(D(8, 2), VESchedule().grid(3)), ["steps = 3", "12870 monomials", "MAX_MONOMIALS"]),
    (lambda D: output_polynomial(D(2, 2), VESchedule().grid(2), "ddpm"), ["sampler"]),
    (lambda D: symbolic_output(2, 2, 2), ["steps = 2", "MAX_SYMBOLIC_DEGREE"]),
    (lambda D: symbolic_output(3, 1, 2), ["24 generic", "MAX_SYMBOLIC_COEFFICIENTS"]),
])
def test_oversize_or_bad_input_is_refused_naming_the_argument(call, words):
    def denoiser(d, k):
        atoms, weights = atoms_of(60, d, 0)
        return MultivariateDenoiser(atoms, weights, k)
    with pytest.raises(ValueError) as error:
        call(denoiser)
    assert all(w in str(error.value) for w in words), str(error.value)


def _cfg(dim, degree, **kw):
    from verify.polynomial import Config
    return Config(dim=dim, degree=degree, steps=32, samples=64, n_train=150, **kw)


def test_verify_checks_pass_and_report_what_they_skip():
    from verify import polynomial_nd, polynomial_steps_nd
    rng = np.random.default_rng([0, 14])
    train = polynomial_nd.mixture_target(2, rng)(150, rng)
    checks, measured = polynomial_steps_nd.add_checks(_cfg(2, 2), train, [], {})
    names = ["Result 16: P_N(z) vs 3 Euler steps (probe)", "Result 16: exact mean vs Monte Carlo",
             "Result 16: exact covariance vs Monte Carlo"]
    assert [c.name for c in checks] == names
    assert all(c.passed for c in checks), checks
    assert list(measured["Result 16 steps, output degree, monomials"]) == [3, 8, 45]
    grid, why = polynomial_steps_nd.grid_for(_cfg(8, 2))
    assert grid.steps == 2 and why is None  # 3 steps: 12870 monomials > MAX_MONOMIALS
    grid, why = polynomial_steps_nd.grid_for(SimpleNamespace(dim=40, degree=4))  # the CLI refuses it earlier
    assert grid is None and "MAX_MONOMIALS" in why
    _, measured = polynomial_steps_nd.add_checks(_cfg(3, 2, features=12), train, [], {})
    assert measured["Result 16 checks"].startswith("not run: they test the total-degree class")


def test_moment_checks_fail_on_a_wrong_law():
    from verify.polynomial_steps_nd import moment_checks
    x = np.random.default_rng(1).standard_normal((20000, 2))
    assert all(c.passed for c in moment_checks(x, np.zeros(2), np.eye(2), 1e-3))
    mean_off, cov_off = moment_checks(x, np.array([0.05, 0.0]), 1.1 * np.eye(2), 1e-3)
    assert not mean_off.passed and not cov_off.passed

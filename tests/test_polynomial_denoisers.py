"""Polynomial denoisers: closed form from moments vs least squares from the atoms, moment equivalence in samplers."""
import numpy as np
import pytest
import torch

from numerics.denoisers import WienerDenoiser
from numerics.polynomial import (fit_multivariate, fit_polynomial, fit_random_features,
                                 gaussian_mixture_rule)
from numerics.samplers import sample_euler, sample_heun
from numerics.schedules import VESchedule
from theory.polynomial import empirical_moments, gauss_quadrature
from verify.polynomial_checks import TheoryPolynomialDenoiser as MomentPolynomialDenoiser  # Result 9 as a denoiser

GRID = VESchedule().grid(18)           # Karras VE grid, sigma 80 .. 0.002, then 0
SIGMAS = [0.002, 0.05, 0.7, 3.0, 80.0]
# A degree-k fit is exact in exact arithmetic; float64 round-off in a (k+1)-column least squares and the
# Hankel solve: measured <= 6e-14 relative here (1.1e-11 absolute at k = 4 on a gamma law with |y| up to
# 400); 1e-9 leaves margin, relative to max(1, |output|).
EXACT_RTOL = 1e-9


def _laws():
    rng = np.random.default_rng(0)
    uniform = (np.linspace(-1.0, 1.0, 11), None)                                   # uniform-like discrete
    bimodal = np.concatenate([rng.normal(-2.0, 0.3, 300), rng.normal(1.5, 0.6, 200)])
    w = rng.uniform(0.5, 1.5, bimodal.shape[0])
    return {"uniform": uniform, "bimodal": (bimodal, w / w.sum()), "laplace": (rng.laplace(0.5, 1.0, 1000), None)}


def _probe(sigma):
    """Inputs spanning the noisy law at this sigma: the atoms' range widened by 4 sigma."""
    return torch.linspace(-3.0 - 4 * sigma, 3.0 + 4 * sigma, 201, dtype=torch.float64)[:, None]


def _max_rel(a, b):
    return float(((a - b).abs() / b.abs().clamp(min=1.0)).max())


def test_degree_one_is_the_wiener_filter():
    atoms, w = _laws()["bimodal"]
    mean, var = w @ atoms, w @ (atoms - w @ atoms) ** 2
    wiener = WienerDenoiser([mean], [[var]])
    fitted = fit_polynomial(atoms, w, SIGMAS, 1)
    from_moments = MomentPolynomialDenoiser(empirical_moments(atoms, w, 2), 1)
    for sigma in SIGMAS:
        y = _probe(sigma)
        # both are affine maps with O(1) coefficients: agreement to float64 round-off, ~1e-14 relative
        assert _max_rel(fitted(y, sigma), wiener(y, sigma)) < 1e-10
        assert _max_rel(from_moments(y, sigma), wiener(y, sigma)) < 1e-10


@pytest.mark.parametrize("law", ["uniform", "bimodal", "laplace"])
@pytest.mark.parametrize("degree", [1, 2, 3, 4])
def test_fitted_from_atoms_equals_closed_form_from_moments(law, degree):
    atoms, w = _laws()[law]
    fitted = fit_polynomial(atoms, w, SIGMAS, degree)       # atoms + Gauss-Hermite, no moments formed
    from_moments = MomentPolynomialDenoiser(empirical_moments(atoms, w, 2 * degree), degree)
    for sigma in SIGMAS:
        y = _probe(sigma)
        assert _max_rel(fitted(y, sigma), from_moments(y, sigma)) < EXACT_RTOL


def _sampler_outputs(denoisers, sampler):
    start = 80.0 * torch.randn(400, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return [sampler(D, start.clone(), GRID) for D in denoisers]


def _surrogates(samples, degree, bump_2k):
    m = empirical_moments(samples, order=2 * degree + 1)
    bumped = m.copy()
    bumped[2 * degree] *= 1.0 + bump_2k                        # keeps m_0..m_2k-1 and m_2k+1, moves m_2k
    return gauss_quadrature(m, degree + 1), gauss_quadrature(bumped, degree + 1)


@pytest.mark.parametrize("sampler", [sample_euler, sample_heun])
@pytest.mark.parametrize("degree", [2, 3])
def test_moment_equivalence_in_the_sampler(sampler, degree):
    samples = np.random.default_rng(2).gamma(2.0, 1.0, 2000)  # asymmetric target, a 2000-point training set
    quadrature, surrogate = _surrogates(samples, degree, bump_2k=0.05)
    fitted = [fit_polynomial(samples, None, GRID.sigma, degree),
              fit_polynomial(*quadrature, GRID.sigma, degree),
              fit_polynomial(*surrogate, GRID.sigma, degree)]
    from_atoms, from_quadrature, from_surrogate = _sampler_outputs(fitted, sampler)
    # same denoiser up to round-off at each of 18 steps (measured 1.4e-14 .. 1.2e-13 absolute): 1e-9
    assert float((from_atoms - from_quadrature).abs().max()) < 1e-9
    # negative control: m_2k off by 5% changes the samples by 0.25 .. 0.62 (measured); 1e-4 is clear
    assert float((from_atoms - from_surrogate).abs().max()) > 1e-4


def test_symmetric_target_at_even_degree_ignores_m_2k():
    """Known finding: for a symmetric law and even k the optimal denoiser is odd, so m_2k drops out."""
    half = np.random.default_rng(3).laplace(0.0, 1.0, 500)
    samples = np.concatenate([half, -half])                    # exactly symmetric: odd moments are 0
    quadrature, surrogate = _surrogates(samples, 2, bump_2k=0.05)
    a, b = _sampler_outputs([fit_polynomial(*q, GRID.sigma, 2) for q in (quadrature, surrogate)], sample_euler)
    assert float((a - b).abs().max()) < 1e-9                   # round-off only, as in the equivalence test


def _cloud(n=300, d=2, seed=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) @ np.array([[1.0, 0.4], [0.0, 0.5]])[:d, :d] + 1.0
    return x + 0.5 * x**2 * (np.arange(d) == 0)                # curved: a skewed, non-Gaussian cloud


def test_multivariate_degree_one_is_the_affine_least_squares_fit():
    atoms = _cloud()
    w = np.random.default_rng(5).uniform(0.5, 1.5, atoms.shape[0])
    w /= w.sum()
    mean = w @ atoms
    cov = (atoms - mean).T @ ((atoms - mean) * w[:, None])
    fitted, wiener = fit_multivariate(atoms, w, SIGMAS, 1), WienerDenoiser(mean, cov)
    y = torch.as_tensor(atoms[:50] + np.random.default_rng(6).standard_normal((50, 2)))
    for sigma in SIGMAS:
        # the exact affine optimum of the weighted law is the Wiener filter of its mean/cov: round-off only
        assert _max_rel(fitted(y, sigma), wiener(y, sigma)) < 1e-10


def test_multivariate_in_one_dimension_matches_the_one_dimensional_fit():
    atoms, w = _laws()["bimodal"]
    multi, single = fit_multivariate(atoms[:, None], w, SIGMAS, 3), fit_polynomial(atoms, w, SIGMAS, 3)
    for sigma in SIGMAS:
        y = _probe(sigma)
        assert _max_rel(multi(y, sigma), single(y, sigma)) < EXACT_RTOL  # same problem, another basis


def test_multivariate_degree_two_beats_affine_and_noisy_copies_approach_the_exact_rule():
    atoms, sigma = _cloud(), 0.5
    exact = fit_multivariate(atoms, None, [sigma], 2)
    copies = fit_multivariate(atoms, None, [sigma], 2, copies=200, generator=torch.Generator().manual_seed(7))
    affine = fit_multivariate(atoms, None, [sigma], 1)
    x0 = torch.as_tensor(atoms).repeat(20, 1)
    y = x0 + sigma * torch.randn(x0.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    loss = {name: float(((D(y, sigma) - x0) ** 2).sum(1).mean()) for name, D in
            (("exact", exact), ("copies", copies), ("affine", affine))}
    assert loss["exact"] < loss["affine"]                      # the quadratic term captures the curvature
    # 60000 draws: Monte Carlo error of the fitted map ~1/sqrt(60000) relative; 2% on the loss is ample
    assert abs(loss["copies"] - loss["exact"]) < 0.02 * loss["exact"]
    with pytest.raises(ValueError, match="copies"):
        fit_multivariate(np.zeros((5, 4)) + np.arange(5)[:, None], None, [sigma], 3)  # d > 3, k > 2: no rule


@pytest.mark.parametrize("d,k", [(5, 1), (8, 2)])
def test_symmetric_rule_fit_in_d_above_3_is_the_exact_optimum(d, k):
    from numerics.polynomial import symmetric_gaussian_rule
    atoms = np.random.default_rng(d).standard_normal((40, d)) ** 3  # non-Gaussian
    exact = fit_multivariate(atoms, None, [0.7], k)                 # the symmetric rule of degree 2k + 1
    copies = fit_multivariate(atoms, None, [0.7], k, copies=4000, generator=torch.Generator().manual_seed(1))
    y = torch.as_tensor(atoms[:10] + 0.7 * np.random.default_rng(0).standard_normal((10, d)))
    # 4000 copies per atom: Monte-Carlo error of the fitted map ~ 1/sqrt(160000 / features) relative
    assert float((exact(y, 0.7) - copies(y, 0.7)).abs().max()) < 0.1 * float(exact(y, 0.7).abs().max())
    nodes, w = symmetric_gaussian_rule(d, 2 * k + 1)
    np.testing.assert_allclose(w @ nodes**4, 3.0, atol=1e-12) if k == 2 else None  # E[n_i^4] = 3, float64


def test_random_features_reduce_the_loss_and_are_deterministic():
    train, sigmas = _cloud(200), [0.3, 1.0]
    fit = lambda seed: fit_random_features(train, sigmas, 3, 40, 20, torch.Generator().manual_seed(seed))
    a, b, c = fit(9), fit(9), fit(10)
    x0 = torch.as_tensor(_cloud(200, seed=11))                 # held-out points of the same law
    for sigma in sigmas:
        y = x0 + sigma * torch.randn(x0.shape, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
        assert float(((a(y, sigma) - x0) ** 2).sum(1).mean()) < 0.5 * float((x0**2).sum(1).mean())
        assert torch.equal(a(y, sigma), b(y, sigma))           # same generator state -> same R, noise, read-out
        assert not torch.equal(a(y, sigma), c(y, sigma))


def test_float32_in_float32_out():
    atoms, w = _laws()["uniform"]
    y = _probe(0.7).to(torch.float32)
    for D in (fit_polynomial(atoms, w, [0.7], 3), fit_multivariate(atoms[:, None], w, [0.7], 2),
              fit_random_features(atoms[:, None], [0.7], 2, 8, 4, torch.Generator().manual_seed(0))):
        out = D(y, 0.7)
        assert out.dtype == torch.float32
        assert torch.allclose(out.double(), D(y.double(), 0.7), rtol=1e-6, atol=1e-6)  # float32 input rounding


@pytest.mark.parametrize("call, name", [
    (lambda: fit_polynomial([0.0, 1.0, 2.0], None, [1.0], 2)(torch.zeros(3, 1), 0.5), "sigma"),
    (lambda: fit_polynomial([0.0, 1.0, 2.0], None, [1.0], -1), "degree"),
    (lambda: fit_polynomial([0.0, 1.0, 2.0], None, [1.0], 1.5), "degree"),
    (lambda: MomentPolynomialDenoiser([1.0, 0.0, 1.0], -1), "degree"),
    (lambda: fit_random_features(np.ones((3, 2)), [1.0], -2, 4, 2), "degree"),
    (lambda: fit_polynomial([0.0, np.nan, 2.0], None, [1.0], 1), "atoms"),
    (lambda: fit_multivariate([[0.0, np.inf]], None, [1.0], 1), "atoms"),
    (lambda: fit_random_features([[0.0, np.nan]], [1.0], 2, 4, 2), "train"),
    (lambda: fit_polynomial([0.0, 1.0, 2.0], [0.2, 0.2, 0.2], [1.0], 1), "weights"),
    (lambda: fit_polynomial([0.0, 1.0, 2.0], [0.5, 0.5], [1.0], 1), "weights"),
    (lambda: fit_polynomial(np.zeros((3, 2)), None, [1.0], 1), "atoms"),
    (lambda: fit_multivariate(np.eye(3), None, [1.0], 1)(torch.zeros(4, 2), 1.0), "x must"),
    (lambda: fit_polynomial([0.0, 1.0, 2.0], None, [1.0], 3, quadrature_points=2), "quadrature_points"),
    (lambda: fit_polynomial([0.0, 1.0, 2.0], None, [-1.0], 1), "sigmas"),
    (lambda: MomentPolynomialDenoiser([1.0, 0.0, 1.0, 0.0, 1.0], 2), "moments"),  # 2-point law, degree 2
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_numerics_polynomial_imports_nothing_from_theory():
    import ast
    import pathlib

    import numerics.polynomial as module
    tree = ast.parse(pathlib.Path(module.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n == "theory" or n.startswith("theory.")]


@pytest.mark.parametrize("degree", [1, 2, 4])
def test_mixture_rule_fit_is_the_mixture_optimum(degree):
    from tests.test_polynomial_theory import mixture_moments
    atoms, w = gaussian_mixture_rule([0.3, 0.7], [-1.0, 1.5], [0.5, np.sqrt(0.5)], degree + 1)
    fitted = fit_polynomial(atoms, w, SIGMAS, degree)
    closed = MomentPolynomialDenoiser(mixture_moments(0.3, -1.0, 0.25, 1.5, 0.5), degree)
    for sigma in SIGMAS:
        y = _probe(sigma)
        assert _max_rel(fitted(y, sigma), closed(y, sigma)) < EXACT_RTOL


@pytest.mark.parametrize("args", [([0.5, 0.4], [0.0, 1.0], [1.0, 1.0]), ([1.0], [0.0], [-1.0]),
                                  ([0.5, 0.5], [0.0], [1.0, 1.0])])
def test_mixture_rule_rejects_bad_components(args):
    with pytest.raises(ValueError, match="weights, means, stds"):
        gaussian_mixture_rule(*args, 3)

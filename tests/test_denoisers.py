"""Affine denoisers: the closed form, least-squares fits and SGD training against Result 1 / Result 4, and
the generated law of a denoiser trained on n <= d points (confined to their affine span)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.denoisers import TabulatedAffineDenoiser, WienerDenoiser, fit_affine, train_linear
from numerics.sampling import sample
from strategies import SAMPLER_NAMES, compatible, make_grid, seeds, sigmas, target_moments, training_sets
from theory.linear import OptimalAffineDenoiser, TrainingSetLaw
from theory.linear_law import continuous_law, marginal_start, prior_start, wiener_law

OPTIMAL = OptimalAffineDenoiser()


def affine_distance(a, b, levels) -> float:
    """max over noise levels of the Frobenius distance between the two gains."""
    return max(float(np.linalg.norm(a.affine(level)[0] - b.affine(level)[0])) for level in levels)


# ====================================================================== the closed form
@given(target_moments(), sigmas, seeds)
def test_wiener_call_is_its_affine_map(moments, noise, seed):
    """__call__ equals x G^T + b from affine() (normal equations), which equals Result 1's formula."""
    mean, cov = moments
    denoiser = WienerDenoiser(mean, cov)
    G, b = denoiser.affine(noise)
    G_opt, b_opt = OPTIMAL.affine(mean, cov, noise)
    scale = 1 + np.abs(mean).max()
    np.testing.assert_allclose(G, G_opt, rtol=0, atol=1e-9)  # solve vs eigh: cond(Sigma + sigma^2 I) x eps
    np.testing.assert_allclose(b, b_opt, rtol=0, atol=1e-9 * scale)
    x = torch.as_tensor(np.random.default_rng(seed).standard_normal((5, len(mean))) * 10 + mean)
    out = denoiser(x, noise).numpy()
    expected = x.numpy() @ G.T + b
    # float64: two association orders of the same products, |x| <= ~50, |G| <= 1
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12 * (1 + np.abs(x.numpy()).max()))


def test_wiener_call_follows_the_dtype():
    denoiser = WienerDenoiser(np.ones(3), np.diag([1.0, 2.0, 3.0]))
    out = denoiser(torch.zeros(4, 3, dtype=torch.float32), 0.5)
    assert out.dtype == torch.float32 and out.shape == (4, 3)


@given(seeds, st.integers(1, 5))
def test_tabulated_denoiser_applies_its_table(seed, d):
    rng = np.random.default_rng(seed)
    table = {0.5: (rng.standard_normal((d, d)), rng.standard_normal(d)), 2.0: (np.eye(d), np.zeros(d))}
    denoiser = TabulatedAffineDenoiser(table)
    x = torch.as_tensor(rng.standard_normal((3, d)))
    np.testing.assert_allclose(denoiser(x, 0.5).numpy(), x.numpy() @ table[0.5][0].T + table[0.5][1],
                               rtol=0, atol=1e-12)  # float64 matmul, O(1) entries
    np.testing.assert_array_equal(denoiser(x, np.float64(2.0)).numpy(), x.numpy())  # identity, numpy key


# ====================================================================== Result 4: fitted on a finite set
FIT_ROWS = 20000  # n * copies noisy rows per noise level


@settings(max_examples=15)
@given(training_sets(min_n=2, max_n=5), seeds)
def test_fit_affine_approaches_the_1_over_n_moments(train, seed):
    """Least squares over many noisy copies of n points approaches the optimum for (mu_hat, Sigma_hat / n),
    not for the unbiased Sigma_hat / (n - 1): the training target is the empirical distribution."""
    n = len(train)
    mean, cov = TrainingSetLaw.moments(train)
    levels = np.sqrt(np.linalg.eigvalsh(cov).max()) * np.array([0.5, 1.0, 2.0])  # where the two gains differ most
    fitted = fit_affine(train, levels, FIT_ROWS // n, torch.Generator().manual_seed(seed % 2**31))
    biased = WienerDenoiser.from_training_set(train)
    unbiased = WienerDenoiser(mean, cov * n / (n - 1))
    near, far = affine_distance(fitted, biased, levels), affine_distance(fitted, unbiased, levels)
    # 20000 rows: gain error ~ 1/sqrt(2e4) = 7e-3 per entry of the range, measured <= 0.021 (Frobenius, d <= 6)
    assert near < 0.05
    assert near < 0.5 * far  # measured ratio <= 0.27 over 60 random sets with n = 2..5
    for level in levels:  # the offset, relative to the data scale
        b_fit, b = fitted.affine(level)[1], biased.affine(level)[1]
        assert np.abs(b_fit - b).max() <= 0.05 * (np.abs(mean).max() + np.sqrt(np.abs(cov).max()))


def test_fit_affine_tabulates_every_positive_level_once():
    train = np.random.default_rng(0).standard_normal((10, 2))
    levels = np.array([2.0, 0.0, 0.5, 2.0])
    fitted = fit_affine(train, levels, 3, torch.Generator().manual_seed(0))
    assert sorted(fitted.table) == [0.5, 2.0]  # sigma = 0 (the last grid point) is never denoised
    again = fit_affine(train, levels, 3, torch.Generator().manual_seed(0))
    for level in (0.5, 2.0):
        # seeded, so the same noise; LAPACK's lstsq may still differ in the last bit between calls
        # (alignment-dependent kernels): measured 7e-18 on entries ~0.04
        np.testing.assert_allclose(fitted.affine(level)[0], again.affine(level)[0], rtol=0, atol=1e-14)


def test_fit_affine_on_a_grid_drives_the_sampler():
    """A denoiser fitted on the sampler's grid is what the sampler can run; the exact law exists for it."""
    train = np.random.default_rng(1).standard_normal((30, 3))
    grid = make_grid("ddpm", 6)
    fitted = fit_affine(train, grid.sigma, 20, torch.Generator().manual_seed(1))
    assert set(fitted.table) == {float(s) for s in grid.sigma if s > 0}
    x = sample(fitted, "ddpm", grid, np.zeros(3), np.eye(3), 16, seed=0)
    assert x.shape == (16, 3) and torch.isfinite(x).all()


def test_train_linear_converges_to_the_closed_form():
    """Adam with a linear decay to 0: the error falls with the iterations, down to the SGD noise floor of
    batch 256 (measured 7e-3..1.4e-2 at 1600 iterations over seeds 0-2; 0.27..0.43 at 100)."""
    rng = np.random.default_rng(0)
    train = rng.standard_normal((20, 2)) * np.array([2.0, 0.5]) + 1.0
    levels = [0.3, 3.0]
    closed = WienerDenoiser.from_training_set(train)

    def error(iterations):
        trained = train_linear(train, levels, iterations=iterations, generator=torch.Generator().manual_seed(0))
        return max(np.linalg.norm(trained.affine(s)[0] - closed.affine(s)[0])
                   + np.linalg.norm(trained.affine(s)[1] - closed.affine(s)[1]) for s in levels)

    short, long = error(100), error(1600)
    assert long < short / 5
    assert long < 0.03  # SGD noise floor ~1e-2 (see docstring), with room


@pytest.mark.parametrize("n", [2, 3, 4])
def test_training_set_gain_is_the_1_over_n_one_symbolically(n):
    assert TrainingSetLaw().derive(n) is True


@given(training_sets())
def test_training_moments_are_numpys_biased_moments(train):
    mean, cov = TrainingSetLaw.moments(train)
    np.testing.assert_allclose(mean, train.mean(axis=0), rtol=0, atol=1e-13 * (1 + np.abs(train).max()))  # float64
    expected = np.cov(train.T, bias=True).reshape(cov.shape)
    np.testing.assert_allclose(cov, expected, rtol=0, atol=1e-12 * (1 + np.abs(expected).max()))  # float64


# ====================================================================== n <= d: the affine span
def span_complement(train) -> np.ndarray:
    """Orthonormal basis of the directions orthogonal to span{x_i - mu_hat} (dimension d - (n - 1))."""
    centred = train - train.mean(axis=0)
    _, _, vt = np.linalg.svd(centred)
    return vt[len(train) - 1:].T


EXACT_TO_ZERO = [(a, b) for a in SAMPLER_NAMES for b in ("ve", "ddpm")
                 if compatible(a, b) and a in ("euler", "heun", "ddim", "ddpm")]


@settings(max_examples=10)
@given(training_sets(wide=True), st.sampled_from(EXACT_TO_ZERO), st.sampled_from([prior_start, marginal_start]),
       st.integers(1, 20))
def test_generated_law_is_confined_to_the_affine_span(train, pair, start, steps):
    """With n <= d the 1/n covariance has rank n - 1: the continuous flows generate N(mu_hat, Sigma_hat),
    and every sampler whose last step lands on D(y) (Euler, DDIM, Heun's Euler step, DDPM's posterior with
    zero variance at sigma = 0) puts all its mass in mu_hat + span{x_i - mu_hat}, from any start.
    (Euler--Maruyama and the exponential integrator add noise on their last step, so they do not.)"""
    sampler, schedule = pair
    mean, cov = TrainingSetLaw.moments(train)
    null = span_complement(train)
    scale = np.sqrt(np.abs(cov).max())
    law = wiener_law(sampler, make_grid(schedule, steps), mean, cov, start)
    C = law.covariance()
    assert np.abs(null.T @ C @ null).max() <= 1e-12 * scale**2  # float64: eigenvalue round-off of a rank-(n-1) cov
    assert np.abs(null.T @ (law.mean - mean)).max() <= 1e-12 * (scale + np.abs(mean).max())  # float64 round-off
    continuous = continuous_law(sampler, make_grid(schedule, steps), mean, cov, marginal_start)
    np.testing.assert_allclose(continuous.covariance(), cov, rtol=0, atol=1e-12 * scale**2)  # float64 closed form
    np.testing.assert_allclose(continuous.mean, mean, rtol=0, atol=1e-12 * (scale + np.abs(mean).max()))  # same


@pytest.mark.parametrize("sampler, schedule", [("heun", "ve"), ("ddpm", "ddpm"), ("ddim", "ve")])
def test_samples_lie_on_the_affine_span_and_are_new(sampler, schedule):
    rng = np.random.default_rng(3)
    train = rng.standard_normal((3, 6)) * 2 + 1  # n = 3 points in d = 6: a plane
    mean, cov = TrainingSetLaw.moments(train)
    grid = make_grid(schedule, 12)
    start = marginal_start(grid, mean, cov)
    x = sample(WienerDenoiser.from_training_set(train), sampler, grid, start.mean, start.covariance(), 500,
               seed=7).numpy()
    scale = np.sqrt(np.abs(cov).max())
    assert np.abs((x - mean) @ span_complement(train)).max() <= 1e-10 * scale  # float64 round-off (measured 5e-13)
    nearest = np.linalg.norm(x[:, None, :] - train[None, :, :], axis=2).min()
    assert nearest > 1e-3 * scale  # a continuous law on the plane: no sample is a training point

"""Gaussian mixtures and Result 7 (fixed linear encoder, unrestricted decoder).

The decoder ``GaussianMixture.conditional_mean`` is checked against a brute-force Bayes posterior
written here from scipy densities (no shared code) and against Tweedie's formula; its projection is
the projected mixture's own Bayes denoiser (the key identity of Result 7); at sigma -> 0 on a
training set it snaps to training points; ``FixedEncoderLaw.sample`` reproduces the mixture when
``W = I`` and the projected law for any ``W``; a short Heun run passes the regression checks of
``verify.regression`` and its negative control fails; bad input is refused with clear messages.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from numerics.bottleneck import EncoderDecoderDenoiser
from numerics.schedules import VESchedule
from strategies import seeds, training_sets
from theory.encoder_decoder import FixedEncoderLaw, projected_bayes_identity
from theory.mixture import GaussianMixture, encoder
from verify import regression
from verify.targets import mixture_model, random_encoder, random_rotation

MAX_DIM = 4         # mixtures are checked point by point against scipy: keep them small
MAX_COMPONENTS = 4
MC_SAMPLES = 3000
MC_Z = 5.0          # Monte-Carlo tolerance in standard errors: two-sided p ~ 6e-7 per comparison


# ====================================================================== strategies (nouns)
@st.composite
def mixtures_of(draw, min_dim: int = 1, max_dim: int = MAX_DIM, max_components: int = MAX_COMPONENTS,
                singular: bool = False):
    """Seeded mixtures: Dirichlet weights, spread means, rotated component covariances (variances 0.03 .. 3).

    With ``singular`` some components are degenerate (zero variance along some directions, or point masses).
    """
    d = draw(st.integers(min_dim, max_dim))
    K = draw(st.integers(1, max_components))
    rng = np.random.default_rng(draw(seeds))
    weights = rng.dirichlet(np.ones(K))
    weights /= weights.sum()
    means = rng.normal(0.0, 2.0, (K, d))
    covs = []
    for _ in range(K):
        variances = 10.0 ** rng.uniform(-1.5, 0.5, d)
        if singular:
            variances[: rng.integers(0, d + 1)] = 0.0
        R = random_rotation(d, rng)
        C = (R * variances) @ R.T
        covs.append(0.5 * (C + C.T))
    return GaussianMixture(weights, means, np.stack(covs))


mixtures = mixtures_of()
"""Non-degenerate mixtures, d = 1..4, K = 1..4."""

degenerate_mixtures = mixtures_of(singular=True)
"""Mixtures with singular or point-mass components (the decoder still needs sigma > 0 there)."""

noise_levels = st.floats(-2.0, 1.0).map(lambda e: float(10.0**e))
"""sigma in 0.01 .. 10."""


@st.composite
def mixture_encoders_of(draw, mixture_strategy=mixtures):
    """``(mixture, W)`` with ``W`` a seeded ``d x r`` orthonormal encoder, ``1 <= r <= d``."""
    mixture = draw(mixture_strategy)
    r = draw(st.integers(1, mixture.dim))
    return mixture, random_encoder(mixture.dim, r, draw(seeds))


mixture_encoders = mixture_encoders_of()
degenerate_mixture_encoders = mixture_encoders_of(degenerate_mixtures)


# ====================================================================== references (independent of the library)
def brute_force_bayes_denoiser(weights, means, covs, y, noise):
    """``E[x0 | x0 + sigma n = y]`` by Bayes' rule over components with scipy densities, point by point."""
    d = means.shape[1]
    out = np.empty_like(y)
    for row, point in enumerate(y):
        logs, regressions = [], []
        for w, m, C in zip(weights, means, covs):
            if w == 0:
                continue  # a component of weight 0 has posterior weight 0
            marginal = C + noise**2 * np.eye(d)
            logs.append(np.log(w) + multivariate_normal(m, marginal).logpdf(point))
            regressions.append(m + C @ np.linalg.solve(marginal, point - m))
        logs = np.array(logs)
        posterior = np.exp(logs - logs.max())
        posterior /= posterior.sum()
        out[row] = posterior @ np.array(regressions)
    return out


def log_noisy_density(weights, means, covs, point, noise):
    d = means.shape[1]
    terms = [np.log(w) + multivariate_normal(m, C + noise**2 * np.eye(d)).logpdf(point)
             for w, m, C in zip(weights, means, covs) if w > 0]
    top = max(terms)
    return top + np.log(np.sum(np.exp(np.array(terms) - top)))


def noisy_draws(mixture, n, noise, seed):
    """Observations ``x0 + sigma n``: where the denoiser is evaluated in practice (no far tails)."""
    rng = np.random.default_rng(seed)
    return mixture.sample(n, rng) + noise * rng.standard_normal((n, mixture.dim))


def data_scale(mixture):
    """Size of a sample: ``|mu|_inf + sqrt(max Var)``, never 0."""
    mean, cov = mixture.moments()
    return float(np.abs(mean).max() + np.sqrt(max(np.diag(cov).max(), 1e-300)) + 1e-12)


# ====================================================================== moments, projection, sampling
@given(mixture_encoders)
def test_projection_moments_are_projected_moments(pair):
    mixture, W = pair
    mean, cov = mixture.moments()
    projected_mean, projected_cov = mixture.project(W).moments()
    # einsum vs matrix products of the same numbers: float64 round-off relative to the data scale
    scale = data_scale(mixture)
    np.testing.assert_allclose(projected_mean, W.T @ mean, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(projected_cov, W.T @ cov @ W, rtol=0, atol=1e-12 * scale**2)
    identity = mixture.project(np.eye(mixture.dim))
    np.testing.assert_allclose(identity.covs, mixture.covs, rtol=0, atol=1e-14 * scale**2)


@pytest.mark.parametrize("d, seed", [(1, 0), (2, 1), (3, 2)])
def test_mixture_sample_moments_match_closed_form(d, seed):
    mixture = mixture_model(d, seed)
    x = mixture.sample(MC_SAMPLES, np.random.default_rng([seed, 101]))
    _assert_moments_match(x, *mixture.moments())


def _assert_moments_match(x, mean, cov):
    """Sample mean and covariance within MC_Z standard errors (estimated from the sample's own spread)."""
    n = len(x)
    centred = x - x.mean(axis=0)
    assert np.all(np.abs(x.mean(axis=0) - mean) <= MC_Z * x.std(axis=0) / np.sqrt(n))
    products = centred[:, :, None] * centred[:, None, :]
    error = np.abs(products.mean(axis=0) - cov)
    assert np.all(error <= MC_Z * products.std(axis=0) / np.sqrt(n) + 1e-12)


# ====================================================================== the decoder is the Bayes denoiser (W = I)
@given(mixtures, noise_levels, seeds)
def test_identity_encoder_decoder_is_the_bayes_denoiser(mixture, noise, seed):
    y = noisy_draws(mixture, 8, noise, seed)
    got = mixture.conditional_mean(np.eye(mixture.dim), y, noise)
    expected = brute_force_bayes_denoiser(mixture.weights, mixture.means, mixture.covs, y, noise)
    # slogdet/inv vs scipy's eigendecomposition: log-responsibilities agree to ~1e-13 times the quadratic
    # form (<= ~1e4 here), so posteriors to ~1e-9; times the spread of the regressions (~scale).
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-8 * data_scale(mixture))


@settings(max_examples=10)  # central differences: 2 d scipy mixture densities per point
@given(mixtures, noise_levels, seeds)
def test_identity_encoder_decoder_satisfies_tweedie(mixture, noise, seed):
    """``E[x0 | y] = y + sigma^2 grad log p_sigma(y)``, the gradient by central differences."""
    y = noisy_draws(mixture, 3, noise, seed)
    got = mixture.conditional_mean(np.eye(mixture.dim), y, noise)
    min_var = min(np.linalg.eigvalsh(C).min() for C in mixture.covs) + noise**2
    h = 1e-4 * np.sqrt(min_var)  # step well inside the smallest length scale of p_sigma
    args = (mixture.weights, mixture.means, mixture.covs)
    for row, point in enumerate(y):
        grad = np.array([(log_noisy_density(*args, point + h * e, noise)
                          - log_noisy_density(*args, point - h * e, noise)) / (2 * h) for e in np.eye(mixture.dim)])
        tweedie = point + noise**2 * grad
        # truncation O(h^2 / min_var) = 1e-8 relative, cancellation O(eps |log p| / h) ~ 1e-12 / h:
        # both scaled by sigma^2, i.e. at most ~1e-6 of the smallest length scale; allow 1e-5 of it.
        np.testing.assert_allclose(got[row], tweedie, rtol=0,
                                   atol=1e-5 * (np.sqrt(min_var) + noise**2 / np.sqrt(min_var)))


def test_zero_weight_component_never_contributes():
    mixture = GaussianMixture(np.array([1.0, 0.0]), np.array([[0.0], [10.0]]), np.array([[[1e-4]], [[1e-4]]]))
    y, noise = np.array([[10.0]]), 0.01
    expected = brute_force_bayes_denoiser(mixture.weights, mixture.means, mixture.covs, y, noise)
    assert expected[0, 0] == pytest.approx(5.0)  # only the weight-1 component: shrink halfway towards 0
    np.testing.assert_allclose(mixture.conditional_mean(np.eye(1), y, noise), expected, rtol=1e-9)


# ====================================================================== Result 7
def test_projected_bayes_identity_holds_symbolically():
    assert projected_bayes_identity() is True


@given(degenerate_mixture_encoders, noise_levels, seeds)
def test_projected_decoder_is_the_projected_mixtures_bayes_denoiser(pair, noise, seed):
    """Key identity: ``W^T E[x0 | W^T x_sigma = u] = E[W^T x0 | W^T x_sigma = u]`` for any orthonormal ``W``."""
    mixture, W = pair
    projected = mixture.project(W)
    u = noisy_draws(projected, 8, noise, seed)
    lhs = mixture.conditional_mean(W, u, noise) @ W
    rhs = projected.conditional_mean(np.eye(W.shape[1]), u, noise)
    # Same S_k and responsibilities up to the einsum's summation order: float64 round-off, amplified by
    # the quadratic forms (<= ~1e6 at sigma = 0.01) in the responsibilities.
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-8 * data_scale(mixture))
    # and both equal the brute-force Bayes denoiser of the projected mixture
    reference = brute_force_bayes_denoiser(projected.weights, projected.means, projected.covs, u, noise)
    np.testing.assert_allclose(lhs, reference, rtol=0, atol=1e-8 * data_scale(mixture))


@settings(max_examples=15)
@given(mixtures, seeds)
def test_fixed_encoder_law_with_identity_is_the_mixture_itself(mixture, seed):
    """``W = I``: ``E[x0 | x0 = u0] = u0``, so the generated draws are the mixture's own draws, bit for bit nearly."""
    W = np.eye(mixture.dim)
    generated = FixedEncoderLaw.sample(mixture, W, 50, np.random.default_rng(seed))
    direct = mixture.sample(50, np.random.default_rng(seed))  # same generator: same u0 = x0
    # m_k + C_k C_k^{-1} (u - m_k): round-off ~ cond(C_k) eps |u - m_k|, cond <= 100 here.
    np.testing.assert_allclose(generated, direct, rtol=0, atol=1e-10 * data_scale(mixture))


@pytest.mark.parametrize("d, seed", [(2, 0), (3, 1)])
def test_fixed_encoder_law_with_identity_has_the_mixtures_moments(d, seed):
    mixture = mixture_model(d, seed)
    x = FixedEncoderLaw.sample(mixture, np.eye(d), MC_SAMPLES, np.random.default_rng([seed, 202]))
    _assert_moments_match(x, *mixture.moments())


@settings(max_examples=15)
@given(mixture_encoders, seeds)
def test_fixed_encoder_law_code_is_the_projected_law(pair, seed):
    """``W^T x_gen = u0`` exactly (the regression reproduces the code) with ``u0 ~ law(W^T x0)``."""
    mixture, W = pair
    generated = FixedEncoderLaw.sample(mixture, W, 50, np.random.default_rng(seed))
    codes = mixture.project(W).sample(50, np.random.default_rng(seed))  # same generator, same u0
    # W^T C_k W S_k^{-1} = I up to cond(S_k) eps (cond <= 100): round-off only.
    np.testing.assert_allclose(generated @ W, codes, rtol=0, atol=1e-10 * data_scale(mixture))


@pytest.mark.parametrize("d, r, seed", [(2, 1, 0), (3, 2, 1)])
def test_fixed_encoder_law_keeps_the_mean(d, r, seed):
    """Tower rule: ``E[E[x0 | W^T x0]] = mu`` for the generated law of any encoder (Monte Carlo)."""
    mixture = mixture_model(d, seed)
    x = FixedEncoderLaw.sample(mixture, random_encoder(d, r, seed), MC_SAMPLES, np.random.default_rng([seed, 303]))
    mean, _ = mixture.moments()
    assert np.all(np.abs(x.mean(axis=0) - mean) <= MC_Z * x.std(axis=0) / np.sqrt(len(x)))


@given(training_sets(min_n=2, max_n=8), seeds, seeds)
def test_decoder_at_small_sigma_snaps_to_the_nearest_projected_training_point(train, encoder_seed, query_seed):
    n, d = train.shape
    r = int(np.random.default_rng(encoder_seed).integers(1, d + 1))
    W = random_encoder(d, r, encoder_seed)
    codes = train @ W
    gaps = np.linalg.norm(codes[:, None] - codes[None], axis=2)[~np.eye(n, dtype=bool)]
    spacing = gaps.min()
    assume(spacing >= 1e-3 * np.abs(codes).max())  # distinct projections (almost sure; keep them resolvable)
    rng = np.random.default_rng(query_seed)
    picks = rng.integers(n, size=10)
    directions = rng.standard_normal((10, r))
    offsets = directions / np.linalg.norm(directions, axis=1, keepdims=True) * rng.uniform(0, 0.25, (10, 1))
    u = codes[picks] + spacing * offsets  # within a quarter spacing of one projected point
    noise = 1e-3 * spacing  # responsibilities of the others ~ exp(-0.5 spacing^2 / (2 sigma^2)) = exp(-1e5) = 0
    snapped = GaussianMixture.training_set(train).conditional_mean(W, u, noise)
    np.testing.assert_allclose(snapped, train[picks], rtol=0, atol=1e-12 * (1 + np.abs(train).max()))


def test_fixed_encoder_law_of_a_training_set_is_the_training_points():
    train = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]])
    W = np.array([[1.0], [0.0]])  # projections 0, 1, 3: distinct
    x = FixedEncoderLaw.sample(GaussianMixture.training_set(train), W, 30, np.random.default_rng(0))
    assert np.all(np.min(np.linalg.norm(x[:, None] - train[None], axis=2), axis=1) <= 1e-12)


# ====================================================================== Monte Carlo: the sampler realizes Result 7
@pytest.fixture(scope="module")
def heun_run():
    """Heun, 16 VE steps, from the exact marginal, r = 1 encoder on a 2-D three-component mixture.

    1000 samples: 16 Heun steps leave a small discretization bias in law(W^T x) that the KS test starts
    to resolve from ~2000 samples on (p ~ 0.002 .. 0.1 there, ~0.1 .. 0.7 with 64 steps).
    """
    seed = 0
    mixture = mixture_model(2, seed)
    W = random_encoder(2, 1, seed)
    x = regression.run_from_marginal(EncoderDecoderDenoiser(mixture.weights, mixture.means, mixture.covs, W), "heun", VESchedule().grid(16),
                                     mixture, 1000, seed)
    return mixture, W, x, float(np.sqrt(np.trace(mixture.moments()[1])))


def test_heun_samples_pass_the_regression_checks(heun_run):
    mixture, W, x, scale = heun_run
    residual = regression.residual_check(x, W, regression.regression_map(mixture, W), scale)
    assert residual.passed, residual
    law = regression.projected_law_check(x, W, mixture, level=1e-3)  # fixed seed: deterministic verdict
    assert law.passed, law


def test_heun_samples_fail_the_projection_map_negative_control(heun_run):
    mixture, W, x, scale = heun_run
    control = regression.residual_check(x, W, regression.projection_map(mixture, W), scale)
    assert not control.passed, control
    assert control.statistic > 100 * regression.RESIDUAL_RTOL  # fails by a wide margin, not by a hair


# ====================================================================== bad input
def test_encoder_with_no_columns_or_too_many_is_refused():
    with pytest.raises(ValueError, match=r"W must be 3 x r with 1 <= r <= 3"):
        encoder(np.zeros((3, 0)), 3)
    with pytest.raises(ValueError, match=r"W must be 2 x r with 1 <= r <= 2"):
        encoder(np.eye(3)[:2], 2)  # 2 x 3: r > d
    with pytest.raises(ValueError, match=r"W must be 3 x r"):
        encoder(np.eye(2), 3)  # wrong number of rows
    with pytest.raises(ValueError, match="rank must be in"):
        random_encoder(2, 3, 0)


@given(mixture_encoders, st.floats(1e-6, 0.5))
def test_non_orthonormal_encoder_is_refused(pair, stretch):
    mixture, W = pair
    bent = W * (1.0 + stretch)  # columns no longer unit length
    with pytest.raises(ValueError, match="orthonormal columns"):
        mixture.conditional_mean(bent, np.zeros((1, W.shape[1])), 1.0)
    with pytest.raises(ValueError, match="orthonormal columns"):
        mixture.project(bent)
    with pytest.raises(ValueError, match="orthonormal columns"):
        EncoderDecoderDenoiser(mixture.weights, mixture.means, mixture.covs, bent)
    with pytest.raises(ValueError, match="orthonormal columns"):
        FixedEncoderLaw.sample(mixture, bent, 3, np.random.default_rng(0))


def test_code_with_wrong_number_of_columns_is_refused():
    mixture = mixture_model(3, 0)
    W = random_encoder(3, 2, 0)
    with pytest.raises(ValueError, match="u must have 2 columns"):
        mixture.conditional_mean(W, np.zeros((4, 3)), 1.0)
    with pytest.raises(ValueError, match="u must have 2 axes"):
        mixture.conditional_mean(W, np.zeros(2), 1.0)


@pytest.mark.parametrize("weights", [[0.5, 0.4], [0.7, 0.7], [1.5, -0.5], [1.0], [0.2, 0.3, 0.5]])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValueError, match="summing to 1, one per row of means"):
        GaussianMixture(np.array(weights), np.zeros((2, 1)), np.ones((2, 1, 1)))


@pytest.mark.parametrize("covs_shape", [(2, 2, 2), (1, 1, 1), (2, 1), (3, 1, 1)])
def test_covs_of_wrong_shape_are_refused(covs_shape):
    with pytest.raises(ValueError, match=r"covs must have shape \(2, 1, 1\)"):
        GaussianMixture(np.full(2, 0.5), np.zeros((2, 1)), np.ones(covs_shape))


def test_component_covariance_must_be_psd():
    with pytest.raises(ValueError, match=r"covs\[1\] must be positive semi-definite"):
        GaussianMixture(np.full(2, 0.5), np.zeros((2, 1)), np.array([[[1.0]], [[-1.0]]]))


@given(training_sets(min_n=2, max_n=6), seeds)
def test_conditional_mean_at_sigma_zero_with_singular_projected_covariance_is_refused(train, seed):
    d = train.shape[1]
    W = random_encoder(d, int(np.random.default_rng(seed).integers(1, d + 1)), seed)
    with pytest.raises(ValueError, match=r"W\^T C_k W \+ sigma\^2 I > 0 .*use sigma > 0"):
        GaussianMixture.training_set(train).conditional_mean(W, train[:2] @ W, 0.0)


def test_degenerate_direction_seen_by_the_encoder_is_refused_at_sigma_zero():
    """A component flat along the encoded direction: ``W^T C_k W = 0`` although ``C_k != 0``."""
    mixture = GaussianMixture(np.full(2, 0.5), np.zeros((2, 2)), np.stack([np.diag([0.0, 1.0]), np.eye(2)]))
    with pytest.raises(ValueError, match="use sigma > 0"):
        mixture.conditional_mean(np.array([[1.0], [0.0]]), np.zeros((1, 1)), 0.0)
    mixture.conditional_mean(np.array([[0.0], [1.0]]), np.zeros((1, 1)), 0.0)  # the other direction is fine


def test_mixture_built_from_lists_works_like_arrays():
    mixture = GaussianMixture([0.5, 0.5], [[0.0], [1.0]], [[[1.0]], [[1.0]]])
    assert mixture.dim == 1
    np.testing.assert_allclose(mixture.moments()[0], [0.5])

"""Properties of the rank-restricted affine denoiser (Result 5) and of the law it generates (Result 6).

The optimum is the top-r truncation of the full linear optimum; it beats every other rank-r affine
map in the closed-form loss; ties at the cut are refused; the generated law lives on the top-r
principal subspace; the exact law agrees with what the sampler code actually does (probe); rank d
is the linear case; and everything moves with a rotation of the target.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from numerics.bottleneck import RankDenoiser
from numerics.sampling import affine_probe
from numerics.schedules import VESchedule
from strategies import (
    COMPATIBLE_PAIRS,
    INCOMPATIBLE_PAIRS,
    MAX_DIM,
    SAMPLER_NAMES,
    covariance_from,
    make_grid,
    means_of,
    rotations_of,
    sampler_grids,
    seeds,
    sigmas,
    starts,
    target_moments,
)
from theory.bottleneck import (
    RankLaw,
    RankRestrictedDenoiser,
    masked_law,
    rank_continuous_law,
    rank_law,
)
from theory.finite_step import probe_law
from theory.linear_law import OPTIMAL, continuous_flow, continuous_law, marginal_start, wiener_law
from theory.symbols import lam, sigma, sigma_end, sigma_max, v0
from verify.targets import random_rotation

RANK = RankRestrictedDenoiser()
GAP = 2.0  # lambda_r >= GAP * lambda_{r+1}: a strict gap, so the rank-r optimum is unique and well conditioned
LOG10_LOW, LOG10_HIGH = -4.0, 3.0  # the shared strategies' eigenvalue range, 1e-4 .. 1e3
COLLAPSING_SAMPLERS = ("ddim", "ddpm", "euler", "heun")  # last VE step to sigma = 0 returns D(x) itself
MAX_STEPS = 16


@pytest.fixture(scope="module")
def rank_law_result():
    """``RankLaw()`` runs sympy's dsolve (seconds): build it once."""
    return RankLaw()


# ====================================================================== strategies (nouns)
@dataclass(frozen=True)
class GappedTarget:
    """``(mean, cov, rank)`` with ``cov = R diag(spectrum) R^T``, ``spectrum`` ascending, a gap at the cut."""

    mean: np.ndarray
    cov: np.ndarray
    rotation: np.ndarray
    spectrum: np.ndarray
    rank: int

    @property
    def dim(self) -> int:
        return len(self.spectrum)

    @property
    def top(self) -> np.ndarray:
        """The top-r eigenvectors (columns of the rotation)."""
        return self.rotation[:, self.dim - self.rank:]

    @property
    def bottom(self) -> np.ndarray:
        """The discarded eigenvectors."""
        return self.rotation[:, :self.dim - self.rank]


@st.composite
def gapped_targets_of(draw, min_dim: int = 1, max_dim: int = MAX_DIM, min_rank: int = 1, full_rank: bool = True):
    """A rotated anisotropic target and a rank ``r`` with ``lambda_r >= GAP lambda_{r+1}`` (1e-4 .. 1e3)."""
    d = draw(st.integers(min_dim, max_dim))
    r = draw(st.integers(min(min_rank, d), d if full_rank else max(d - 1, 1)))
    shift = np.log10(GAP)
    logs = np.sort(np.array(draw(st.lists(st.floats(LOG10_LOW, LOG10_HIGH - shift), min_size=d, max_size=d))))
    if r < d:  # lift the top r so the cut has a factor-GAP gap; stays <= 1e3
        logs[d - r:] += max(0.0, shift - (logs[d - r] - logs[d - r - 1]))
    spectrum = 10.0**logs
    rotation = draw(rotations_of(d))
    return GappedTarget(draw(means_of(d)), covariance_from(rotation, spectrum), rotation, spectrum, r)


gapped_targets = gapped_targets_of()
"""Targets with a strict gap at the cut, d = 1..6, r = 1..d."""

cut_targets = gapped_targets_of(min_dim=2, full_rank=False)
"""Gapped targets with something discarded (r < d)."""


@st.composite
def tied_spectra_of(draw, low: float = -2.0, high: float = 2.0):
    """``(ascending spectrum, r)`` with ``lambda_r == lambda_{r+1}`` exactly, in a moderate range.

    The range is kept at four decades: a tie between small eigenvalues of a matrix whose norm is
    seven decades larger is lost in ``eigh``'s round-off (see the wide-spectrum tie test below).
    """
    d = draw(st.integers(2, MAX_DIM))
    r = draw(st.integers(1, d - 1))
    spectrum = np.sort(10.0 ** np.array(draw(st.lists(st.floats(low, high), min_size=d, max_size=d))))
    spectrum[d - r - 1] = spectrum[d - r]  # the largest discarded eigenvalue ties the smallest kept one
    return spectrum, r


tied_spectra = tied_spectra_of()
sigma_levels = sigmas
"""Noise levels 1e-3 .. 1e3."""


# ====================================================================== helpers
def closed_form_loss(A, cov, noise):
    """Centred denoising MSE of ``x -> A x + (I - A) mu``: ``tr((A - I) Sigma (A - I)^T) + sigma^2 ||A||_F^2``."""
    E = A - np.eye(len(cov))
    return float(np.trace(E @ cov @ E.T) + noise**2 * np.sum(A * A))


def loss_scale(cov, noise, rank):
    """Size of every term in the loss (for round-off tolerances): ``tr Sigma + sigma^2 r``."""
    return float(np.trace(cov) + noise**2 * rank)


def masked_optimum(target: GappedTarget, keep, noise):
    """The per-direction optimum restricted to the eigen-directions ``keep`` (built from the known rotation)."""
    gain = np.where(keep, target.spectrum / (target.spectrum + noise**2), 0.0)
    return (target.rotation * gain) @ target.rotation.T


def top_mask(d, r):
    keep = np.zeros(d, dtype=bool)
    keep[d - r:] = True
    return keep


def reduction(eigenvalues, noise):
    """``RankRestrictedDenoiser.reduction_expr`` evaluated numerically."""
    return sp.lambdify((lam, sigma), RANK.reduction_expr, "numpy")(np.asarray(eigenvalues, float), noise)


def sin_angle(A, B):
    """Sine of the largest principal angle between the column spaces of orthonormal ``A`` and ``B``."""
    if A.shape[1] == 0 and B.shape[1] == 0:
        return 0.0
    P = A @ A.T - B @ B.T
    return float(np.linalg.norm(P, 2))


# ====================================================================== Result 5, symbolically
def test_reduction_expr_is_lambda_squared_over_lambda_plus_sigma_squared():
    assert sp.simplify(RANK.reduction_expr - lam**2 / (lam + sigma**2)) == 0


def test_reduction_slope_is_positive_and_is_the_derivative():
    assert RANK.slope_expr.is_positive  # sympy proves it from lambda, sigma > 0
    assert sp.simplify(RANK.slope_expr - sp.diff(lam**2 / (lam + sigma**2), lam)) == 0


def test_discarded_ode_gain_is_sigma_end_over_sigma_max(rank_law_result):
    assert sp.simplify(rank_law_result.discarded_ode_gain - sigma_end / sigma_max) == 0
    # It is the lambda -> 0 limit of the linear ODE gain (a discarded direction sees lambda = 0 in D).
    assert sp.simplify(sp.limit(continuous_flow().ode_gain_expr, lam, 0) - sigma_end / sigma_max) == 0


def test_discarded_sde_variance_formula(rank_law_result):
    """lambda -> 0 in Result 2's SDE variance: ``sigma_end^2 + (v0 - sigma_max^2) sigma_end^4 / sigma_max^4``."""
    v = rank_law_result.formulas["discarded SDE variance"].rhs
    assert sp.simplify(v - (sigma_end**2 + (v0 - sigma_max**2) * sigma_end**4 / sigma_max**4)) == 0
    assert v.subs(sigma_end, 0) == 0  # at sigma_end = 0 a discarded direction collapses onto the mean


# ====================================================================== Result 5: the optimum is the truncation
@given(gapped_targets, sigma_levels)
def test_rank_optimum_is_top_r_truncation_of_linear_optimum(target, noise):
    G, b, cut = RANK.affine(target.mean, target.cov, noise, target.rank)
    G_full, _ = OPTIMAL.affine(target.mean, target.cov, noise)
    assert cut.unique and cut.tied == ()
    assert np.array_equal(cut.keep, top_mask(target.dim, target.rank))
    R = target.rotation
    in_basis, full_in_basis = R.T @ G @ R, R.T @ G_full @ R
    kept = np.arange(target.dim) >= target.dim - target.rank
    # eigh's eigenvectors are off by ~eps * lambda_max / gap (Davis-Kahan); gains lie in [0, 1], and
    # with lambda_max / (lambda_r - lambda_{r+1}) <= 1e3 / 5e-5 this is <= ~1e-8: allow 1e-7 absolute.
    atol = 1e-7
    np.testing.assert_allclose(np.diag(in_basis)[kept], np.diag(full_in_basis)[kept], rtol=0, atol=atol)
    np.testing.assert_allclose(np.diag(in_basis)[kept], target.spectrum[kept] / (target.spectrum[kept] + noise**2),
                               rtol=0, atol=atol)
    np.testing.assert_allclose(in_basis[:, ~kept], 0.0, atol=atol)   # discarded columns are zero
    np.testing.assert_allclose(in_basis - np.diag(np.diag(in_basis)), 0.0, atol=atol)  # diagonal in the eigenbasis
    # b makes the map fix the mean: D(mu) = mu (round-off relative to |mu|)
    np.testing.assert_allclose(G @ target.mean + b, target.mean, rtol=0, atol=1e-12 * (1 + np.abs(target.mean).max()))
    # The numerics' RankDenoiser (reduced-rank regression: a solve, then eigh of the fitted values'
    # covariance) is the same map to the conditioning of both computations.
    G_num, b_num = RankDenoiser(target.mean, target.cov, target.rank).affine(noise)
    np.testing.assert_allclose(G_num, G, rtol=0, atol=1e-8)
    np.testing.assert_allclose(b_num, b, rtol=0, atol=1e-8 * (1 + np.abs(target.mean).max()))


@given(gapped_targets, sigma_levels, seeds)
def test_rank_optimum_beats_other_rank_r_maps_and_bottom_truncation(target, noise, seed):
    d, r = target.dim, target.rank
    G, _, _ = RANK.affine(target.mean, target.cov, noise, r)
    best = closed_form_loss(G, target.cov, noise)
    # The closed-form loss sums O(tr Sigma + sigma^2 r) terms in float64: 1e-12 of that covers round-off.
    tol = 1e-12 * loss_scale(target.cov, noise, d)
    # Loss reduction of the optimum is the sympy per-direction reduction summed over the kept directions.
    kept = top_mask(d, r)
    expected_reduction = float(np.sum(reduction(target.spectrum[kept], noise)))
    assert abs((closed_form_loss(np.zeros((d, d)), target.cov, noise) - best) - expected_reduction) <= 1e3 * tol
    assert np.linalg.matrix_rank(G, tol=1e-12) <= r
    rng = np.random.default_rng(seed)
    for _ in range(5):  # random rank-r factorized maps P Q^T at the target's scale
        scale = np.sqrt(np.max(target.spectrum)) / np.sqrt(np.max(target.spectrum) + noise**2)
        A = rng.standard_normal((d, r)) @ rng.standard_normal((r, d)) * scale / np.sqrt(d)
        assert best <= closed_form_loss(A, target.cov, noise) + tol
    for epsilon in (1e-1, 1e-3):  # rank-r maps near the optimum: rotate its subspace a little
        U_r = target.top + epsilon * rng.standard_normal((d, r))
        gains = target.spectrum[kept] / (target.spectrum[kept] + noise**2)
        A = (U_r * gains) @ (target.top + epsilon * rng.standard_normal((d, r))).T
        assert best <= closed_form_loss(A, target.cov, noise) + tol
    bottom = np.zeros(d, dtype=bool)
    bottom[:r] = True
    worse = closed_form_loss(masked_optimum(target, bottom, noise), target.cov, noise)
    assert best <= worse + tol
    if r < d:  # strictly: the reduction increases with lambda and the kept sets differ
        assert np.sum(reduction(target.spectrum[kept], noise)) > np.sum(reduction(target.spectrum[bottom], noise))


def _factorized_loss_and_grad(theta, cov, noise, d, r):
    """Loss of ``A = P Q^T`` and its gradient: ``dL/dA = 2 A S - 2 Sigma`` with ``S = Sigma + sigma^2 I``."""
    P, Q = theta[:d * r].reshape(d, r), theta[d * r:].reshape(d, r)
    A = P @ Q.T
    dA = 2 * A @ (cov + noise**2 * np.eye(d)) - 2 * cov
    return closed_form_loss(A, cov, noise), np.concatenate([(dA @ Q).ravel(), (dA.T @ P).ravel()])


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("noise", [0.3, 2.0])
def test_brute_force_minimum_over_factorized_maps_is_the_truncation(rank, noise):
    d = 3
    rotation = random_rotation(d, np.random.default_rng(17))
    spectrum = np.array([0.2, 1.0, 3.5])
    cov = covariance_from(rotation, spectrum)
    G, _, _ = RANK.affine(np.zeros(d), cov, noise, rank)
    target_loss = closed_form_loss(G, cov, noise)
    results = []
    for seed in range(4):  # several random starts; the landscape has saddles but no spurious minima
        theta0 = np.random.default_rng([seed, rank]).standard_normal(2 * d * rank)
        res = optimize.minimize(_factorized_loss_and_grad, theta0, args=(cov, noise, d, rank), jac=True,
                                method="BFGS", options={"gtol": 1e-10, "maxiter": 2000})
        results.append(res)
        assert res.fun >= target_loss - 1e-12  # nothing beats the closed form (round-off of O(1) sums)
    best = min(results, key=lambda res: res.fun)
    # BFGS with gtol 1e-10 on an O(1) problem: the loss converges quadratically, to ~1e-12 of the optimum.
    assert best.fun <= target_loss + 1e-9
    A = best.x[:d * rank].reshape(d, rank) @ best.x[d * rank:].reshape(d, rank).T
    # The minimizer is unique (strict gap) and the loss is quadratic in A around it, so the map error is
    # ~ sqrt(loss error / smallest curvature) ~ sqrt(1e-12): 1e-5 absolute on O(1) entries.
    np.testing.assert_allclose(A, G, rtol=0, atol=1e-5)


# ====================================================================== ties at the cut
@given(tied_spectra)
def test_cut_reports_a_tie(tied):
    spectrum, r = tied
    cut = RANK.cut(spectrum, r)
    assert not cut.unique
    assert cut.tied == (spectrum[len(spectrum) - r - 1], spectrum[len(spectrum) - r])
    assert cut.tied[0] == cut.tied[1]
    assert cut.keep.sum() == r  # it still says which r directions it would keep


@settings(max_examples=12)  # each example builds two RankDenoisers (a sympy solve each, ~0.1 s)
@given(tied_spectra, seeds, sigma_levels)
def test_tie_refused_unless_allowed(tied, seed, noise):
    spectrum, r = tied
    d = len(spectrum)
    rotation = random_rotation(d, np.random.default_rng(seed))
    cov, mean = covariance_from(rotation, spectrum), np.ones(d)
    grid = VESchedule().grid(4)
    with pytest.raises(ValueError, match="not unique"):
        RANK.affine(mean, cov, noise, r)
    with pytest.raises(ValueError, match="not unique"):
        RankDenoiser(mean, cov, r, sigmas=[noise])  # numerics' own tie test on the fitted-value spectrum
    with pytest.raises(ValueError, match="not unique"):
        rank_law("euler", grid, mean, cov, r)
    G, _, cut = RANK.affine(mean, cov, noise, r, allow_tie=True)  # one of the optima
    assert not cut.unique and np.linalg.matrix_rank(G, tol=1e-10) == r
    G_num, _ = RankDenoiser(mean, cov, r, allow_tie=True).affine(noise)  # one of the optima, rank r
    assert np.linalg.matrix_rank(G_num, tol=1e-10) == r
    law = rank_law("euler", grid, mean, cov, r, allow_tie=True)
    assert np.all(np.isfinite(law.covariance()))


def test_equal_spectrum_is_tied_for_every_rank_below_d():
    for r in range(1, 4):
        assert not RANK.cut(np.full(4, 2.5), r).unique
    assert RANK.cut(np.full(4, 2.5), 4).unique  # rank d keeps everything: nothing to choose


def test_tie_between_small_eigenvalues_of_a_wide_spectrum_is_refused():
    spectrum = np.array([1e-4, 1e-4, 1.0, 1e3])  # exact tie at the cut for r = 3
    grid = VESchedule().grid(2)
    missed = []
    for seed in range(40):  # the tie is lost for about a quarter of the rotations
        cov = covariance_from(random_rotation(4, np.random.default_rng(seed)), spectrum)
        try:
            rank_law("euler", grid, np.zeros(4), cov, 3)  # RankDenoiser uses the same cut
            missed.append(seed)
        except ValueError:
            pass
    assert missed == []


# ====================================================================== Result 6: the generated law
@given(gapped_targets, st.sampled_from(COLLAPSING_SAMPLERS), st.integers(1, MAX_STEPS), starts)
def test_rank_law_covariance_has_rank_r_on_the_top_subspace(target, sampler, steps, start):
    grid = VESchedule().grid(steps)  # final step to sigma = 0
    law = rank_law(sampler, grid, target.mean, target.cov, target.rank, start)
    keep = RANK.cut(np.linalg.eigvalsh(target.cov).clip(0), target.rank).keep
    # The last step returns D(x) exactly, whose discarded gain is exactly 0: the variance is exactly 0.
    assert np.all(law.cov[~keep] == 0)
    assert np.all(law.cov[keep] > 0)
    assert np.count_nonzero(law.cov) == target.rank
    # Its range is the top-r eigen-subspace; eigh's subspace is off by ~eps lambda_max / gap <= ~1e-8.
    kept_vectors = law.basis[:, keep]
    assert sin_angle(kept_vectors, target.top) <= 1e-6
    C = law.covariance()
    scale = max(np.abs(C).max(), 1e-300)
    # Discarded directions of the true eigenbasis see only the (<= 1e-8) subspace error of eigh.
    assert np.max(np.abs(target.bottom.T @ C @ target.bottom), initial=0.0) <= 1e-6 * scale
    # Means: the discarded components of the output are those of mu (collapsed onto the mean).
    mean_scale = 1 + np.abs(target.mean).max() + np.sqrt(np.abs(C).max())
    np.testing.assert_allclose(target.bottom.T @ law.mean, target.bottom.T @ target.mean, rtol=0,
                               atol=1e-6 * mean_scale)


@given(gapped_targets, st.sampled_from(SAMPLER_NAMES), st.sampled_from(("ve", "ddpm")))
def test_continuous_law_from_marginal_at_sigma_zero_is_the_truncated_gaussian(target, sampler, schedule):
    grid = make_grid(schedule, 8)
    assert grid.sigma[-1] == 0 and grid.s[-1] == 1  # both grids end at the clean data
    law = rank_continuous_law(sampler, grid, target.mean, target.cov, target.rank, marginal_start)
    expected = covariance_from(target.rotation, np.where(top_mask(target.dim, target.rank), target.spectrum, 0.0))
    lam_max = target.spectrum.max()
    # U Lambda_r U^T vs R Lambda_r R^T: eigh's subspace error (~eps lambda_max / gap <= 1e-8) times lambda_max.
    np.testing.assert_allclose(law.covariance(), expected, rtol=0, atol=1e-7 * lam_max)
    np.testing.assert_allclose(law.mean, target.mean, rtol=0, atol=1e-10 * (1 + np.abs(target.mean).max()))


@given(cut_targets, starts, st.sampled_from(("euler", "heun", "ddim")))
def test_discarded_directions_shrink_by_sigma_end_over_sigma_max(rank_law_result, target, start, sampler):
    """ODE, sigma_end > 0: a discarded direction's deviation from mu is multiplied by sigma_end / sigma_max."""
    grid = VESchedule().grid(8, final_zero=False)
    s_max, s_end = grid.sigma[0], grid.sigma[-1]
    law = rank_continuous_law(sampler, grid, target.mean, target.cov, target.rank, start)
    eigenvalues, U = np.linalg.eigh(target.cov)
    keep = RANK.cut(eigenvalues.clip(0), target.rank).keep
    ratio = float(rank_law_result.discarded_ode_gain.subs({sigma_end: s_end, sigma_max: s_max}))
    start_law = start(grid, U.T @ target.mean, eigenvalues.clip(0))
    centred_start = start_law.mean - U.T @ target.mean
    expected_mean = U.T @ target.mean + centred_start * ratio
    expected_var = start_law.cov * ratio**2
    # Per-direction closed forms evaluated in float64: 1e-12 relative round-off.
    np.testing.assert_allclose(law.cov[~keep], expected_var[~keep], rtol=1e-12)
    mean_scale = 1 + np.abs(target.mean).max() + np.sqrt(start_law.cov.max())
    np.testing.assert_allclose((U.T @ law.mean)[~keep], expected_mean[~keep], rtol=0, atol=1e-12 * mean_scale)
    # Kept directions follow the linear ODE gain sqrt((lambda + s_end^2) / (lambda + s_max^2)).
    kept_gain = np.sqrt((eigenvalues[keep] + s_end**2) / (eigenvalues[keep] + s_max**2))
    np.testing.assert_allclose(law.cov[keep], start_law.cov[keep] * kept_gain**2, rtol=1e-10)


@given(target_moments(), sampler_grids(MAX_STEPS), starts)
def test_rank_d_is_exactly_the_linear_case(moments, sampler_grid, start):
    mean, cov = moments
    sampler, grid = sampler_grid
    d = len(mean)
    law, linear = rank_law(sampler, grid, mean, cov, d, start), wiener_law(sampler, grid, mean, cov, start)
    # Same eigh, same spectrum, same recursion: identical floats.
    np.testing.assert_array_equal(law.mean, linear.mean)
    np.testing.assert_array_equal(law.covariance(), linear.covariance())
    flow, linear_flow = (rank_continuous_law(sampler, grid, mean, cov, d, start),
                         continuous_law(sampler, grid, mean, cov, start))
    np.testing.assert_array_equal(flow.mean, linear_flow.mean)
    np.testing.assert_array_equal(flow.covariance(), linear_flow.covariance())


@given(gapped_targets, sampler_grids(MAX_STEPS), starts)
def test_rank_law_is_masked_law_with_the_top_mask(target, sampler_grid, start):
    sampler, grid = sampler_grid
    law = rank_law(sampler, grid, target.mean, target.cov, target.rank, start)
    masked = masked_law(sampler, grid, target.mean, target.cov, top_mask(target.dim, target.rank), start)
    np.testing.assert_array_equal(law.covariance(), masked.covariance())
    np.testing.assert_array_equal(law.mean, masked.mean)


@pytest.mark.parametrize("sampler, schedule", INCOMPATIBLE_PAIRS)
def test_rank_law_refuses_incompatible_sampler_and_schedule(sampler, schedule):
    with pytest.raises(ValueError, match="needs"):
        rank_law(sampler, make_grid(schedule, 4), np.zeros(2), np.diag([1.0, 2.0]), 1)


# ====================================================================== the exact probe equals rank_law
@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
@settings(max_examples=6)  # 6 samplers x 6: each example runs the sampler steps + 2 times
@given(data=st.data())
def test_probe_of_rank_denoiser_equals_rank_law(sampler, data):
    schedule = data.draw(st.sampled_from([b for a, b in COMPATIBLE_PAIRS if a == sampler]))
    grid = make_grid(schedule, data.draw(st.integers(1, MAX_STEPS)))
    target = data.draw(gapped_targets_of(max_dim=4))
    start = data.draw(starts)
    denoiser = RankDenoiser(target.mean, target.cov, target.rank)
    A, c, N = affine_probe(denoiser, sampler, grid, target.dim)
    probed = probe_law(A, c, N, start(grid, target.mean, target.cov))
    law = rank_law(sampler, grid, target.mean, target.cov, target.rank, start)
    C_law, C_probe = law.covariance(), probed.covariance()
    # Two float64 evaluations of the same affine recursion (dense torch vs per-direction numpy):
    # round-off only, 1e-9 relative to the law's scale as the issue asks.
    scale = np.abs(C_law).max()
    assert np.abs(C_probe - C_law).max() <= 1e-9 * scale
    mean_scale = np.abs(law.mean).max() + np.sqrt(scale)
    assert np.abs(probed.mean - law.mean).max() <= 1e-9 * mean_scale


# ====================================================================== rotation invariance
@given(gapped_targets, sampler_grids(MAX_STEPS), starts, seeds)
def test_rank_law_rotates_with_the_target(target, sampler_grid, start, seed):
    sampler, grid = sampler_grid
    R = random_rotation(target.dim, np.random.default_rng(seed))
    law = rank_law(sampler, grid, target.mean, target.cov, target.rank, start)
    moved = rank_law(sampler, grid, R @ target.mean, covariance_from(R @ target.rotation, target.spectrum),
                     target.rank, start)
    C = law.covariance()
    scale = max(np.abs(C).max(), target.spectrum.max())
    # Both laws are smooth functions of Sigma (strict gap at the cut); each carries eigh's round-off,
    # ~eps * lambda_max / relative gap (<= ~1e-13 relative): 1e-9 leaves a wide margin.
    np.testing.assert_allclose(moved.covariance(), R @ C @ R.T, rtol=0, atol=1e-9 * scale)
    mean_scale = 1 + np.abs(law.mean).max() + np.sqrt(scale)
    np.testing.assert_allclose(moved.mean, R @ law.mean, rtol=0, atol=1e-9 * mean_scale)


# ====================================================================== bad input
@pytest.mark.parametrize("rank", [0, -1, 1.5])
def test_rank_below_one_is_refused(rank):
    mean, cov = np.zeros(3), np.diag([1.0, 2.0, 3.0])
    grid = VESchedule().grid(2)
    with pytest.raises(ValueError, match="rank must be an integer >= 1"):
        RANK.cut(np.array([1.0, 2.0, 3.0]), rank)
    with pytest.raises(ValueError, match="rank must be an integer >= 1"):
        RANK.affine(mean, cov, 1.0, rank)
    with pytest.raises(ValueError, match="rank must be an integer >= 1"):
        RankDenoiser(mean, cov, rank)
    with pytest.raises(ValueError, match="rank must be an integer >= 1"):
        rank_law("euler", grid, mean, cov, rank)
    with pytest.raises(ValueError, match="rank must be an integer >= 1"):
        rank_continuous_law("euler", grid, mean, cov, rank)


@pytest.mark.parametrize("rank", [4, 7])
def test_rank_above_dim_is_refused(rank):
    mean, cov = np.zeros(3), np.diag([1.0, 2.0, 3.0])
    grid = VESchedule().grid(2)
    with pytest.raises(ValueError, match="rank must be <= dim = 3"):
        RANK.cut(np.array([1.0, 2.0, 3.0]), rank)
    with pytest.raises(ValueError, match="rank must be <= dim = 3"):
        RANK.affine(mean, cov, 1.0, rank)
    with pytest.raises(ValueError, match="rank must be <= dim = 3"):
        RankDenoiser(mean, cov, rank)
    with pytest.raises(ValueError, match="rank must be <= dim = 3"):
        rank_law("heun", grid, mean, cov, rank)
    with pytest.raises(ValueError, match="rank must be <= dim = 3"):
        rank_continuous_law("heun", grid, mean, cov, rank)


def test_mismatched_or_invalid_target_is_refused():
    with pytest.raises(ValueError, match="must be 2 x 2 to match the mean"):
        RANK.affine(np.zeros(2), np.eye(3), 1.0, 1)
    with pytest.raises(ValueError, match="positive semi-definite"):
        rank_law("euler", VESchedule().grid(2), np.zeros(2), np.diag([1.0, -1.0]), 1)
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        RANK.affine(np.zeros(2), np.eye(2) * [1.0, 2.0], 0.0, 1)
    with pytest.raises(ValueError, match="eigenvalues must have 1 axes"):
        RANK.cut(np.eye(2), 1)

"""Checks of Result 7 (fixed encoder, optimal decoder): samples are ``m(u)`` with ``u ~ law(W^T x0)``.

Two facts characterize the predicted law, and each gets a check that can fail:
the residual ``x - m(W^T x)`` vanishes (deterministic up to the smoothing of the last denoiser
call at ``sigma_min``), and each code coordinate of ``W^T x`` follows the projected mixture's exact
marginal CDF (one-sample Kolmogorov–Smirnov, Bonferroni over coordinates).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats as scipy_stats

from numerics.samplers import SAMPLERS
from theory.mixture import GaussianMixture
from verify.check import Check

RESIDUAL_RTOL = 1e-3  # last denoiser call at sigma_min = 0.002 smooths m(u) by O(sigma_min^2 / var): ~1e-5 seen


def run_from_marginal(denoiser, sampler, grid, mixture: GaussianMixture, n: int, seed: int,
                      prior: bool = False) -> np.ndarray:
    """Sampler outputs started from the true marginal ``s_0 (x0 + sigma_0 n)``, ``x0 ~ mixture``.

    ``prior``: start from the standard prior ``N(0, prior_std^2 I)`` instead (Result 7 then holds approximately).
    """
    rng = np.random.default_rng([seed, 3])
    x0 = mixture.sample(n, rng)
    noise = rng.standard_normal(x0.shape)
    x = grid.prior_std * noise if prior else grid.s[0] * (x0 + grid.sigma[0] * noise)
    generator = torch.Generator().manual_seed(seed)
    return SAMPLERS[sampler](denoiser, torch.as_tensor(x), grid, generator=generator).numpy()


def regression_map(mixture: GaussianMixture, W):
    """The predicted map ``u -> E[x0 | W^T x0 = u]``."""
    return lambda u: mixture.conditional_mean(W, u, 0.0)


def projection_map(mixture: GaussianMixture, W):
    """Negative control: ``u -> W u + (I - W W^T) mu``, the projected law without the regression."""
    mean = mixture.moments()[0]
    return lambda u: u @ W.T + mean - W @ (W.T @ mean)


def residual_check(x, W, predicted_map, scale: float) -> Check:
    """``max |x - map(W^T x)|`` relative to the data scale must be <= RESIDUAL_RTOL."""
    worst = float(np.max(np.linalg.norm(x - predicted_map(x @ W), axis=1)) / scale)
    return Check("regression residual", worst, None, worst <= RESIDUAL_RTOL, "0", f"{worst:.2e}",
                 f"<= {RESIDUAL_RTOL:g} x scale")


def projected_law_check(x, W, mixture: GaussianMixture, level: float) -> Check:
    """KS of each code coordinate of ``W^T x`` against the projected mixture's marginal CDF."""
    projected = mixture.project(W)
    p_values, statistics = [], []
    for j in range(W.shape[1]):
        loc, scale = projected.means[:, j], np.sqrt(projected.covs[:, j, j])
        cdf = lambda t: np.sum(projected.weights * scipy_stats.norm.cdf((np.asarray(t)[:, None] - loc) / scale), axis=1)  # noqa: E731
        result = scipy_stats.kstest((x @ W)[:, j], cdf)
        p_values.append(result.pvalue)
        statistics.append(result.statistic)
    p = min(1.0, len(p_values) * min(p_values))
    return Check("projected law (KS per code coordinate)", max(statistics), p, p >= level,
                 "law(W^T x0)", f"max KS D = {max(statistics):.4f}", f"p >= {level:.3g} (Bonferroni)")


def memorization_checks(x, train, level: float) -> list[Check]:
    """Every sample is a training point, and each point is drawn 1/n of the time (chi-square)."""
    distances = np.linalg.norm(x[:, None, :] - train[None], axis=2)
    nearest, worst = distances.argmin(axis=1), distances.min(axis=1).max()
    spacing = np.median(np.sort(np.linalg.norm(train[:, None] - train[None], axis=2), axis=1)[:, 1])
    copies = Check("copies of training points", float(worst / spacing), None, bool(worst <= 1e-3 * spacing),
                   "every sample a training point", f"max distance {worst / spacing:.2e} x spacing",
                   "<= 1e-3 x median nearest-neighbour spacing")
    counts = np.bincount(nearest, minlength=len(train))
    chi2 = scipy_stats.chisquare(counts)
    uniform = Check("training points equally likely", float(chi2.statistic), float(chi2.pvalue),
                    bool(chi2.pvalue >= level), f"1/{len(train)} each", f"counts {counts.min()}..{counts.max()}",
                    f"p >= {level:.3g}")
    return [copies, uniform]

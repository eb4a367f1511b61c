"""Checks of a denoiser *formula* (theory) against the denoiser computed from its definition (numerics).

Two kinds, both able to fail on a wrong formula:

- ``formula_check``: the theory's ``(G, b)`` against the numerics' at every noise level of the grid,
  deterministic (float64 linear algebra on both sides, different algorithms).
- ``fit_check``: the theory's map against a brute-force least-squares fit on fresh noisy samples of
  the target, by the held-out loss. The theory's map is the population optimum, so on held-out data
  it can only lose to the fit by chance: a one-sided paired z-test of the per-sample loss difference
  (false-alarm rate <= its level; the fit's own excess risk makes the test conservative).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats as scipy_stats

from numerics.bottleneck import reduced_rank
from verify.check import Check

FORMULA_RTOL = 1e-9  # two float64 solves of a system with condition number <= max(lambda) / sigma_min^2 ~ 1e6
FIT_SAMPLES = 20000  # noisy pairs for the fit, and as many held out for the loss comparison
FIT_LEVELS = 3       # noise levels of the grid tested by the fit check (largest, middle, smallest)


def formula_check(name: str, theory_affine, numeric_affine, sigmas) -> Check:
    """``max_sigma |(G, b)_theory - (G, b)_numerics| / max(1, |G|, |b|)`` over ``sigmas`` must be round-off."""
    worst, where = 0.0, None
    for sigma in sigmas:
        G_t, b_t = theory_affine(sigma)[:2]
        G_n, b_n = numeric_affine(sigma)
        scale = max(1.0, np.max(np.abs(G_n)), np.max(np.abs(b_n)))
        error = max(np.max(np.abs(G_t - G_n)), np.max(np.abs(b_t - b_n))) / scale
        if error >= worst:
            worst, where = float(error), float(sigma)
    return Check(name, worst, None, bool(worst <= FORMULA_RTOL), "0", f"{worst:.2e} (worst at sigma = {where:.3g})",
                 f"<= {FORMULA_RTOL:g} x scale")


def fit_levels(sigmas) -> list[float]:
    """The largest, middle and smallest positive noise levels of a grid."""
    levels = np.sort(np.unique(np.asarray(sigmas, dtype=np.float64)[np.asarray(sigmas) > 0]))[::-1]
    picks = np.unique(np.linspace(0, len(levels) - 1, min(FIT_LEVELS, len(levels))).round().astype(int))
    return [float(levels[k]) for k in picks]


def least_squares(y, x0, rank: int | None = None):
    """Brute-force ``argmin sum_i |G y_i + b - x0_i|^2`` (rank <= ``rank`` by reduced-rank regression)."""
    y_mean, x_mean = y.mean(axis=0), x0.mean(axis=0)
    G = np.linalg.lstsq(y - y_mean, x0 - x_mean, rcond=None)[0].T
    if rank is not None:
        G = reduced_rank(G, np.cov(y.T, bias=True), rank, allow_tie=True)
    return G, x_mean - G @ y_mean


def fit_check(name: str, theory_affine, draw, sigmas, *, alpha: float, seed: int, rank: int | None = None) -> Check:
    """Held-out loss of the theory's map vs a least-squares fit, at ``fit_levels(sigmas)`` (Bonferroni)."""
    rng = np.random.default_rng([seed, 21])
    levels = fit_levels(sigmas)
    worst_z, worst_gap = -np.inf, 0.0
    for sigma in levels:
        x_fit, x_test = draw(FIT_SAMPLES, rng), draw(FIT_SAMPLES, rng)
        y_fit = x_fit + sigma * rng.standard_normal(x_fit.shape)
        y_test = x_test + sigma * rng.standard_normal(x_test.shape)
        G_f, b_f = least_squares(y_fit, x_fit, rank)
        G_t, b_t = theory_affine(sigma)[:2]
        loss_theory = np.sum((y_test @ G_t.T + b_t - x_test) ** 2, axis=1)
        loss_fit = np.sum((y_test @ G_f.T + b_f - x_test) ** 2, axis=1)
        difference = loss_theory - loss_fit
        z = difference.mean() / (difference.std(ddof=1) / np.sqrt(len(difference)) + 1e-300)
        if z > worst_z:
            worst_z, worst_gap = float(z), float(difference.mean() / loss_fit.mean())
    p = min(1.0, len(levels) * float(scipy_stats.norm.sf(worst_z)))
    return Check(name, worst_z, p, bool(p >= alpha), "formula's held-out loss <= the fit's",
                 f"relative loss excess {worst_gap:+.2e} (z = {worst_z:.2f})",
                 f"p >= {alpha:.3g} (one-sided, {len(levels)} levels, Bonferroni)")


class TheoryDenoiser:
    """A theory formula ``f(y, sigma) -> x0_hat`` (numpy, float64) run as a torch denoiser ``D(x, sigma)``.

    Used only where a check deliberately runs the formula through the sampler, and says so in its name.
    """

    def __init__(self, formula):
        self.formula = formula

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        out = self.formula(x.detach().to("cpu", torch.float64).numpy(), float(sigma))
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)

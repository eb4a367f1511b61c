"""Independent 1-D checks of Results 9, 11, 12, 13: the numerics side fits, the theory side derives.

Every check compares a theory object with something computed without it: the denoiser fitted by least
squares on an exact discretization of the target (numerics.polynomial), and the samplers run with that
fitted denoiser (numerics.samplers). The only place a theory formula runs as a denoiser is
:class:`TheoryPolynomialDenoiser`, an adapter for tests that probe sampler algebra; no check uses it.
"""
from __future__ import annotations

import numpy as np
import torch

from numerics.denoisers import check_width
from numerics.polynomial import fit_polynomial
from numerics.samplers import SAMPLERS
from numerics.schedules import VESchedule
from theory import polynomial as result9, polynomial_law as result12, polynomial_steps as result13
from verify.check import Check

COEFFICIENT_RTOL = 1e-8   # two float64 solves of a conditioned (standardized) system: ~1e-12 measured
PROBE_FACTOR = 2.0        # |x_2N - T| ~ e / (2^p - 1) <= e for a sampler of order p >= 1: factor 2 margin
FLOW_ATOL = 1e-9          # DOP853 at rtol 1e-11 on |T| <= ~100: the flow map's own error floor
PROBE_STARTS = np.linspace(-3.0, 3.0, 13)  # prior sds: inside the region where every degree <= 5 stays finite
SMALL_SIGMA = 0.02        # (D - y) / sigma^2 at sigma and sigma / 2, Richardson-extrapolated to sigma -> 0
FINITE_STEPS = 3          # Euler steps of the finite-step check: output degree k^3 <= 125 for k <= 5
FINITE_RTOL = 1e-9        # composed polynomial vs sampler, both float64: <= 2e-14 measured (tests)
SYMBOLIC_MAX_DEGREE = 3   # Result 9's symbolic coefficients exist for k <= 3


class TheoryPolynomialDenoiser:
    """Adapter: runs Result 9's closed-form coefficients as a denoiser (for sampler-algebra tests only)."""

    def __init__(self, moments, degree: int):
        self.moments, self.degree = np.asarray(moments, dtype=np.float64), degree
        result9.coefficients(self.moments, 1.0, degree)  # refuse bad moments now

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        check_width(x, 1)
        c = result9.coefficients(self.moments, float(sigma), self.degree)
        return torch.as_tensor(result9.denoise(c, x.to(torch.float64).numpy()), dtype=x.dtype)


def _probe_y(moments, sigma: float) -> np.ndarray:
    """Inputs spanning the noisy law at ``sigma``: mean +- 3 sds of ``y = x0 + sigma n``."""
    std = float(np.sqrt(moments[2] - moments[1] ** 2 + sigma**2))
    return moments[1] + std * np.linspace(-3.0, 3.0, 61)


def _fitted(fit, y: np.ndarray, sigma: float) -> np.ndarray:
    return fit(torch.as_tensor(y[:, None]), sigma)[:, 0].numpy()


def coefficient_check(fit, moments, degree: int, levels) -> Check:
    """Result 9: the least-squares fit against ``coefficients`` (and the symbolic formula, k <= 3) per level."""
    gap, symbolic = 0.0, result9.OptimalPolynomialDenoiser(degree) if degree <= SYMBOLIC_MAX_DEGREE else None
    for sigma in levels:
        y = _probe_y(moments, sigma)
        scale = float(np.sqrt(moments[2] - moments[1] ** 2 + sigma**2))
        numeric = _fitted(fit, y, sigma)
        claimed = [result9.coefficients(moments, sigma, degree)]
        if symbolic is not None:
            claimed.append(symbolic.evaluate(moments[: max(2 * degree, 1) + 1], sigma))
        gap = max([gap] + [float(np.max(np.abs(result9.denoise(c, y) - numeric))) / scale for c in claimed])
    return Check("Result 9: coefficients vs least-squares fit", gap, None, gap <= COEFFICIENT_RTOL,
                 "same denoiser", f"max gap {gap:.2e} x std(y)", f"<= {COEFFICIENT_RTOL:g} x std(y)")


def small_noise_check(atoms, weights, moments, degree: int) -> Check:
    """Result 11: ``(D - y)/sigma^2`` of the fit, extrapolated to ``sigma -> 0``, against ``s_k``.

    ``g(s) = s_k + s^2 r + O(s^4)``; ``(4 g(s/2) - g(s))/3`` removes ``r``. The tolerance is the measured
    size of the removed term, ``|g(s/2) - g(s)|``, which the remainder is ``O(s^2)`` times smaller than.
    """
    sigmas = (SMALL_SIGMA, SMALL_SIGMA / 2)
    fit = fit_polynomial(atoms, weights, sigmas, degree)
    y = _probe_y(moments, 0.0)
    g = [(_fitted(fit, y, s) - y) / s**2 for s in sigmas]
    limit = (4 * g[1] - g[0]) / 3
    claimed = result9.denoise(result9.score_projection(moments, degree), y)
    gap, tol = float(np.max(np.abs(limit - claimed))), float(np.max(np.abs(g[1] - g[0])))
    return Check("Result 11: projected score vs small-noise fit", gap, None, gap <= tol,
                 "s_k(y)", f"max gap {gap:.2e}", f"<= {tol:.2e} (measured O(sigma^2) term)")


def probe_check(fitter, moments, degree: int, sampler: str, steps: int) -> Check:
    """Result 12: sampler (fitted denoiser) from fixed starts vs the flow map ``T(z)``, deterministic.

    The sampler runs at ``N`` and ``2N`` steps; ``e = max|x_N - x_2N|`` measures its discretization error
    and ``x_2N`` must lie within ``PROBE_FACTOR * e`` of ``T`` (float64 throughout).
    """
    grids = [VESchedule().grid(n, final_zero=False) for n in (steps, 2 * steps)]
    fit = fitter(np.concatenate([g.sigma for g in grids]))
    z = PROBE_STARTS * grids[0].prior_std
    x = [SAMPLERS[sampler](fit, torch.as_tensor(z[:, None]), g)[:, 0].numpy() for g in grids]
    T, _ = result12.flow_map(moments, degree, z, grids[0].sigma[0], grids[0].sigma[-1])
    e = float(np.max(np.abs(x[0] - x[1])))
    gap = float(np.max(np.abs(x[1] - T)))
    return Check(f"Result 12: flow map T(z) vs {sampler} {2 * steps} steps (probe)", gap, None,
                 gap <= PROBE_FACTOR * e + FLOW_ATOL, "x = T(z)", f"max gap {gap:.2e} (e = {e:.2e})",
                 f"<= {PROBE_FACTOR:g} e + {FLOW_ATOL:g}")


def finite_step_check(fitter, moments, degree: int) -> Check:
    """Result 13: the composed polynomial ``P_N(z)`` against ``N`` Euler steps of the fitted denoiser."""
    grid = VESchedule().grid(FINITE_STEPS)
    fit = fitter(grid.sigma)
    z = PROBE_STARTS * grid.prior_std
    x = SAMPLERS["euler"](fit, torch.as_tensor(z[:, None]), grid)[:, 0].numpy()
    P = result13.numeric_output(moments, degree, grid, "euler")
    gap = float(np.max(np.abs(P(z) - x)) / max(np.max(np.abs(x)), 1.0))
    return Check(f"Result 13: P_N(z) vs {FINITE_STEPS} Euler steps", gap, None, gap <= FINITE_RTOL,
                 "x_N = P_N(z)", f"max gap {gap:.2e} x max|x_N|", f"<= {FINITE_RTOL:g}")

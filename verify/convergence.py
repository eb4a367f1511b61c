"""Result 2 checked through Result 3: the finite-step laws, refined, must converge to the continuous-time law.

The exact law of ``N`` steps (Result 3, itself checked against the sampler by the exact probe) is
computed on the same continuous-time schedule at ``N = 125, 250, 500, 1000``, stopping at the last
positive noise level (a final jump to ``sigma = 0`` is one step whose size does not shrink with
``N``, so it is left out on both sides). A discrete schedule (DDPM) cannot be refined: no check. Aitken's delta-squared extrapolation of each eigen-direction's mean and variance, from
the first three and from the last three, estimates the ``N -> infinity`` limit without assuming
the sampler's order; the continuous-time law must agree with the finer estimate to within
``LIMIT_FACTOR`` times the change between the two estimates (plus round-off).
"""
from __future__ import annotations

import numpy as np

from numerics.schedules import SCHEDULES
from theory.linear_law import continuous_law, wiener_law
from verify.check import Check

REFINEMENTS = (125, 250, 500, 1000)
LIMIT_FACTOR = 10.0   # the finer extrapolation is ~2^p times closer than the coarser one; 10x is generous
LIMIT_ATOL = 1e-9     # relative round-off floor of the recursions over 1000 steps


def aitken(a1, a2, a3):
    """Delta-squared limit of ``a1, a2, a3``; where the differences vanish (converged) it returns ``a3``."""
    d1, d2 = a2 - a1, a3 - a2
    denominator = d2 - d1
    safe = np.abs(denominator) > 1e-14 * np.maximum(np.abs(a3), 1e-300)
    return np.where(safe, a3 - d2**2 / np.where(safe, denominator, 1.0), a3)


def _moments(law):
    """Per-eigen-direction mean and variance of a spectral ``GaussianLaw``."""
    return np.concatenate([law.basis.T @ law.mean, law.cov])


def refinable(schedule: str) -> bool:
    """Continuous-time schedules can be refined; a discrete one has a fixed set of timesteps."""
    return SCHEDULES[schedule]().grid(2).sigma_dot is not None


def _refined(schedule: str, steps: int):
    """``steps`` steps of the schedule, without a final jump to ``sigma = 0``."""
    process = SCHEDULES[schedule]()
    grid = process.grid(steps)
    return process.grid(steps, final_zero=False) if grid.sigma[-1] == 0 else grid


def continuous_limit_check(sampler: str, schedule: str, mean, cov, start) -> Check:
    """The continuous-time law (Result 2) against the extrapolated finite-step laws (Result 3)."""
    grids = [_refined(schedule, steps) for steps in REFINEMENTS]
    finite = [_moments(wiener_law(sampler, grid, mean, cov, start)) for grid in grids]
    limit = _moments(continuous_law(sampler, grids[-1], mean, cov, start))
    coarse, fine = aitken(*finite[:3]), aitken(*finite[1:])
    scale = np.maximum(np.abs(limit), np.sqrt(np.max(np.abs(limit))) * 1e-6)
    error = np.abs(fine - limit) / scale
    allowed = LIMIT_FACTOR * np.abs(fine - coarse) / scale + LIMIT_ATOL
    worst = int(np.argmax(error / allowed))
    return Check("Result 2: limit of the finite-step laws", float(error[worst]), None, bool(np.all(error <= allowed)),
                 "continuous-time law", f"relative gap {error[worst]:.2e} (extrapolation change "
                 f"{(allowed[worst] - LIMIT_ATOL) / LIMIT_FACTOR:.1e})",
                 f"<= {LIMIT_FACTOR:g} x extrapolation change + {LIMIT_ATOL:g}")

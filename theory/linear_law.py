"""Numeric laws of sampler output for the linear class: finite-step (Result 3) and continuous (Result 2).

All in float64 numpy; nothing here builds a symbolic ``d x d`` matrix.

>>> import numpy as np
>>> from numerics.schedules import VESchedule
>>> law = wiener_law("euler", VESchedule().grid(256), np.zeros(2), np.diag([1.0, 4.0]), marginal_start)
>>> np.round(law.eigenvalues(), 3)
array([0.98 , 3.928])
"""
from __future__ import annotations

from functools import cache

import numpy as np

from numerics import validation
from numerics.registry import SPECS
from theory.finite_step import Dense, Diagonal, GaussianLaw, propagate
from theory.linear import ContinuousFlowLaw, OptimalAffineDenoiser
from theory.steps import UPDATES

OPTIMAL = OptimalAffineDenoiser()
ODE_SAMPLERS = frozenset(n for n, spec in SPECS.items() if spec.continuous_limit == "ode")  # PF-ODE discretizations
SDE_SAMPLERS = frozenset(n for n, spec in SPECS.items() if spec.continuous_limit == "sde")  # reverse-SDE ones


@cache
def continuous_flow() -> ContinuousFlowLaw:
    """Result 2, derived (``dsolve``, ~1 s) on first use rather than at import."""
    return ContinuousFlowLaw()


def _identity_like(cov):
    return np.eye(len(cov)) if np.ndim(cov) == 2 else np.ones(len(cov))


def prior_start(grid, mean, cov) -> GaussianLaw:
    """The standard prior ``N(0, prior_std^2 I)`` at ``t_0``: ``sigma_max^2`` for VE, 1 for VP/DDPM.

    ``cov`` is a matrix, or a vector of variances in an eigenbasis (then so is the result's).
    """
    return GaussianLaw(np.zeros(len(mean)), grid.prior_std**2 * _identity_like(cov))


def marginal_start(grid, mean, cov) -> GaussianLaw:
    """The Gaussian marginal (exact for a Gaussian target) of a target with moments ``(mean, cov)``: ``N(s mu, s^2 (Sigma + sigma^2 I))``."""
    s, sigma = grid.s[0], grid.sigma[0]
    return GaussianLaw(s * np.asarray(mean), s**2 * (cov + sigma**2 * _identity_like(cov)))


STARTS = {"prior": prior_start, "marginal": marginal_start}


def eigen_decomposition(mean, cov):
    mean = validation.mean_vector(mean)
    cov = validation.covariance(cov, dim=len(mean))
    eigenvalues, U = np.linalg.eigh(cov)
    return mean, np.clip(eigenvalues, 0.0, None), U


def _spectrum(eigenvalues, mean):
    eigenvalues = validation.finite_array(eigenvalues, "eigenvalues", ndim=1)
    if np.any(eigenvalues < 0):
        raise ValueError(f"eigenvalues must be >= 0, smallest is {eigenvalues.min():.3e}")
    return eigenvalues, validation.mean_vector(mean, "mean", dim=len(eigenvalues))


def spectral_law(sampler, grid, eigenvalues, mean, start=prior_start, start_eigenvalues=None) -> GaussianLaw:
    """Exact output law with the optimal affine denoiser, in the eigenbasis of ``Sigma``.

    ``eigenvalues`` are those the denoiser is optimal for and ``mean`` is ``U^T mu``; the start law
    uses ``start_eigenvalues`` (default: the same). The result's ``cov`` holds the variances along
    the same eigenvectors. O(d) per step: no ``d x d`` matrix is formed.
    """
    grid = validation.grid(grid, "grid")
    eigenvalues, mean = _spectrum(eigenvalues, mean)
    start_eigenvalues = eigenvalues if start_eigenvalues is None else _spectrum(start_eigenvalues, mean)[0]

    def affine(sigma):
        gain = OPTIMAL.gain(eigenvalues, sigma) if sigma > 0 else np.ones_like(eigenvalues)
        return gain, (1.0 - gain) * mean

    return propagate(sampler, grid, affine, start(grid, mean, start_eigenvalues), Diagonal)


def spectral_continuous_law(sampler, grid, eigenvalues, mean, start=prior_start, start_eigenvalues=None) -> GaussianLaw:
    """The law the sampler discretizes, per eigen-direction: exact PF-ODE (euler, heun, ddim) or reverse SDE."""
    grid = validation.grid(grid, "grid")
    validation.choice(sampler, "sampler", UPDATES)
    eigenvalues, mean = _spectrum(eigenvalues, mean)
    start_eigenvalues = eigenvalues if start_eigenvalues is None else _spectrum(start_eigenvalues, mean)[0]
    initial = start(grid, mean, start_eigenvalues)
    s0, s_end = grid.s[0], grid.s[-1]
    if sampler not in ODE_SAMPLERS | SDE_SAMPLERS:
        raise ValueError(f"sampler {sampler!r} discretizes neither the probability-flow ODE nor the reverse SDE "
                         "(Result 2): it has no continuous-time law here")
    flow = continuous_flow().ode if sampler in ODE_SAMPLERS else continuous_flow().sde
    m, v = flow(eigenvalues, mean, initial.mean / s0, initial.cov / s0**2, grid.sigma[0], grid.sigma[-1])
    return GaussianLaw(s_end * m, s_end**2 * v)


def wiener_law(sampler, grid, mean, cov, start=prior_start) -> GaussianLaw:
    """Exact output law of ``sampler`` on ``grid`` with the optimal affine denoiser for ``(mean, cov)``."""
    mean, eigenvalues, U = eigen_decomposition(mean, cov)
    law = spectral_law(sampler, grid, eigenvalues, U.T @ mean, start)
    return GaussianLaw(U @ law.mean, law.cov, U)


def affine_law(sampler, grid, affine, start: GaussianLaw) -> GaussianLaw:
    """Exact output law for any affine denoiser, ``affine(sigma) -> (G, b)``, by the full-matrix recursion."""
    return propagate(sampler, grid, affine, GaussianLaw(start.mean, start.covariance()), Dense)


def continuous_law(sampler, grid, mean, cov, start=prior_start) -> GaussianLaw:
    """The continuous-time law (Result 2) for the same start and noise range as ``sampler`` on ``grid``."""
    mean, eigenvalues, U = eigen_decomposition(mean, cov)
    law = spectral_continuous_law(sampler, grid, eigenvalues, U.T @ mean, start)
    return GaussianLaw(U @ law.mean, law.cov, U)

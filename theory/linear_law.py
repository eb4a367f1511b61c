"""Numeric laws of sampler output for the linear class: finite-step (Result 3) and continuous (Result 2).

All in float64 numpy; nothing here builds a symbolic ``d x d`` matrix.

>>> import numpy as np
>>> from numerics.schedules import VESchedule
>>> law = wiener_law("euler", VESchedule().grid(256), np.zeros(2), np.diag([1.0, 4.0]), marginal_start)
>>> np.round(law.eigenvalues(), 3)
array([0.98 , 3.928])
"""
from __future__ import annotations

import numpy as np

from theory import validation
from theory.finite_step import Dense, Diagonal, GaussianLaw, propagate
from theory.linear import ContinuousFlowLaw, OptimalAffineDenoiser

OPTIMAL = OptimalAffineDenoiser()
CONTINUOUS = ContinuousFlowLaw()
ODE_SAMPLERS = frozenset({"euler", "heun", "ddim"})


def prior_start(grid, mean, cov) -> GaussianLaw:
    """The standard prior ``N(0, prior_std^2 I)`` at ``t_0``: ``sigma_max^2`` for VE, 1 for VP/DDPM."""
    d = len(mean)
    return GaussianLaw(np.zeros(d), grid.prior_std**2 * np.eye(d))


def marginal_start(grid, mean, cov) -> GaussianLaw:
    """The exact marginal of a target with moments ``(mean, cov)``: ``N(s mu, s^2 (Sigma + sigma^2 I))``."""
    s, sigma = grid.s[0], grid.sigma[0]
    return GaussianLaw(s * mean, s**2 * (cov + sigma**2 * np.eye(len(mean))))


STARTS = {"prior": prior_start, "marginal": marginal_start}


def _eigen(mean, cov):
    mean = validation.mean_vector(mean)
    cov = validation.covariance(cov, dim=len(mean))
    eigenvalues, U = np.linalg.eigh(cov)
    return mean, np.clip(eigenvalues, 0.0, None), U


def _rotate_start(start: GaussianLaw, U) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variances of ``start`` in the basis ``U``; refuses a start that is not diagonal there."""
    C = U.T @ start.covariance() @ U
    off = C - np.diag(np.diag(C))
    if np.max(np.abs(off)) > 1e-9 * max(np.max(np.abs(C)), 1e-300):
        raise ValueError("start must be diagonal in the eigenbasis of cov for the per-direction law")
    return U.T @ start.mean, np.diag(C).copy()


def wiener_law(sampler, grid, mean, cov, start=prior_start) -> GaussianLaw:
    """Exact output law of ``sampler`` on ``grid`` with the optimal affine denoiser, per eigen-direction."""
    mean, eigenvalues, U = _eigen(mean, cov)
    mu_rot = U.T @ mean

    def affine(sigma):
        gain = OPTIMAL.gain(eigenvalues, sigma) if sigma > 0 else np.ones_like(eigenvalues)
        return gain, (1.0 - gain) * mu_rot

    m0, v0 = _rotate_start(start(grid, mean, cov), U)
    law = propagate(sampler, grid, affine, GaussianLaw(m0, v0), Diagonal)
    return GaussianLaw(U @ law.mean, law.cov, U)


def affine_law(sampler, grid, affine, start: GaussianLaw) -> GaussianLaw:
    """Exact output law for any affine denoiser, ``affine(sigma) -> (G, b)``, by the full-matrix recursion."""
    return propagate(sampler, grid, affine, GaussianLaw(start.mean, start.covariance()), Dense)


def continuous_law(sampler, grid, mean, cov, start=prior_start) -> GaussianLaw:
    """The law the sampler discretizes: exact PF-ODE (euler, heun, ddim) or reverse SDE (the others)."""
    mean, eigenvalues, U = _eigen(mean, cov)
    m0, v0 = _rotate_start(start(grid, mean, cov), U)
    s0, s_end = grid.s[0], grid.s[-1]
    flow = CONTINUOUS.ode if sampler in ODE_SAMPLERS else CONTINUOUS.sde
    m, v = flow(eigenvalues, U.T @ mean, m0 / s0, v0 / s0**2, grid.sigma[0], grid.sigma[-1])
    return GaussianLaw(U @ (s_end * m), s_end**2 * v, U)

"""Result 15 in ``d >= 2``: the theory's moment-built denoiser and flow map against the numerics fit and sampler.

Theory: :class:`theory.polynomial_flow_nd.MultivariateDenoiser` from the training set's mixed moments, its
flow map ``T`` with ``log|det J|`` and the inverse flow. Numerics: the least-squares fit on the training set
with the noise integrated exactly (tensor Gauss--Hermite for d <= 3, the symmetric degree-(2k+1) rule above),
run by the sampler. Checks: the two denoisers agree; the sampler from fixed starts lands on ``T(z)``
(deterministic probe); the inverse flow sends the sampler's outputs back to their starts (round trip) and
its image of prior samples is ``N(0, sigma_max^2 I)`` (calibrated Gaussian tests); ``log|det J|`` equals
the finite-difference log-determinant of the sampler map. Diverging starts are reported, predicted
(theory flow) against observed (sampler).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from numerics.polynomial import MAX_TENSOR_DIM, fit_multivariate
from numerics.polynomial_noise import fit_multivariate_exact
from numerics.samplers import SAMPLERS
from numerics.schedules import VESchedule
from theory import polynomial_flow_nd as result15
from theory.polynomial_law import FlowDivergence
from verify import polynomial_stability
from verify.check import Check
from verify.stats import gaussian_checks

DENOISER_RTOL = 1e-8   # normal equations from moments vs least squares on atoms: <= 2e-12 x scale measured
FACTOR = 2.0           # |x_2N - exact| ~ e / (2^p - 1) <= e for a sampler of order p >= 1: factor 2 margin
FLOW_ATOL = 1e-6       # DOP853 at rtol 1e-10 on |T| <= ~100 (x the inverse's amplification ~ sigma_max)
PROBE_STARTS = 6       # fixed prior starts for the probe and the round trip
FD_STARTS, FD_STEP = 2, 1e-3   # finite-difference Jacobians: starts, and step in units of sigma_max
REFINE = 4             # deterministic checks run the sampler at 4N and 8N steps (6 starts: cheap), so that the
                       # measured discretization error is ~16x below the N-step one and 1% errors show


def unavailable(cfg) -> str | None:
    """Why the Result 15 checks cannot run for ``cfg`` (None if they can)."""
    if cfg.features is not None or cfg.negative_control is not None:
        return "they test the total-degree class without a negative control"
    monomials = math.comb(cfg.dim + cfg.degree, cfg.dim)
    if monomials > result15.MAX_FEATURES:
        return f"{monomials} monomials > {result15.MAX_FEATURES} (theory normal equations too large)"
    return None


def total_degree_fit(train: np.ndarray, levels, k: int):
    """The numerics least-squares fit of degree ``k`` on ``train``, its Gaussian noise integrated exactly: by a
    quadrature rule where one is at hand, else in closed form (``d > 3`` with ``k = 3``)."""
    exact = fit_multivariate_exact if train.shape[1] > MAX_TENSOR_DIM and k > 2 else fit_multivariate
    return exact(train, None, levels, k)


def _runs(fit, z, grids, sampler):
    return [SAMPLERS[sampler](fit, torch.as_tensor(z), g).numpy() for g in grids]


def _fd_logdet(fit, z, grid, sampler):
    """``log|det dx_N/dz|`` of the sampler map by central differences, one batch of 2d runs per start."""
    d, h = z.shape[1], FD_STEP * grid.prior_std
    out = []
    for zi in z:
        batch = np.concatenate([zi + h * np.eye(d), zi - h * np.eye(d)])
        x = SAMPLERS[sampler](fit, torch.as_tensor(batch), grid).numpy()
        out.append(np.linalg.slogdet((x[:d] - x[d:]).T / (2 * h))[1])
    return np.array(out)


def _divergence(theory, z, grid, sampler_out):
    """``(predicted, observed)`` boolean masks of diverging starts (theory flow per start; sampler non-finite)."""
    predicted = np.zeros(len(z), bool)
    for i, zi in enumerate(z):
        try:
            result15.flow_map_nd(theory, zi[None], grid.sigma[0], grid.sigma[-1])
        except FlowDivergence:
            predicted[i] = True
    observed = polynomial_stability.escaped(sampler_out, theory.scale)
    return predicted, observed


def flow_checks(cfg, train: np.ndarray, rng: np.random.Generator) -> tuple[list[Check], dict]:
    """The four Result 15 checks (and the divergence report) for the total-degree class on ``train``."""
    k, d = cfg.degree, cfg.dim
    sample_grid = VESchedule().grid(cfg.steps, final_zero=False)
    grids = [VESchedule().grid(n * cfg.steps, final_zero=False) for n in (REFINE, 2 * REFINE)]
    theory = result15.MultivariateDenoiser(train, None, k)
    fit = total_degree_fit(train, np.concatenate([g.sigma for g in grids + [sample_grid]]), k)
    checks = [_denoiser_check(theory, fit, train, sample_grid)]
    sigma_max, sigma_end = grids[0].sigma[0], grids[0].sigma[-1]
    z = sigma_max * rng.standard_normal((PROBE_STARTS, d))
    x = _runs(fit, z, grids, cfg.sampler)
    predicted, observed = _divergence(theory, z, grids[0], x[1])
    measured = {"diverging starts predicted": int(predicted.sum()), "diverging starts observed": int(observed.sum())}
    checks.append(Check("divergence: predicted (theory flow) vs observed (sampler)", float((predicted != observed).sum()),
                        None, bool(np.array_equal(predicted, observed)), f"{predicted.sum()} of {len(z)}",
                        f"{observed.sum()} of {len(z)}", "same starts"))
    stability, stability_measured = polynomial_stability.checks_nd(theory, sigma_max, sigma_end, cfg.sampler, z,
                                                                   observed, cfg.seed)
    checks, measured = checks + stability, {**measured, **stability_measured}
    keep = ~(predicted | observed)
    if not keep.any():
        return checks, measured
    T, L = result15.flow_map_nd(theory, z[keep], sigma_max, sigma_end)
    e = float(np.max(np.abs(x[0][keep] - x[1][keep])))
    gap = float(np.max(np.abs(x[1][keep] - T)))
    checks.append(Check(f"Result 15: flow map T(z) vs {cfg.sampler} {2 * REFINE * cfg.steps} steps (probe)", gap, None,
                        gap <= FACTOR * e + FLOW_ATOL, "x = T(z)", f"max gap {gap:.2e} (e = {e:.2e})", f"<= {FACTOR:g} e"))
    back = [result15.inverse_flow_nd(theory, xi[keep], sigma_max, sigma_end) for xi in x]
    e_inv, gap_inv = float(np.max(np.abs(back[0] - back[1]))), float(np.max(np.abs(back[1] - z[keep])))
    checks.append(Check("Result 15: inverse flow round trip T^-1(x) = z", gap_inv / sigma_max, None,
                        gap_inv <= FACTOR * e_inv + FLOW_ATOL * sigma_max, "z", f"max gap {gap_inv:.2e} (e = {e_inv:.2e})",
                        f"<= {FACTOR:g} e"))
    fd = [_fd_logdet(fit, z[keep][:FD_STARTS], g, cfg.sampler) for g in grids]
    e_ld, gap_ld = float(np.max(np.abs(fd[0] - fd[1]))), float(np.max(np.abs(fd[1] - L[:FD_STARTS])))
    checks.append(Check("Result 15: log|det J| vs finite-difference sampler Jacobian", gap_ld, None,
                        gap_ld <= FACTOR * e_ld + 1e-4, "L(z)", f"max gap {gap_ld:.2e} (e = {e_ld:.2e})",
                        f"<= {FACTOR:g} e + 1e-4 (central differences)"))
    return checks + _inverse_gaussian_checks(cfg, theory, fit, sample_grid, rng), measured


def _denoiser_check(theory, fit, train, grid) -> Check:
    """Theory (moments, normal equations) vs numerics (least squares) at every fourth level of the grid."""
    gap, scale = 0.0, theory.scale
    y0 = train[: min(50, len(train))]
    for sigma in grid.sigma[::4]:
        y = y0 + sigma * np.random.default_rng(0).standard_normal(y0.shape)
        claimed = y - theory.field(y, float(sigma))[0]
        gap = max(gap, float(np.max(np.abs(fit(torch.as_tensor(y), float(sigma)).numpy() - claimed))) / scale)
    return Check("Result 15 denoiser: moment normal equations vs least-squares fit", gap, None,
                 gap <= DENOISER_RTOL, "same denoiser", f"max gap {gap:.2e} x scale", f"<= {DENOISER_RTOL:g} x scale")


def _inverse_gaussian_checks(cfg, theory, fit, grid, rng) -> list[Check]:
    """Generated samples mapped back by the inverse flow: calibrated tests against ``N(0, sigma_max^2 I)``."""
    n = max(cfg.samples, cfg.dim + 2)
    z = grid.prior_std * rng.standard_normal((n, cfg.dim))
    x = SAMPLERS[cfg.sampler](fit, torch.as_tensor(z), grid).numpy()
    back = result15.inverse_flow_nd(theory, x, grid.sigma[0], grid.sigma[-1]) / grid.sigma[0]
    checks = gaussian_checks(back, np.zeros(cfg.dim), np.eye(cfg.dim), alpha=cfg.alpha)
    return [Check(f"inverse flow noise: {c.name}", c.statistic, c.p_value, c.passed, c.predicted, c.measured,
                  c.threshold) for c in checks]

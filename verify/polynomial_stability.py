"""Result 17 in ``python -m verify.polynomial``: the blow-up criterion against the numerics sampler.

Tested (``Result 17: blow-up criterion vs sampler``): the ray model ``D = mean + a v + |b| (w . v)^k w``,
with ``a(sigma)``, ``b(sigma)`` the linear and top-degree ray coefficients of the optimal degree-k
denoiser along its most unstable direction ``w``, run by the sampler from starts at radii
``RADII x rho`` along ``+-w`` (plus a prior-sized orthogonal part); the criterion predicts blow-up
exactly for ``w . v_0 >= rho`` (``k`` odd: also ``<= -rho``). Measured, not tested: the leading-order
escape radius of the denoiser itself (intermediate degrees dropped) against the starts where the
sampler running the fitted denoiser escapes.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from numerics.samplers import SAMPLERS
from numerics.schedules import VESchedule
from theory import polynomial_stability as result17
from theory.polynomial_law import BOUND_FACTOR
from verify.check import Check

RADII = np.array([0.5, 0.7, 0.85, 1.15, 1.4, 2.0])  # start radii / rho: none within MARGIN of the boundary
MARGIN = 0.1      # starts with |r_0 / rho - 1| < 0.1 are not tested: the N-step sampler moves the boundary by
                  # ~ its step in log sigma (see STEPS)
MAX_FINE_FEATURES = 500  # above it (d = 64, k = 2: 2145 monomials, ~0.5 s per solve) the growth integral of the
COARSE_GRID_POINTS = 201  # d >= 2 check uses 201 levels: trapezoid error (10.6/200)^2 ~ 3e-3 relative in G, so
                          # ~1.5e-3 in rho, far inside the 10% band of starts the check excludes around rho
STEPS = {"heun": 128, "euler": 512, "ddim": 512}  # sampler steps of the stability runs (independent of
                  # --steps: blow-up is a continuous-time claim): measured boundary shift 0.5% (Heun 128),
                  # 12% (Euler 128, first order), so first-order samplers get 4x the steps (~3%)
DIRECTIONS = 64   # random directions over which the most unstable ray and the escape radii are taken


def escaped(x: np.ndarray, scale: float) -> np.ndarray:
    """Sampler outputs that left every finite bound: non-finite, or beyond BOUND_FACTOR x (scale + 1)."""
    with np.errstate(invalid="ignore"):
        return ~np.all(np.isfinite(x), axis=1) | (np.max(np.abs(x), axis=1) > BOUND_FACTOR * (scale + 1.0))


class RayModel:
    """``D(y) = mean + a(sigma) v + b(sigma) (w . v)^k w``, ``v = y - mean``, on (n, d) float64 tensors."""

    def __init__(self, mean, w, k, ab):
        self.mean, self.w, self.k, self.ab = torch.as_tensor(mean), torch.as_tensor(w), k, ab

    def __call__(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        a, b = self.ab(float(sigma))
        v = y.to(torch.float64) - self.mean
        return (self.mean + a * v + b * (v @ self.w)[:, None] ** self.k * self.w).to(y.dtype)


def _starts(w, rho, k, sigma_max, rng):
    """Starts along ``+-w`` at ``RADII x rho`` plus an orthogonal prior-sized part; their predicted fate."""
    d = w.size
    r0 = np.concatenate([RADII, -RADII]) * rho
    noise = sigma_max * rng.standard_normal((r0.size, d))
    noise -= np.outer(noise @ w, w)  # orthogonal to w: it only contracts, linearly
    predicted = (r0 >= rho) | ((k % 2 == 1) & (r0 <= -rho))  # along -w the top term is (-1)^(k+1) b
    return np.outer(r0, w) + noise, predicted


def criterion_check(mean, w, k, ab, sigma_max, sigma_end, sampler, scale, rng, on_grid=None,
                    num=result17.GRID_POINTS) -> tuple[Check, dict]:
    """The ray model's escape radius (Result 17 quadrature) against the sampler's escaping starts;
    ``on_grid``: ``(a, b)`` already known on ``result17.sigma_grid(sigma_max, sigma_end, num)`` (else from ``ab``)."""
    sigmas = result17.sigma_grid(sigma_max, sigma_end, num)
    a, b = np.array([ab(float(s)) for s in sigmas]).T if on_grid is None else on_grid
    rho = float(result17.escape_radius(result17.growth_integral(sigmas, a, b, k), k))
    z, predicted = _starts(w, rho, k, sigma_max, rng)
    grid = VESchedule(sigma_max=sigma_max, sigma_min=sigma_end).grid(STEPS[sampler], final_zero=False)
    x = SAMPLERS[sampler](RayModel(mean, w, k, ab), torch.as_tensor(z), grid).numpy()
    observed = escaped(x, scale)
    wrong = int((predicted != observed).sum())
    check = Check("Result 17: blow-up criterion vs sampler (ray model)", float(wrong), None, wrong == 0,
                  f"{predicted.sum()} of {z.shape[0]} escape (rho = {rho:.4g})", f"{observed.sum()} escape",
                  f"same starts; |r0/rho - 1| >= {MARGIN:g}")
    return check, {"Result 17 model escape radius rho": rho}


def _leading_order(rho_plus, rho_minus, fitter, mean, sigma_max, sigma_end, sampler, scale) -> dict:
    """1-D: the fitted denoiser's escape boundary on each side (starts out to 12 sigma_max) vs rho_+-."""
    r = sigma_max * np.linspace(0.25, 12.0, 48)  # boundary located to 0.25 sigma_max
    grid = VESchedule(sigma_max=sigma_max, sigma_min=sigma_end).grid(STEPS[sampler], final_zero=False)
    z = np.concatenate([mean + r, mean - r])[:, None]
    out = escaped(SAMPLERS[sampler](fitter(grid.sigma), torch.as_tensor(z), grid).numpy(), scale)
    first = lambda hits: f"{r[hits][0] / sigma_max:.3g}" if hits.any() else "none <= 12"  # noqa: E731
    return {"Result 17 leading-order escape radius (+, -) / sigma_max": np.array([rho_plus, rho_minus]) / sigma_max,
            "observed escape from (+, -) / sigma_max": f"{first(out[:48])}, {first(out[48:])}"}


def checks_1d(coefficient_fn, mean, degree, fitter, sigma_max, sigma_end, sampler, scale, seed) -> tuple[list, dict]:
    """Result 17 for the 1-D optimal degree-k denoiser (k >= 2; lower degrees are linear fields)."""
    if degree < 2:
        return [], {"Result 17": "degree <= 1: the field is linear in y, no finite-sigma blow-up"}
    sigmas = result17.sigma_grid(sigma_max, sigma_end)
    a, b = result17.polynomial_ray_terms(coefficient_fn, mean, sigmas, degree)
    rho = result17.escape_radius(result17.growth_integral(sigmas, a, b, degree), degree)

    @functools.cache
    def ab(s):  # the model along +1 with |b|: it always blows up beyond a finite rho
        a_s, b_s = result17.polynomial_ray_terms(coefficient_fn, mean, [s], degree)
        return float(a_s[0, 0]), abs(float(b_s[0, 0]))
    check, measured = criterion_check(np.array([mean]), np.ones(1), degree, ab, sigma_max, sigma_end, sampler,
                                      scale, np.random.default_rng([seed, 17]), on_grid=(a[:, 0], np.abs(b[:, 0])))
    measured.update(_leading_order(rho[0], rho[1], fitter, mean, sigma_max, sigma_end, sampler, scale))
    return [check], measured


def checks_nd(theory, sigma_max, sigma_end, sampler, z, observed, seed) -> tuple[list, dict]:
    """Result 17 for a :class:`theory.polynomial_flow_nd.MultivariateDenoiser` (degree >= 2) in d >= 2;
    ``z``, ``observed``: prior starts and whether the sampler running the fitted denoiser escaped from them."""
    k, d = theory.k, theory.d
    if k < 2:
        return [], {"Result 17": "degree <= 1: the field is linear in y, no finite-sigma blow-up"}
    rng = np.random.default_rng([seed, 17])
    thetas = np.concatenate([rng.standard_normal((DIRECTIONS, d)), z - theory.mean])
    num = result17.GRID_POINTS if len(theory.exponents) <= MAX_FINE_FEATURES else COARSE_GRID_POINTS
    sigmas = result17.sigma_grid(sigma_max, sigma_end, num)
    a, b = result17.multivariate_ray_terms(theory, sigmas, thetas)
    G = result17.growth_integral(sigmas, a, b, k)
    rho = result17.escape_radius(G, k)
    worst = int(np.argmax(np.max(G[:, :DIRECTIONS], axis=0)))
    w = thetas[worst] / np.linalg.norm(thetas[worst])

    @functools.cache
    def ab(s):
        a_s, b_s = result17.multivariate_ray_terms(theory, [s], w[None])
        return float(a_s[0, 0]), abs(float(b_s[0, 0]))
    check, measured = criterion_check(theory.mean, w, k, ab, sigma_max, sigma_end, sampler, theory.scale, rng,
                                      on_grid=(a[:, worst], np.abs(b[:, worst])), num=num)  # ray terms in hand
    predicted = np.linalg.norm(z - theory.mean, axis=1) >= rho[DIRECTIONS:]
    finite = rho[:DIRECTIONS][np.isfinite(rho[:DIRECTIONS])]
    measured.update({
        "Result 17 leading-order escape radius / sigma_max (min, median over unstable rays)":
            np.array([finite.min(), np.median(finite)]) / sigma_max if finite.size else "no unstable ray",
        "unstable rays (of random directions)": f"{finite.size} of {DIRECTIONS}",
        "probe starts escaping: leading-order prediction, observed": np.array([predicted.sum(), observed.sum()])})
    return [check], measured


def feature_prediction(denoiser, sigmas, starts) -> str:
    """Result 17's leading-order prediction for a numerics ``RandomFeatureDenoiser`` (all powers ``1..k``,
    k >= 2) from ``starts`` (n, d): how many escape, and the largest ``r_0 / rho`` over the starts."""
    k, m = denoiser.degree, denoiser.R.shape[0]
    levels = np.sort(np.asarray([s for s in sigmas if s > 0], dtype=np.float64))[::-1]
    v = starts - denoiser.parameters(float(levels[0]))[0]
    a, b = np.array([result17.feature_ray_terms(denoiser.R, coef[:m], coef[(k - 1) * m: k * m], scale, v, k)
                     for _, scale, coef in (denoiser.parameters(float(s)) for s in levels)]).transpose(1, 0, 2)
    rho = result17.escape_radius(result17.growth_integral(levels, a, b, k), k)  # on the fitted levels only
    ratio = np.linalg.norm(v, axis=1) / rho
    return (f"Result 17 (leading order, frozen ray, degree-{k} part) predicts {int((ratio >= 1).sum())} of "
            f"{len(v)} starts escape (largest r0/rho = {ratio.max():.3g}; {np.isfinite(rho).sum()} unstable rays)")

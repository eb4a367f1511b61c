"""Diffusion samplers with one signature: ``sample_<name>(denoiser, x, grid, *, generator, callback, noise_sampler)``.

``x`` is the state in the schedule's scaling, ``x = s(t) (x0 + sigma(t) n)``; the denoiser
``D(x / s, sigma)`` estimates ``x0``. Grid scalars are float64; the update follows the state's dtype.
``noise_sampler(i, x)`` returns the standard-normal noise of step ``i`` (default: from ``generator``).
"""
from __future__ import annotations

import math

from numerics.noise import randn_like
from numerics.schedules import Grid


def to_d(y, sigma, denoised):
    """``dx/dsigma`` of the probability-flow ODE in the unscaled variable (Karras et al. 2022, eq. 3)."""
    return (y - denoised) / sigma


def _noise(noise_sampler, generator):
    return noise_sampler or (lambda i, x: randn_like(x, generator))


def _report(callback, i, x, sigma, denoised):
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})


def sample_euler(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """Probability-flow ODE ``dy/dsigma = (y - D(y))/sigma`` in ``y = x/s``, Euler in sigma (Karras et al. 2022, Alg. 1 on y)."""
    for i in range(grid.steps):
        sigma, sigma_next = float(grid.sigma[i]), float(grid.sigma[i + 1])
        y = x / float(grid.s[i])                       # unscale: y = x0 + sigma n
        denoised = denoiser(y, sigma)
        d = to_d(y, sigma, denoised)                   # slope in sigma
        x = float(grid.s[i + 1]) * (y + (sigma_next - sigma) * d)
        _report(callback, i, x, sigma, denoised)
    return x


def sample_heun(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """The same ODE, Heun in sigma; Euler on a last step to sigma = 0 (Karras et al. 2022, Alg. 1 on y)."""
    for i in range(grid.steps):
        sigma, sigma_next = float(grid.sigma[i]), float(grid.sigma[i + 1])
        y = x / float(grid.s[i])
        denoised = denoiser(y, sigma)
        d = to_d(y, sigma, denoised)
        x_next = y + (sigma_next - sigma) * d          # Euler predictor
        if sigma_next > 0:                                  # trapezoidal corrector
            d_next = to_d(x_next, sigma_next, denoiser(x_next, sigma_next))
            x_next = y + (sigma_next - sigma) * 0.5 * (d + d_next)
        x = float(grid.s[i + 1]) * x_next
        _report(callback, i, x, sigma, denoised)
    return x


def sample_ddim(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """DDIM with eta = 0 (Song et al. 2021a, eq. 12): re-noise the x0 estimate with the predicted epsilon."""
    for i in range(grid.steps):
        s, sigma = float(grid.s[i]), float(grid.sigma[i])
        s_next, sigma_next = float(grid.s[i + 1]), float(grid.sigma[i + 1])
        denoised = denoiser(x / s, sigma)
        eps = (x - s * denoised) / (s * sigma)             # predicted noise, x = s x0 + s sigma eps
        x = s_next * denoised + s_next * sigma_next * eps
        _report(callback, i, x, sigma, denoised)
    return x


def sample_ddpm(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """DDPM ancestral sampling (Ho et al. 2020) as sigma_down/sigma_up steps of the unscaled variable."""
    noise = _noise(noise_sampler, generator)
    for i in range(grid.steps):
        sigma, sigma_next = float(grid.sigma[i]), float(grid.sigma[i + 1])
        y = x / float(grid.s[i])
        denoised = denoiser(y, sigma)
        sigma_up = sigma_next * math.sqrt(1.0 - (sigma_next / sigma) ** 2)  # posterior std
        sigma_down = sigma_next**2 / sigma                                  # deterministic part
        y = y + (sigma_down - sigma) * to_d(y, sigma, denoised)
        x = float(grid.s[i + 1]) * (y + sigma_up * noise(i, y))
        _report(callback, i, x, sigma, denoised)
    return x


def _score(x, s, sigma, denoised):
    """Score of the scaled marginal, ``grad log p_t(x) = (s D - x) / (s sigma)^2``."""
    return (s * denoised - x) / (s * sigma) ** 2


def sample_euler_maruyama(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """Reverse SDE ``dx = [s'/s x - 2 s^2 sigma' sigma score] dt + s sqrt(2 sigma' sigma) dw``, Euler-Maruyama in t."""
    if grid.sigma_dot is None:
        raise ValueError(f"sampler 'euler_maruyama' needs a continuous-time schedule; {grid.schedule!r} is discrete")
    noise = _noise(noise_sampler, generator)
    for i in range(grid.steps):
        s, sigma, h = float(grid.s[i]), float(grid.sigma[i]), float(grid.t[i] - grid.t[i + 1])
        s_dot, sigma_dot = float(grid.s_dot[i]), float(grid.sigma_dot[i])
        denoised = denoiser(x / s, sigma)
        drift = (s_dot / s) * x - 2 * s**2 * sigma_dot * sigma * _score(x, s, sigma, denoised)
        x = x - h * drift + s * math.sqrt(2 * sigma_dot * sigma * h) * noise(i, x)
        _report(callback, i, x, sigma, denoised)
    return x


def sample_exponential_vp(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """Exponential integrator of the VP reverse SDE with the score frozen over each step (Zhang & Chen 2023)."""
    if not grid.variance_preserving:
        raise ValueError(f"sampler 'exponential_vp' needs a variance-preserving schedule (vp, ddpm), got {grid.schedule!r}")
    noise = _noise(noise_sampler, generator)
    for i in range(grid.steps):
        s, sigma = float(grid.s[i]), float(grid.sigma[i])
        growth = float(grid.s[i + 1]) / s                 # exp((B(t_i) - B(t_{i+1})) / 2)
        denoised = denoiser(x / s, sigma)
        score = _score(x, s, sigma, denoised)
        x = growth * x + 2 * (growth - 1) * score + math.sqrt(growth**2 - 1) * noise(i, x)
        _report(callback, i, x, sigma, denoised)
    return x


SAMPLERS = {
    "euler": sample_euler,
    "heun": sample_heun,
    "ddim": sample_ddim,
    "ddpm": sample_ddpm,
    "euler_maruyama": sample_euler_maruyama,
    "exponential_vp": sample_exponential_vp,
}
STOCHASTIC = frozenset({"ddpm", "euler_maruyama", "exponential_vp"})

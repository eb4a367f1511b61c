"""Diffusion samplers with one signature: ``sample_<name>(denoiser, x, grid, *, generator, callback, noise_sampler)``.

``x`` is the state in the schedule's scaling, ``x = s(t) (x0 + sigma(t) n)``; the denoiser
``D(x / s, sigma)`` estimates ``x0``. Grid scalars are float64; the update follows the state's dtype.
``noise_sampler(i, x)`` returns the standard-normal noise of step ``i`` (default: from ``generator``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

from numerics.noise import randn_like
from numerics.registry import SPECS, SamplerSpec, require
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


def _heun_from(denoiser, y, sigma: float, sigma_next: float):
    """One Heun step of the PF-ODE in ``sigma`` from ``sigma`` to ``sigma_next`` (Euler on a step to 0).

    Returns ``(y_next, D(y))``."""
    denoised = denoiser(y, sigma)
    d = to_d(y, sigma, denoised)
    y_next = y + (sigma_next - sigma) * d              # Euler predictor
    if sigma_next > 0:                                 # trapezoidal corrector
        d_next = to_d(y_next, sigma_next, denoiser(y_next, sigma_next))
        y_next = y + (sigma_next - sigma) * 0.5 * (d + d_next)
    return y_next, denoised


def sample_heun(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """The same ODE, Heun in sigma; Euler on a last step to sigma = 0 (Karras et al. 2022, Alg. 1 on y)."""
    for i in range(grid.steps):
        sigma, sigma_next = float(grid.sigma[i]), float(grid.sigma[i + 1])
        y_next, denoised = _heun_from(denoiser, x / float(grid.s[i]), sigma, sigma_next)
        x = float(grid.s[i + 1]) * y_next
        _report(callback, i, x, sigma, denoised)
    return x


def sample_edm_churn(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """EDM's stochastic sampler (Karras et al. 2022, Alg. 2) on ``y = x/s``: churn ``sigma -> sigma_hat``
    (``grid.sigma_hat``, see ``schedules.churned``) with ``S_noise``-scaled fresh noise, then Heun from ``sigma_hat``."""
    noise = _noise(noise_sampler, generator)
    for i in range(grid.steps):
        sigma, sigma_hat, sigma_next = float(grid.sigma[i]), grid.sigma_hat_at(i), float(grid.sigma[i + 1])
        y = x / float(grid.s[i])
        y_hat = y + grid.s_noise * math.sqrt(max(sigma_hat**2 - sigma**2, 0.0)) * noise(i, y)  # churn
        y_next, denoised = _heun_from(denoiser, y_hat, sigma_hat, sigma_next)  # Heun from sigma_hat
        x = float(grid.s[i + 1]) * y_next
        _report(callback, i, x, sigma, denoised)
    return x


def sample_ddim(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """DDIM with eta = 0 (Song et al. 2021a, eq. 12): re-noise the x0 estimate with the predicted epsilon."""
    for i in range(grid.steps):
        s, sigma = float(grid.s[i]), float(grid.sigma[i])
        s_next, sigma_next = grid.land_at(i)               # the next point, or where diffusers' DDIM lands
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
    noise = _noise(noise_sampler, generator)
    for i in range(grid.steps):
        s, sigma = float(grid.s[i]), float(grid.sigma[i])
        growth = float(grid.s[i + 1]) / s                 # exp((B(t_i) - B(t_{i+1})) / 2)
        denoised = denoiser(x / s, sigma)
        score = _score(x, s, sigma, denoised)
        x = growth * x + 2 * (growth - 1) * score + math.sqrt(growth**2 - 1) * noise(i, x)
        _report(callback, i, x, sigma, denoised)
    return x


def sample_ancestral(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """DDIM with ``eta`` (Song et al. 2021a, eq. 16), the same step as k-diffusion's Euler ancestral:
    ``y' = D + sigma_down eps_hat + sigma_up z``, ``sigma_up = eta sigma' sqrt(1 - sigma'^2/sigma^2)``."""
    noise = _noise(noise_sampler, generator)
    for i in range(grid.steps):
        (s_next, sigma_next), sigma = grid.land_at(i), float(grid.sigma[i])  # lands on the next point, or off it
        y = x / float(grid.s[i])
        denoised = denoiser(y, sigma)
        sigma_up = grid.eta_at(i) * sigma_next * math.sqrt(1.0 - (sigma_next / sigma) ** 2)  # eta x posterior std
        sigma_down = math.sqrt(sigma_next**2 - sigma_up**2)                               # what the ODE keeps
        y = denoised + sigma_down * to_d(y, sigma, denoised)
        x = s_next * (y + grid.s_noise * sigma_up * noise(i, y))  # S_noise inflates the noise only
        _report(callback, i, x, sigma, denoised)
    return x


def sample_ddpm_large(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """DDPM with ``variance_type="fixed_large"`` (Ho et al. 2020, ``sigma_t^2 = beta_t``): the posterior
    mean plus noise of variance ``eta_i^2 beta_t``, ``beta_t = 1 - abar_t / abar_{t-1} = 1 - (s/s')^2``."""
    noise = _noise(noise_sampler, generator)
    for i in range(grid.steps):
        s, s_next = float(grid.s[i]), float(grid.s[i + 1])
        sigma, sigma_next = float(grid.sigma[i]), float(grid.sigma[i + 1])
        y = x / s
        denoised = denoiser(y, sigma)
        ratio = (sigma_next / sigma) ** 2
        mean = s_next * (ratio * y + (1 - ratio) * denoised)            # posterior mean of q(x' | x, x0)
        x = mean + grid.eta_at(i) * math.sqrt(1 - (s / s_next) ** 2) * noise(i, x)
        _report(callback, i, x, sigma, denoised)
    return x


X0_READINGS = {  # diffusers' EulerDiscreteScheduler: its model output at (y, sigma), read as x0 after the churn
    "epsilon": lambda y, y_hat, denoised, sigma, sigma_hat: y_hat - sigma_hat * (y - denoised) / sigma,
    "sample": lambda y, y_hat, denoised, sigma, sigma_hat: denoised,
    "v": lambda y, y_hat, denoised, sigma, sigma_hat: denoised + (y_hat - y) / (1 + sigma**2),
}


def _diffusers_euler_churn(kind: str):
    """``sample_euler_churn_<kind>``: diffusers' ``EulerDiscreteScheduler.step(s_churn=...)``. The pipeline calls the
    model on the pre-churn state at ``sigma_i``; ``step`` then churns to ``sigma_hat`` (``grid.sigma_hat``) and reads
    the model output as ``x0`` with ``sigma_hat``: epsilon ``y_hat - sigma_hat eps``, sample ``D``, v ``c_skip y_hat
    + c_out v`` at ``sigma_i``; one Euler step from ``sigma_hat``."""
    name, x0_reading = f"euler_churn_{kind}", X0_READINGS[kind]

    def sample(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
        noise = _noise(noise_sampler, generator)
        for i in range(grid.steps):
            sigma, sigma_hat, sigma_next = float(grid.sigma[i]), grid.sigma_hat_at(i), float(grid.sigma[i + 1])
            y = x / float(grid.s[i])
            denoised = denoiser(y, sigma)                                   # the model, before the churn
            y_hat = y + grid.s_noise * math.sqrt(max(sigma_hat**2 - sigma**2, 0.0)) * noise(i, y)  # churn
            x0 = x0_reading(y, y_hat, denoised, sigma, sigma_hat)
            x = float(grid.s[i + 1]) * (y_hat + (sigma_next - sigma_hat) * (y_hat - x0) / sigma_hat)  # Euler
            _report(callback, i, x, sigma, denoised)
        return x
    sample.__name__ = sample.__qualname__ = f"sample_{name}"
    return sample


def _pf_drift(x, s, s_dot, sigma, sigma_dot, denoised):
    """``dx/dt`` of the probability-flow ODE, ``s'/s x - s^2 sigma' sigma score`` (Karras et al. 2022, eq. 4)."""
    return (s_dot / s) * x - s**2 * sigma_dot * sigma * _score(x, s, sigma, denoised)


def _at(grid, i):
    return float(grid.s[i]), float(grid.s_dot[i]), float(grid.sigma[i]), float(grid.sigma_dot[i])


def sample_euler_t(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """Probability-flow ODE stepped in ``t`` on ``x`` (Song et al. 2021b, eq. 13), Euler: ``x' = x - h f(x, t)``."""
    for i in range(grid.steps):
        s, s_dot, sigma, sigma_dot = _at(grid, i)
        denoised = denoiser(x / s, sigma)
        x = x - float(grid.t[i] - grid.t[i + 1]) * _pf_drift(x, s, s_dot, sigma, sigma_dot, denoised)
        _report(callback, i, x, sigma, denoised)
    return x


def sample_heun_t(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """The same ODE in ``t``, Heun's trapezoid; Euler on a step to ``sigma = 0`` (where the score is undefined)."""
    for i in range(grid.steps):
        h = float(grid.t[i] - grid.t[i + 1])
        s, s_dot, sigma, sigma_dot = _at(grid, i)
        denoised = denoiser(x / s, sigma)
        slope = _pf_drift(x, s, s_dot, sigma, sigma_dot, denoised)
        x_next = x - h * slope                                   # Euler predictor
        if grid.sigma[i + 1] > 0:                                # trapezoidal corrector
            s1, s_dot1, sigma1, sigma_dot1 = _at(grid, i + 1)
            slope_next = _pf_drift(x_next, s1, s_dot1, sigma1, sigma_dot1, denoiser(x_next / s1, sigma1))
            x_next = x - h * 0.5 * (slope + slope_next)
        x = x_next
        _report(callback, i, x, sigma, denoised)
    return x


def sample_rk4_t(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """The same ODE in ``t``, classical fourth-order Runge–Kutta: stages at ``t_i``, ``t_i - h/2`` (twice,
    ``grid.mid``) and ``t_{i+1}``; Euler on a step to ``sigma = 0`` (where the score is undefined)."""

    def f(x, point):  # dx/dt at (s, s_dot, sigma, sigma_dot), the denoiser called at that point's sigma
        s, s_dot, sigma, sigma_dot = point
        return _pf_drift(x, s, s_dot, sigma, sigma_dot, denoiser(x / s, sigma))
    for i in range(grid.steps):
        h, point = float(grid.t[i] - grid.t[i + 1]), _at(grid, i)
        denoised = denoiser(x / point[0], point[2])
        k1 = _pf_drift(x, *point, denoised)
        if grid.sigma[i + 1] == 0:                               # Euler to sigma = 0
            x = x - h * k1
        else:
            k2 = f(x - 0.5 * h * k1, grid.mid.at(i))             # midpoint stages t_i - h/2
            k3 = f(x - 0.5 * h * k2, grid.mid.at(i))
            k4 = f(x - h * k3, _at(grid, i + 1))                 # end stage t_{i+1}
            x = x - (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        _report(callback, i, x, point[2], denoised)
    return x


def sample_ddpm_t(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """score_sde's ancestral sampler of the VP SDE with ``beta_i = beta(t_i) h``:
    ``x' = (x + beta_i score) / sqrt(1 - beta_i) + sqrt(beta_i) z`` (Song et al. 2021b, eq. 47)."""
    noise = _noise(noise_sampler, generator)
    for i in range(grid.steps):
        s, s_dot, sigma, _ = _at(grid, i)
        beta = -2.0 * (s_dot / s) * float(grid.t[i] - grid.t[i + 1])  # beta(t_i) dt, VP: s'/s = -beta/2
        if not 0 < beta < 1:
            raise ValueError(f"sampler 'ddpm_t' needs 0 < beta(t_i) h < 1 on every step, got {beta:.4g} at step {i}")
        denoised = denoiser(x / s, sigma)
        x = (x + beta * _score(x, s, sigma, denoised)) / math.sqrt(1 - beta) + math.sqrt(beta) * noise(i, x)
        _report(callback, i, x, sigma, denoised)
    return x


def sample_dpmpp_2m(denoiser, x, grid: Grid, *, generator=None, callback=None, noise_sampler=None):
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) in ``y = x/s`` with ``lambda = -log sigma``; first order on
    the first step and on a step to ``sigma = 0`` (k-diffusion; diffusers' ``lower_order_final``)."""
    old = None
    for i in range(grid.steps):
        sigma, sigma_next = float(grid.sigma[i]), float(grid.sigma[i + 1])
        y = x / float(grid.s[i])
        denoised = denoiser(y, sigma)
        d = denoised
        if old is not None and sigma_next > 0:                   # second order: extrapolate in lambda
            r = math.log(float(grid.sigma[i - 1]) / sigma) / math.log(sigma / sigma_next)  # h_{i-1} / h_i
            d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
        y = (sigma_next / sigma) * y + (1 - sigma_next / sigma) * d  # exact for a constant x0 estimate
        x = float(grid.s[i + 1]) * y
        old = denoised
        _report(callback, i, x, sigma, denoised)
    return x


@dataclass(frozen=True)
class Sampler(SamplerSpec):
    """A registry entry (``numerics.registry.SPECS``) with its torch function ``run``."""

    run: Callable | None = None


RUNS = {"euler": sample_euler, "heun": sample_heun, "ddim": sample_ddim, "ddpm": sample_ddpm,
        "euler_maruyama": sample_euler_maruyama, "exponential_vp": sample_exponential_vp,
        "ancestral": sample_ancestral, "ddpm_large": sample_ddpm_large, "euler_t": sample_euler_t,
        "heun_t": sample_heun_t, "rk4_t": sample_rk4_t, "ddpm_t": sample_ddpm_t, "dpmpp_2m": sample_dpmpp_2m,
        "edm_churn": sample_edm_churn, **{f"euler_churn_{k}": _diffusers_euler_churn(k) for k in X0_READINGS}}
def _checked(name: str, run: Callable) -> Callable:
    """``run`` that first refuses a grid the registry says sampler ``name`` cannot honour (``require``: continuous
    time, VP, midpoints; churn or landing levels it would ignore), before any step."""
    @functools.wraps(run)
    def sample(denoiser, x, grid: Grid, **keywords):
        require(name, grid)
        return run(denoiser, x, grid, **keywords)
    return sample


REGISTRY = {name: Sampler(**vars(spec), run=_checked(name, RUNS[name])) for name, spec in SPECS.items()}
SAMPLERS = {name: entry.run for name, entry in REGISTRY.items()}
STOCHASTIC = frozenset(name for name, entry in REGISTRY.items() if entry.kind == "sde")

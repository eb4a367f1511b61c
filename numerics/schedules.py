"""Noise schedules in EDM form ``x = s(t) (x0 + sigma(t) n)`` and their time grids.

A :class:`Grid` holds the points ``t_0 > t_1 > ... > t_N`` a sampler visits, with ``sigma``,
``s`` and (for continuous-time schedules) their time derivatives, all in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numerics.validation import positive, positive_int


@dataclass(frozen=True)
class Grid:
    """Sampler time grid: ``N + 1`` points, ``N`` steps; ``sigma_dot``/``s_dot`` are None when discrete."""

    t: np.ndarray
    sigma: np.ndarray
    s: np.ndarray
    sigma_dot: np.ndarray | None
    s_dot: np.ndarray | None
    prior_std: float
    schedule: str

    @property
    def steps(self) -> int:
        return len(self.sigma) - 1

    @property
    def variance_preserving(self) -> bool:
        """True when ``s^2 (1 + sigma^2) = 1`` at every point (VP and DDPM)."""
        return bool(np.allclose(self.s**2 * (1 + self.sigma**2), 1.0, rtol=1e-12, atol=0))


class VESchedule:
    """Variance exploding, ``sigma(t) = t``, ``s(t) = 1``, Karras et al. (2022) rho-grid."""

    name = "ve"

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0):
        self.sigma_min = positive(sigma_min, "sigma_min")
        self.sigma_max = positive(sigma_max, "sigma_max")
        self.rho = positive(rho, "rho")
        if self.sigma_min >= self.sigma_max:
            raise ValueError(f"sigma_min must be < sigma_max, got {sigma_min} >= {sigma_max}")

    def grid(self, steps: int, final_zero: bool = True) -> Grid:
        """Karras grid: sigma_max to sigma_min in rho-spacing, then 0 if ``final_zero`` (EDM eq. 5)."""
        points = positive_int(steps, "steps") + (0 if final_zero else 1)
        ramp = np.linspace(0.0, 1.0, points) if points > 1 else np.zeros(1)
        inv_rho = 1.0 / self.rho
        sigma = (self.sigma_max**inv_rho + ramp * (self.sigma_min**inv_rho - self.sigma_max**inv_rho)) ** self.rho
        if final_zero:
            sigma = np.append(sigma, 0.0)
        ones = np.ones_like(sigma)
        return Grid(t=sigma.copy(), sigma=sigma, s=ones, sigma_dot=ones, s_dot=np.zeros_like(sigma),
                    prior_std=self.sigma_max, schedule=self.name)


class VPSchedule:
    """Variance preserving with linear ``beta(t)`` (Song et al. 2021); ``B(t) = int_0^t beta``."""

    name = "vp"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0, eps: float = 1e-3):
        self.beta_min = positive(beta_min, "beta_min")
        self.beta_max = positive(beta_max, "beta_max")
        self.T = positive(T, "T")
        self.eps = positive(eps, "eps")
        if self.eps >= self.T:
            raise ValueError(f"eps must be < T, got {eps} >= {T}")

    def beta(self, t):
        return self.beta_min + (self.beta_max - self.beta_min) * np.asarray(t) / self.T

    def B(self, t):
        t = np.asarray(t, dtype=np.float64)
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2 / self.T

    def sigma(self, t):
        return np.sqrt(np.expm1(self.B(t)))

    def s(self, t):
        return np.exp(-0.5 * self.B(t))

    def grid(self, steps: int) -> Grid:
        """``steps + 1`` points uniform in ``t`` from ``T`` down to ``eps``."""
        t = np.linspace(self.T, self.eps, positive_int(steps, "steps") + 1)
        sigma, s, beta = self.sigma(t), self.s(t), self.beta(t)
        sigma_dot = 0.5 * beta * np.exp(self.B(t)) / sigma  # d/dt sqrt(e^B - 1)
        s_dot = -0.5 * beta * s
        return Grid(t=t, sigma=sigma, s=s, sigma_dot=sigma_dot, s_dot=s_dot, prior_std=1.0,
                    schedule=self.name)


class DDPMSchedule:
    """Discrete DDPM (Ho et al. 2020): ``beta_k`` linear, ``alpha_bar_k = prod_{j<=k} (1 - beta_j)``."""

    name = "ddpm"

    def __init__(self, beta_start: float = 1e-4, beta_end: float = 0.02, num_timesteps: int = 1000):
        self.beta_start = positive(beta_start, "beta_start")
        self.beta_end = positive(beta_end, "beta_end")
        self.num_timesteps = positive_int(num_timesteps, "num_timesteps")
        if self.beta_end >= 1:
            raise ValueError(f"beta_end must be < 1, got {beta_end}")
        beta = np.linspace(self.beta_start, self.beta_end, self.num_timesteps)
        self.alpha_bar = np.concatenate([[1.0], np.cumprod(1.0 - beta)])  # index k = 0..K, k = 0 is clean

    def grid(self, steps: int) -> Grid:
        """``steps`` evenly spaced timesteps from K down to 0 (DDIM's sub-sequence), 0 meaning clean."""
        steps = positive_int(steps, "steps")
        if steps > self.num_timesteps:
            raise ValueError(f"steps must be <= num_timesteps = {self.num_timesteps}, got {steps}")
        k = np.round(np.linspace(self.num_timesteps, 0, steps + 1)).astype(np.int64)
        alpha_bar = self.alpha_bar[k]
        return Grid(t=k.astype(np.float64), sigma=np.sqrt((1 - alpha_bar) / alpha_bar),
                    s=np.sqrt(alpha_bar), sigma_dot=None, s_dot=None, prior_std=1.0, schedule=self.name)


SCHEDULES = {"ve": VESchedule, "vp": VPSchedule, "ddpm": DDPMSchedule}

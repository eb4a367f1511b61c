"""Noise schedules in EDM form ``x = s(t) (x0 + sigma(t) n)`` and their time grids.

A :class:`Grid` holds the points ``t_0 > t_1 > ... > t_N`` a sampler visits, with ``sigma``,
``s`` and (for continuous-time schedules) their time derivatives, all in float64.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from numerics.validation import choice, positive, positive_int


@dataclass(frozen=True)
class Points:
    """A continuous schedule at one extra time per step (RK4's stage midpoints ``t_i - h_i / 2``)."""

    t: np.ndarray
    sigma: np.ndarray
    s: np.ndarray
    sigma_dot: np.ndarray
    s_dot: np.ndarray

    def __post_init__(self):
        for name in ("t", "sigma", "s", "sigma_dot", "s_dot"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.ndim != 1 or not np.all(np.isfinite(value)):
                raise ValueError(f"grid.mid.{name} must be a finite vector, one entry per step")
            object.__setattr__(self, name, value)
        if np.any(self.sigma <= 0) or np.any(self.s <= 0):
            raise ValueError("grid.mid.sigma and grid.mid.s must be > 0")

    def at(self, i: int) -> tuple[float, float, float, float]:
        """``(s, s_dot, sigma, sigma_dot)`` at step ``i``'s midpoint."""
        return float(self.s[i]), float(self.s_dot[i]), float(self.sigma[i]), float(self.sigma_dot[i])


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
    eta: np.ndarray | None = None  # per-step multiplier of the fresh noise (ancestral, ddpm_large); None = 1
    s_noise: float = 1.0  # k-diffusion's / EDM's S_noise: scales the ancestral step's fresh noise only

    sigma_hat: np.ndarray | None = None  # EDM Alg. 2: the churned level of step i (>= sigma_i); None = no churn
    mid: Points | None = None  # the schedule at t_i - h_i / 2 (continuous schedules; RK4's middle stages)
    land_sigma: np.ndarray | None = None  # where step i lands when not on point i + 1 (diffusers' DDIM: t - K//N)
    land_s: np.ndarray | None = None

    def land_at(self, i: int) -> tuple[float, float]:
        """``(s, sigma)`` where step ``i`` lands: the next grid point unless ``land_sigma`` says otherwise."""
        if self.land_sigma is None:
            return float(self.s[i + 1]), float(self.sigma[i + 1])
        return float(self.land_s[i]), float(self.land_sigma[i])

    def sigma_hat_at(self, i: int) -> float:
        """The level step ``i``'s first denoiser call sees: ``sigma_hat_i`` under churn, else ``sigma_i``."""
        return float(self.sigma[i] if self.sigma_hat is None else self.sigma_hat[i])

    def eta_at(self, i: int) -> float:
        """The noise multiplier of step ``i`` (1 when the grid sets none)."""
        return 1.0 if self.eta is None else float(self.eta[i])

    def __post_init__(self):
        self._check_points()
        if self.eta is not None:  # a scalar is broadcast to every step
            eta = np.broadcast_to(np.asarray(self.eta, dtype=np.float64), (self.steps,)).copy()
            if not np.all((eta >= 0) & (eta <= 1)):
                raise ValueError(f"eta must be in [0, 1] on every step, got {self.eta!r}")
            object.__setattr__(self, "eta", eta)
        if self.sigma_hat is not None:
            sigma_hat = np.asarray(self.sigma_hat, dtype=np.float64)
            if sigma_hat.shape != (self.steps,) or not np.all(np.isfinite(sigma_hat)) \
                    or np.any(sigma_hat < self.sigma[:-1] * (1 - 1e-15)):
                raise ValueError("grid.sigma_hat must hold one finite level >= sigma_i per step")
            object.__setattr__(self, "sigma_hat", sigma_hat)
        self._check_landing()
        if self.mid is not None and (len(self.mid.t) != self.steps or np.any(self.mid.t >= self.t[:-1])
                                     or np.any(self.mid.t <= self.t[1:])):
            raise ValueError("grid.mid must hold one time strictly inside each step (t_{i+1} < t_mid < t_i)")
        if not (np.isfinite(self.s_noise) and self.s_noise >= 0):
            raise ValueError(f"s_noise must be a finite number >= 0, got {self.s_noise!r}")

    def _check_landing(self) -> None:
        """``land_sigma``, ``land_s``: both or neither, one finite entry per step, ``0 <= land_sigma <= sigma_i``,
        ``land_s > 0``, and the last step lands on the last point (the output's level)."""
        if (self.land_sigma is None) != (self.land_s is None):
            raise ValueError("grid.land_sigma and grid.land_s go together")
        if self.land_sigma is None:
            return
        sigma, s = (np.asarray(v, dtype=np.float64) for v in (self.land_sigma, self.land_s))
        if sigma.shape != (self.steps,) or s.shape != (self.steps,) or not np.all(np.isfinite(sigma) & np.isfinite(s)):
            raise ValueError("grid.land_sigma and grid.land_s must hold one finite value per step")
        if np.any(sigma < 0) or np.any(sigma > self.sigma[:-1]) or np.any(s <= 0):
            raise ValueError("grid.land_sigma must be in [0, sigma_i] and grid.land_s > 0")
        if sigma[-1] != self.sigma[-1] or s[-1] != self.s[-1]:
            raise ValueError("the last step must land on the grid's last point")
        object.__setattr__(self, "land_sigma", sigma)
        object.__setattr__(self, "land_s", s)

    def _check_points(self) -> None:
        """``t`` decreasing, ``sigma >= 0`` non-increasing, ``s > 0``, all finite and of one length >= 2."""
        arrays = {"t": self.t, "sigma": self.sigma, "s": self.s}
        arrays.update({k: v for k, v in (("sigma_dot", self.sigma_dot), ("s_dot", self.s_dot)) if v is not None})
        for name, value in arrays.items():
            value = np.asarray(value, dtype=np.float64)
            if value.ndim != 1 or len(value) != len(np.asarray(self.sigma)) or len(value) < 2:
                raise ValueError(f"grid.{name} must be a vector of the N + 1 >= 2 grid points, got shape {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"grid.{name} must be finite")
            object.__setattr__(self, name, value)
        if np.any(self.sigma < 0) or np.any(np.diff(self.sigma) > 0):
            raise ValueError("grid.sigma must be >= 0 and non-increasing (a sampler runs from noise to data)")
        if np.any(self.s <= 0):
            raise ValueError("grid.s must be > 0")
        if not (np.isfinite(self.prior_std) and self.prior_std > 0):
            raise ValueError(f"grid.prior_std must be a finite number > 0, got {self.prior_std!r}")

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
        return _continuous_grid(self, sigma, prior_std=self.sigma_max)

    @staticmethod
    def at(t) -> dict:
        """``sigma(t) = t``, ``s(t) = 1`` and their time derivatives at the times ``t``."""
        t = np.asarray(t, dtype=np.float64)
        return {"sigma": t.copy(), "s": np.ones_like(t), "sigma_dot": np.ones_like(t), "s_dot": np.zeros_like(t)}


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
        return _continuous_grid(self, t, prior_std=1.0)

    def at(self, t) -> dict:
        """``sigma(t)``, ``s(t)`` and their time derivatives at the times ``t``."""
        t = np.asarray(t, dtype=np.float64)
        sigma, s, beta = self.sigma(t), self.s(t), self.beta(t)
        return {"sigma": sigma, "s": s, "sigma_dot": 0.5 * beta * np.exp(self.B(t)) / sigma,  # d/dt sqrt(e^B - 1)
                "s_dot": -0.5 * beta * s}


def _continuous_grid(schedule, t: np.ndarray, prior_std: float) -> Grid:
    """The grid at the times ``t``, with the schedule also at each step's midpoint (``Grid.mid``)."""
    t_mid = 0.5 * (t[:-1] + t[1:])
    return Grid(t=t.copy(), **schedule.at(t), prior_std=prior_std, schedule=schedule.name,
                mid=Points(t=t_mid, **schedule.at(t_mid)))


BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
SPACINGS = ("leading", "trailing", "linspace")


def cosine_betas(K: int, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal (2021) eq. 17: ``beta_k = 1 - abar(k/K)/abar((k-1)/K)``, ``abar(u) = cos^2((u + .008)/1.008 pi/2)``."""
    u = np.arange(K + 1) / K
    alpha_bar = np.cos((u + 0.008) / 1.008 * np.pi / 2) ** 2
    return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], max_beta)


def ddpm_betas(beta_schedule: str, beta_start: float, beta_end: float, K: int) -> np.ndarray:
    """The ``K`` training betas of ``beta_schedule`` (the names diffusers uses), float64."""
    if beta_schedule == "linear":
        return np.linspace(beta_start, beta_end, K)
    if beta_schedule == "scaled_linear":  # linear in sqrt(beta) (latent diffusion)
        return np.linspace(beta_start**0.5, beta_end**0.5, K) ** 2
    return cosine_betas(K)


class DDPMSchedule:
    """Discrete DDPM (Ho et al. 2020): ``alpha_bar_k = prod_{j<=k} (1 - beta_j)``, index 0 clean, ``k`` = timestep + 1.

    ``grid(steps)`` keeps the project's own sub-sequence; ``grid(steps, spacing=...)`` follows the
    timestep conventions of diffusers' schedulers (Lin et al. 2024, Table 2), see :meth:`timesteps`.
    """

    name = "ddpm"

    def __init__(self, beta_start: float = 1e-4, beta_end: float = 0.02, num_timesteps: int = 1000,
                 beta_schedule: str = "linear"):
        self.beta_start = positive(beta_start, "beta_start")
        self.beta_end = positive(beta_end, "beta_end")
        self.num_timesteps = positive_int(num_timesteps, "num_timesteps")
        self.beta_schedule = choice(beta_schedule, "beta_schedule", BETA_SCHEDULES)
        if self.beta_end >= 1:
            raise ValueError(f"beta_end must be < 1, got {beta_end}")
        beta = ddpm_betas(beta_schedule, self.beta_start, self.beta_end, self.num_timesteps)
        self.alpha_bar = np.concatenate([[1.0], np.cumprod(1.0 - beta)])  # index k = 0..K, k = 0 is clean

    def timesteps(self, steps: int, spacing: str, steps_offset: int = 0) -> np.ndarray:
        """The ``steps`` 0-based training timesteps a sampler visits, descending (diffusers' spacings).

        leading: ``j K//N + offset``; trailing: ``round(K - j K/N) - 1``; linspace: ``round(linspace(0, K-1, N))``.
        """
        K, N = self.num_timesteps, self._steps(steps)
        choice(spacing, "spacing", SPACINGS)
        if spacing == "leading":
            t = np.arange(N) * (K // N) + int(steps_offset)
        elif spacing == "trailing":
            t = np.round(np.arange(K, 0, -K / N)) - 1
        else:
            t = np.round(np.linspace(0, K - 1, N))
        t = np.sort(t.astype(np.int64))[::-1]
        if t.max() >= K or t.min() < 0:
            raise ValueError(f"steps_offset = {steps_offset} puts a timestep outside 0..{K - 1}")
        return t

    def _steps(self, steps):
        steps = positive_int(steps, "steps")
        if steps > self.num_timesteps:
            raise ValueError(f"steps must be <= num_timesteps = {self.num_timesteps}, got {steps}")
        return steps

    def grid(self, steps: int, spacing: str | None = None, steps_offset: int = 0,
             set_alpha_to_one: bool = True) -> Grid:
        """The grid of ``steps`` steps; ``spacing=None``: ``round(linspace(K, 0, N + 1))`` in ``k``, ending clean.

        With a ``spacing`` the points are :meth:`timesteps` then the final one: clean (``alpha_bar = 1``)
        if ``set_alpha_to_one`` else the first training level ``alpha_bar_1`` (diffusers' DDIM).
        """
        if spacing is None:
            k = np.round(np.linspace(self.num_timesteps, 0, self._steps(steps) + 1)).astype(np.int64)
        else:
            k = np.append(self.timesteps(steps, spacing, steps_offset) + 1, 0 if set_alpha_to_one else 1)
        return alpha_bar_grid(self.alpha_bar[k], k.astype(np.float64), self.name)

    def ddim_grid(self, steps: int, spacing: str = "leading", steps_offset: int = 0,
                  set_alpha_to_one: bool = True) -> Grid:
        """diffusers' DDIM: the points are :meth:`timesteps`, but each step lands at ``t - K//N`` (below 0: the final
        alpha), which for ``"linspace"`` is not the next timestep: the grid's ``land_sigma``, ``land_s``."""
        t = self.timesteps(steps, spacing, steps_offset)
        final = 0 if set_alpha_to_one else 1
        prev = np.maximum(t - self.num_timesteps // len(t) + 1, final)  # alpha_bar index of t - K//N (0: clean)
        k = np.append(t + 1, prev[-1])  # alpha_bar indices of the points, as in grid()
        grid = alpha_bar_grid(self.alpha_bar[k], k.astype(np.float64), self.name)
        land = self.alpha_bar[prev]
        return replace(grid, land_sigma=np.sqrt((1 - land) / land), land_s=np.sqrt(land))


def alpha_bar_grid(alpha_bar, t, schedule: str, eta=None) -> Grid:
    """A discrete VP grid from ``alpha_bar`` at its points: ``s = sqrt(alpha_bar)``, ``sigma = sqrt((1 - alpha_bar)/alpha_bar)``."""
    alpha_bar = np.asarray(alpha_bar, dtype=np.float64)
    return Grid(t=np.asarray(t, dtype=np.float64), sigma=np.sqrt((1 - alpha_bar) / alpha_bar), s=np.sqrt(alpha_bar),
                sigma_dot=None, s_dot=None, prior_std=1.0, schedule=schedule, eta=eta)


def sigma_grid(sigmas, *, variance_preserving: bool = False, prior_std: float | None = None, eta=None) -> Grid:
    """A user-given decreasing sigma array (k-diffusion's ``sigmas``, usually ending in 0) as a grid.

    ``s = 1`` (VE; prior std ``sigma_0``) or, with ``variance_preserving``, ``s = 1/sqrt(1 + sigma^2)`` (prior std 1).
    """
    sigma = np.asarray(sigmas, dtype=np.float64)
    if sigma.ndim != 1 or len(sigma) < 2 or not np.all(np.isfinite(sigma)):
        raise ValueError(f"sigmas must be a finite 1-D array of at least 2 noise levels, got shape {sigma.shape}")
    if np.any(np.diff(sigma) >= 0) or sigma[-1] < 0:
        raise ValueError("sigmas must be strictly decreasing and >= 0 (k-diffusion style, final 0 allowed)")
    s = 1 / np.sqrt(1 + sigma**2) if variance_preserving else np.ones_like(sigma)
    std = (1.0 if variance_preserving else float(sigma[0])) if prior_std is None else positive(prior_std, "prior_std")
    return Grid(t=sigma.copy(), sigma=sigma, s=s, sigma_dot=None, s_dot=None, prior_std=std,
                schedule="sigmas", eta=eta)


SCHEDULES = {"ve": VESchedule, "vp": VPSchedule, "ddpm": DDPMSchedule}


def churned(grid: Grid, S_churn: float, S_tmin: float = 0.0, S_tmax: float = float("inf"), S_noise: float = 1.0) -> Grid:
    """EDM's Algorithm 2 churn on ``grid``: ``gamma_i = min(S_churn / N, sqrt 2 - 1)`` where
    ``S_tmin <= sigma_i <= S_tmax`` (else 0), ``sigma_hat_i = (1 + gamma_i) sigma_i`` (Karras et al. 2022)."""
    S_churn = float(S_churn)
    if not (np.isfinite(S_churn) and S_churn >= 0) or not 0 <= S_tmin <= S_tmax or not S_noise >= 0:
        raise ValueError(f"need S_churn >= 0, 0 <= S_tmin <= S_tmax and S_noise >= 0, got {S_churn}, {S_tmin}, "
                         f"{S_tmax}, {S_noise}")
    sigma = grid.sigma[:-1]
    gamma = np.where((sigma >= S_tmin) & (sigma <= S_tmax), min(S_churn / grid.steps, np.sqrt(2) - 1), 0.0)
    return replace(grid, sigma_hat=(1 + gamma) * sigma, s_noise=S_noise)

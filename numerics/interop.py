"""A real client: diffusers schedulers as the project's (sampler, grid), and its denoisers as diffusers models.

``scheduler_spec(scheduler, steps)`` reads a scheduler's own arrays after ``set_timesteps`` and
returns the project's sampler name and :class:`~numerics.schedules.Grid` whose exact law is what
that scheduler's loop generates; ``model_output`` turns any ``D(y, sigma)`` into the
``model_output`` the scheduler expects (``epsilon``, ``sample`` or ``v_prediction``); ``run_scheduler``
runs the scheduler's own loop. diffusers is an optional extra (``pip install -e ".[interop]"``):
nothing else in the project imports this module.

diffusers computes in float32 (``betas``, ``alphas_cumprod``, ``sigmas`` and an upcast of the
sample to float32 inside ``step``); :func:`float64` runs a scheduler's own module with its
``float32`` read as ``float64``, so that its loop can be compared with the exact law to round-off.
"""
from __future__ import annotations

import contextlib
import importlib
import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from numerics.noise import PhiloxNoise, draw_gaussian, randn_like
from numerics.registry import CHURN_PREDICTIONS
from numerics.schedules import Grid, alpha_bar_grid, churned, sigma_grid
from numerics.validation import choice, positive_int

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
SIGMA_STATE = ("EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler")
"""Schedulers whose state is the unscaled ``y = x/s`` (``init_noise_sigma > 1``); the others carry ``x``."""


@dataclass(frozen=True)
class SchedulerSpec:
    """What a scheduler does, in the project's terms: ``sampler`` on ``grid``; its state is ``state_scale x``."""

    sampler: str
    grid: Grid
    state_scale: float
    sigma_of: dict  # the scheduler's timestep -> the noise level sigma the model is asked about
    step_keywords: dict = field(default_factory=dict)  # what its loop passes to step() (Euler's churn)


class _Float64Namespace:
    """``torch`` or ``numpy`` as one module sees it, with ``float32`` meaning ``float64``."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return self._module.float64 if name == "float32" else getattr(self._module, name)


@contextlib.contextmanager
def float64(scheduler_class, noise=None):
    """Run ``scheduler_class``'s module in float64; with ``noise(shape)`` its ``randn_tensor`` draws from it."""
    module = importlib.import_module(scheduler_class.__module__)
    saved = {name: getattr(module, name) for name in ("torch", "np", "randn_tensor") if hasattr(module, name)}
    module.torch, module.np = _Float64Namespace(torch), _Float64Namespace(np)
    if noise is not None and "randn_tensor" in saved:
        module.randn_tensor = lambda shape, **kwargs: noise(shape)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def _config(scheduler, key, default=None):
    return scheduler.config.get(key, default)


def _refuse_nonlinear(scheduler) -> None:
    """Clipping and thresholding make the step nonlinear: the law is no longer Gaussian."""
    name = type(scheduler).__name__
    for key in ("clip_sample", "thresholding"):
        if _config(scheduler, key, False):
            raise ValueError(f"{name} with {key}=True is not affine (it clips x0); set {key}=False")
    prediction = _config(scheduler, "prediction_type", "epsilon")
    choice(prediction, "prediction_type", PREDICTION_TYPES)


def _discrete_spec(scheduler, eta: float) -> SchedulerSpec:
    """DDIM / DDPM: a step from timestep ``t`` to its ``prev``; ``alpha_bar = 1`` (or DDIM's final alpha) below 0."""
    name, alphas = type(scheduler).__name__, scheduler.alphas_cumprod.double().numpy()
    t = scheduler.timesteps.numpy().astype(np.int64)
    if name == "DDIMScheduler":  # DDIM steps by K // N whatever the spacing
        prev = t - _config(scheduler, "num_train_timesteps") // scheduler.num_inference_steps
        final = float(scheduler.final_alpha_cumprod)
    else:                          # DDPM steps to the next timestep it visits
        prev, final = np.append(t[1:], -1), 1.0
    landing = np.array([final if k < 0 else alphas[k] for k in prev])  # alpha_bar where each step lands
    if name == "DDIMScheduler":
        sampler, noise = ("ddim", None) if eta == 0 else ("ancestral", eta)
    else:
        variance = choice(_config(scheduler, "variance_type"), "variance_type", ("fixed_small", "fixed_large"))
        sampler, noise = ("ddpm", None) if variance == "fixed_small" else ("ddpm_large", (t > 0).astype(float))
    grid = alpha_bar_grid(np.append(alphas[t], landing[-1]), np.append(t, prev[-1]), name, eta=noise)
    if np.any(prev[:-1] != t[1:]):  # DDIM lands at t - K//N, off the next timestep (e.g. "linspace")
        grid = replace(grid, land_sigma=np.sqrt((1 - landing) / landing), land_s=np.sqrt(landing))
    return SchedulerSpec(sampler, grid, 1.0, {float(k): float(v) for k, v in zip(t, grid.sigma)})


SIGMA_SAMPLERS = {"EulerDiscreteScheduler": "euler", "EulerAncestralDiscreteScheduler": "ddpm",
                  "HeunDiscreteScheduler": "heun", "DPMSolverMultistepScheduler": "dpmpp_2m"}


def _check_dpm(scheduler) -> None:
    wanted = {"algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint", "final_sigmas_type": "zero"}
    for key, value in wanted.items():
        if _config(scheduler, key, value) != value:
            raise ValueError(f"DPMSolverMultistepScheduler: only {key}={value!r} is supported, got {_config(scheduler, key)!r}")


CHURN_SCHEDULER = "EulerDiscreteScheduler"  # the scheduler whose step() takes the churn keywords
CHURN_KEYS = ("s_churn", "s_tmin", "s_tmax", "s_noise")


def _churn(name: str, churn: dict | None) -> dict | None:
    """``EulerDiscreteScheduler.step``'s ``s_churn, s_tmin, s_tmax, s_noise`` (None or s_churn = 0: no churn)."""
    if not churn or not churn.get("s_churn"):
        return None
    if name != CHURN_SCHEDULER:
        raise ValueError(f"s_churn is {CHURN_SCHEDULER}.step's; {name} has none")
    unknown = set(churn) - set(CHURN_KEYS)
    if unknown:
        raise ValueError(f"churn keywords are {CHURN_KEYS}, got {sorted(unknown)}")
    return {"s_tmin": 0.0, "s_tmax": float("inf"), "s_noise": 1.0, **churn}


def _sigma_spec(scheduler, churn: dict | None = None) -> SchedulerSpec:
    """Euler, Euler ancestral, Heun, DPM-Solver++(2M): the scheduler's own ``sigmas`` (Heun's de-duplicated);
    Euler with ``s_churn > 0``: the churn levels on that grid and the sampler of its ``prediction_type``."""
    name = type(scheduler).__name__
    if name == "DPMSolverMultistepScheduler":
        _check_dpm(scheduler)
    sigmas, t = scheduler.sigmas.double().numpy(), scheduler.timesteps.double().numpy()
    sigma_of = {float(k): float(v) for k, v in zip(t, sigmas)}
    if name == "HeunDiscreteScheduler":  # [s0, s1, s1, ..., s_{N-1}, s_{N-1}, 0]
        sigmas = np.append(sigmas[0:-1:2], sigmas[-1])
    state_scale = math.sqrt(1 + sigmas[0] ** 2) if name in SIGMA_STATE else 1.0  # y_0 = x_0 / s_0
    prior_std = float(scheduler.init_noise_sigma) / state_scale
    grid, sampler = sigma_grid(sigmas, variance_preserving=True, prior_std=prior_std), SIGMA_SAMPLERS[name]
    if churn is not None:  # gamma_i = min(s_churn / N, sqrt 2 - 1) where s_tmin <= sigma_i <= s_tmax, as in churned
        grid = churned(grid, churn["s_churn"], churn["s_tmin"], churn["s_tmax"], churn["s_noise"])
        sampler = CHURN_PREDICTIONS[_config(scheduler, "prediction_type", "epsilon")]
    return SchedulerSpec(sampler, replace(grid, schedule=name), state_scale, sigma_of, churn or {})


def scheduler_spec(scheduler, steps: int, eta: float = 0.0, churn: dict | None = None) -> SchedulerSpec:
    """Call ``scheduler.set_timesteps(steps)`` and return the project's sampler and grid for its loop.

    ``eta`` is DDIM's ``step(eta=...)`` (stochastic DDIM is the ``ancestral`` sampler); ``churn`` holds
    ``EulerDiscreteScheduler.step``'s ``s_churn, s_tmin, s_tmax, s_noise``.
    """
    name = type(scheduler).__name__
    choice(name, "scheduler", SCHEDULERS)
    churn = _churn(name, churn)
    _refuse_nonlinear(scheduler)
    for key, value in vars(scheduler).items():  # alphas_cumprod etc.: float64 scalars in every step
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            setattr(scheduler, key, value.double())
    if not 0 <= eta <= 1 or (eta != 0 and name != "DDIMScheduler"):
        raise ValueError(f"eta must be in [0, 1] and is DDIM's only, got eta={eta!r} for {name}")
    scheduler.set_timesteps(positive_int(steps, "steps"))
    return _discrete_spec(scheduler, eta) if name in ("DDIMScheduler", "DDPMScheduler") else _sigma_spec(scheduler, churn)


SCHEDULERS = ("DDIMScheduler", "DDPMScheduler", *SIGMA_SAMPLERS)


def make_scheduler(name: str, **config):
    """``diffusers.<name>(**config)`` built in float64 (its betas and ``alphas_cumprod`` too)."""
    import diffusers

    scheduler_class = getattr(diffusers, choice(name, "scheduler", SCHEDULERS))
    try:
        with float64(scheduler_class):
            return scheduler_class(**config)
    except TypeError as error:  # an unknown config key
        raise ValueError(f"{name} config: {error}") from None


def model_output(denoiser, sigma_of: dict, prediction_type: str = "epsilon"):
    """``model(x, t)``: what a diffusers model outputs at timestep ``t`` for the VP-scaled input ``x``.

    With ``sigma = sigma_of[t]``, ``s = 1/sqrt(1 + sigma^2)`` and ``D = denoiser(x/s, sigma)``:
    epsilon ``(x - s D)/(s sigma)``, sample ``D``, v_prediction ``s eps - s sigma D`` (Salimans & Ho 2022).
    """
    choice(prediction_type, "prediction_type", PREDICTION_TYPES)

    def model(x, t):
        sigma = sigma_of[float(t)]
        s = 1.0 / math.sqrt(1.0 + sigma**2)
        denoised = denoiser(x / s, sigma)
        if prediction_type == "sample":
            return denoised
        eps = (x - s * denoised) / (s * sigma)
        return eps if prediction_type == "epsilon" else s * eps - s * sigma * denoised

    return model


def run_scheduler(scheduler, denoiser, x, steps: int, *, eta: float = 0.0, churn: dict | None = None,
                  noise_sampler=None, generator=None):
    """The scheduler's own loop from ``x`` (the project's state at ``t_0``), in float64; returns ``x_N``.

    ``noise_sampler(i, x)`` gives step ``i``'s fresh noise (default: from ``generator``); ``churn``: Euler's
    ``step(s_churn=...)`` keywords. The model runs before ``step``, as in diffusers' pipelines.
    """
    with float64(type(scheduler)):
        spec = scheduler_spec(scheduler, steps, eta, churn)
    model = model_output(denoiser, spec.sigma_of, _config(scheduler, "prediction_type", "epsilon"))
    sample, step = x * spec.state_scale, [0]
    draw = noise_sampler or (lambda i, state: randn_like(state, generator))
    with float64(type(scheduler), noise=lambda shape: draw(step[0], sample)):
        for t in scheduler.timesteps:
            extra = {"eta": eta, "variance_noise": draw(step[0], sample)} if eta else dict(spec.step_keywords)
            output = model(scheduler.scale_model_input(sample, t), t)
            sample = scheduler.step(output, t, sample, **extra).prev_sample
            finished = getattr(scheduler, "state_in_first_order", True)  # Heun: two calls make one step
            step[0] += 1 if finished else 0
    return sample


def sample_scheduler(scheduler, denoiser, steps: int, start_mean, start_cov, n: int, *, seed: int,
                     eta: float = 0.0, churn: dict | None = None, batch_size: int = 4096) -> torch.Tensor:
    """``n`` outputs of the scheduler's loop from ``x_0 ~ N(start_mean, start_cov)``, per-sample seeded."""
    out, batch_size = [], positive_int(batch_size, "batch_size")
    for first in range(0, positive_int(n, "n"), batch_size):
        generator = PhiloxNoise(seed, first, min(batch_size, n - first))
        x = draw_gaussian(np.asarray(start_mean), np.asarray(start_cov), generator.count, generator)
        out.append(run_scheduler(scheduler, denoiser, x, steps, eta=eta, churn=churn, generator=generator))
    return torch.cat(out).to(torch.float64)


def probe(run, d: int, steps: int, stochastic: bool):
    """Read ``x_N = A x_0 + c + sum_i M_i z_i`` off ``run(x, noise_sampler)`` with noise off, then one kick per step.

    Returns ``(A, c, N)`` with ``N = sum_i M_i M_i^T``, float64 numpy.
    """
    basis = torch.eye(d, dtype=torch.float64)
    silent = lambda i, x: torch.zeros_like(x)  # noqa: E731
    c = run(torch.zeros(1, d, dtype=torch.float64), silent)
    A = (run(basis.clone(), silent) - c).T
    N = torch.zeros(d, d, dtype=torch.float64)
    for step in range(steps if stochastic else 0):
        kick = lambda i, x, step=step: basis if i == step else torch.zeros_like(x)  # noqa: E731
        M = (run(torch.zeros(d, d, dtype=torch.float64), kick) - c).T
        N += M @ M.T
    return A.numpy(), c[0].numpy(), N.numpy()

"""Every sampler convention's exact law against an independent implementation of the published rule.

Each rule below is written from its paper (notation of the paper or of diffusers), not from the
project's step maps: it is applied to *linear forms*, arrays whose last axis holds the coefficients of
(1, x_0, z_1, ..., z_N), with the optimal denoiser of a Gaussian target written from Bayes' rule. The
output's mean and variance per eigen-direction then follow exactly, and are compared with the
project's law (Result 3: ``theory.linear_law.spectral_law`` / ``theory.multistep``) to 1e-12.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.schedules import DDPMSchedule, VESchedule, VPSchedule, sigma_grid
from theory.finite_step import Diagonal, GaussianLaw
from theory.linear_law import prior_start, spectral_law
from theory.multistep import multistep_law

EIGENVALUES = np.array([1e-3, 0.05, 1.0, 4.0])
MEAN = np.array([0.5, -1.0, 0.0, 2.0])
EXACT = 1e-12  # float64 round-off over <= 50 affine steps, relative to the largest variance


# ---------------------------------------------------------------- linear forms
class Forms:
    """Linear forms in (1, x_0, z_1..z_N), one row per eigen-direction."""

    def __init__(self, steps):
        self.width = 2 + steps

    def unit(self, k):
        e = np.zeros((len(EIGENVALUES), self.width))
        e[:, k] = 1.0
        return e

    def start(self):
        return self.unit(1)

    def noise(self, i):
        return self.unit(2 + i)

    def law(self, x, start_var):
        """Mean and variance of the form with ``x_0 ~ N(0, start_var)`` (the standard prior)."""
        return x[:, 0], x[:, 1] ** 2 * start_var + np.sum(x[:, 2:] ** 2, axis=1)


def posterior_mean_vp(forms, x, a):
    """``E[x0 | x_t]`` for ``x_t = sqrt(a) x0 + sqrt(1 - a) n``, ``x0 ~ N(mu, lambda)`` (Bayes' rule)."""
    gain = EIGENVALUES * math.sqrt(a) / (a * EIGENVALUES + 1 - a)
    mu = MEAN[:, None] * forms.unit(0)
    return mu + gain[:, None] * (x - math.sqrt(a) * mu)


def posterior_mean_ve(forms, y, sigma):
    """``E[x0 | x0 + sigma n]``."""
    gain = EIGENVALUES / (EIGENVALUES + sigma**2)
    mu = MEAN[:, None] * forms.unit(0)
    return mu + gain[:, None] * (y - mu)


def compare(law, mean, var):
    scale = var.max()
    assert np.abs(law.cov - var).max() <= EXACT * scale
    assert np.abs(law.mean - mean).max() <= EXACT * (math.sqrt(scale) + np.abs(mean).max())


def project_law(sampler, grid):
    return spectral_law(sampler, grid, EIGENVALUES, MEAN, prior_start)


# ---------------------------------------------------------------- DDIM / DDPM in diffusers' conventions
def alphas_cumprod(beta_schedule, K=1000, beta_start=1e-4, beta_end=0.02):
    """Ho et al. (2020) linear, latent-diffusion scaled_linear, Nichol & Dhariwal (2021) cosine (capped at 0.999)."""
    if beta_schedule == "linear":
        betas = np.linspace(beta_start, beta_end, K)
    elif beta_schedule == "scaled_linear":
        betas = np.linspace(math.sqrt(beta_start), math.sqrt(beta_end), K) ** 2
    else:
        f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        betas = np.array([min(1 - f((i + 1) / K) / f(i / K), 0.999) for i in range(K)])
    return np.cumprod(1 - betas)


def inference_timesteps(N, spacing, offset, K=1000):
    """diffusers' ``set_timesteps``: Lin et al. (2024), Table 2."""
    if spacing == "leading":
        return [j * (K // N) + offset for j in reversed(range(N))]
    if spacing == "trailing":
        return [int(round(K - j * K / N)) - 1 for j in range(N)]
    return [int(round(v)) for v in reversed(np.linspace(0, K - 1, N))]


def ddim_rule(forms, ac, timesteps, eta, final_alpha, K=1000):
    """Song et al. (2021a) eq. 12 with sigma_t(eta) of eq. 16; the step goes from t to t - K // N."""
    x = forms.start()
    for i, t in enumerate(timesteps):
        prev = t - K // len(timesteps)
        a_t, a_prev = ac[t], (ac[prev] if prev >= 0 else final_alpha)
        x0 = posterior_mean_vp(forms, x, a_t)
        eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
        sigma_t = eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev - sigma_t**2) * eps + sigma_t * forms.noise(i)
    return x


def ddpm_rule(forms, ac, timesteps, variance_type):
    """Ho et al. (2020) eq. 7 posterior mean; variance beta-tilde (fixed_small) or beta (fixed_large), none at t = 0."""
    x = forms.start()
    for i, t in enumerate(timesteps):
        a_t = ac[t]
        a_prev = ac[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        alpha, beta = a_t / a_prev, 1 - a_t / a_prev
        x0 = posterior_mean_vp(forms, x, a_t)
        x = math.sqrt(a_prev) * beta / (1 - a_t) * x0 + math.sqrt(alpha) * (1 - a_prev) / (1 - a_t) * x
        variance = (1 - a_prev) / (1 - a_t) * beta if variance_type == "fixed_small" else beta
        x = x + (math.sqrt(variance) * forms.noise(i) if t > 0 else 0.0)
    return x


DDIM_CASES = [("linear", "leading", 0, True, 0.0, 50), ("linear", "leading", 1, False, 0.0, 50),
              ("scaled_linear", "trailing", 0, True, 0.3, 20), ("squaredcos_cap_v2", "leading", 1, True, 1.0, 10),
              ("linear", "trailing", 0, False, 0.7, 25), ("linear", "linspace", 0, True, 0.0, 30),
              ("scaled_linear", "linspace", 0, False, 0.5, 12), ("linear", "trailing", 0, True, 0.0, 7)]


@pytest.mark.parametrize("beta_schedule, spacing, offset, set_alpha_to_one, eta, N", DDIM_CASES)
def test_ddim_law_equals_the_published_rule(beta_schedule, spacing, offset, set_alpha_to_one, eta, N):
    ac = alphas_cumprod(beta_schedule)
    forms = Forms(N)
    mean, var = forms.law(ddim_rule(forms, ac, inference_timesteps(N, spacing, offset), eta,
                                    1.0 if set_alpha_to_one else ac[0]), 1.0)
    grid = DDPMSchedule(beta_schedule=beta_schedule).ddim_grid(N, spacing, offset, set_alpha_to_one)
    compare(project_law("ddim" if eta == 0 else "ancestral", replace(grid, eta=eta)), mean, var)


def test_a_grid_landing_off_its_points_is_refused_by_other_samplers():
    grid = DDPMSchedule().ddim_grid(30, "linspace")
    with pytest.raises(ValueError, match="land off its points"):
        project_law("ddpm", grid)


@pytest.mark.parametrize("variance_type, spacing, offset, N", [("fixed_small", "leading", 0, 50),
                         ("fixed_large", "leading", 0, 50), ("fixed_large", "trailing", 0, 20),
                         ("fixed_small", "linspace", 0, 30), ("fixed_large", "leading", 1, 10)])
def test_ddpm_law_equals_the_published_rule(variance_type, spacing, offset, N):
    ac = alphas_cumprod("linear")
    timesteps = inference_timesteps(N, spacing, offset)
    forms = Forms(N)
    mean, var = forms.law(ddpm_rule(forms, ac, timesteps, variance_type), 1.0)
    grid = DDPMSchedule().grid(N, spacing, offset, set_alpha_to_one=True)
    if variance_type == "fixed_small":
        law = project_law("ddpm", grid)
    else:
        law = project_law("ddpm_large", replace(grid, eta=(np.array(timesteps) > 0).astype(float)))
    # fixed_small at a last t > 0 clamps a zero variance to 1e-20 in diffusers; the rule and the project both use 0
    compare(law, mean, var)


def test_the_default_ddim_grid_is_not_the_old_one():
    """diffusers' default (leading, 50 steps) visits t = 980, ..., 0: the project's old grid is another sampler."""
    np.testing.assert_array_equal(inference_timesteps(50, "leading", 0), DDPMSchedule().timesteps(50, "leading"))
    old, new = DDPMSchedule().grid(50), DDPMSchedule().grid(50, "leading")
    ratio = project_law("ddim", new).cov / project_law("ddim", old).cov
    assert np.abs(ratio - 1).max() > 0.05  # measured: variance x2.49 along lambda = 1e-3, x1.0002 along 4


@settings(max_examples=10)
@given(N=st.sampled_from([1, 2, 5, 8, 10, 20, 40, 50, 100]), offset=st.integers(0, 1),
       spacing=st.sampled_from(["leading", "trailing", "linspace"]))
def test_timesteps_follow_the_spacing_definitions(N, offset, spacing):
    offset = offset if spacing == "leading" else 0
    np.testing.assert_array_equal(DDPMSchedule().timesteps(N, spacing, offset), inference_timesteps(N, spacing, offset))


@pytest.mark.parametrize("beta_schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_beta_schedules(beta_schedule):
    np.testing.assert_allclose(DDPMSchedule(beta_schedule=beta_schedule).alpha_bar[1:], alphas_cumprod(beta_schedule),
                               rtol=1e-13)  # float64 cumprod of the same betas; cosine's cos() differs by ulps


# ---------------------------------------------------------------- k-diffusion: Euler ancestral on user sigmas
def euler_ancestral_rule(forms, sigmas, eta, s_noise=1.0):
    """k-diffusion ``sample_euler_ancestral``: ``get_ancestral_step`` then an Euler step to sigma_down."""
    x = forms.start()
    for i in range(len(sigmas) - 1):
        sigma_from, sigma_to = sigmas[i], sigmas[i + 1]
        denoised = posterior_mean_ve(forms, x, sigma_from)
        sigma_up = min(sigma_to, eta * math.sqrt(sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2))
        sigma_down = math.sqrt(sigma_to**2 - sigma_up**2)
        x = x + (x - denoised) / sigma_from * (sigma_down - sigma_from) + s_noise * sigma_up * forms.noise(i)
    return x


@pytest.mark.parametrize("eta, s_noise", [(0.0, 1.0), (0.5, 1.0), (1.0, 1.0), (1.0, 1.007), (0.5, 0.9)])
def test_euler_ancestral_on_user_sigmas_equals_k_diffusion(eta, s_noise):
    sigmas = np.array([80.0, 20.0, 7.0, 2.0, 0.7, 0.2, 0.05, 0.0])
    forms = Forms(len(sigmas) - 1)
    mean, var = forms.law(euler_ancestral_rule(forms, sigmas, eta, s_noise), sigmas[0] ** 2)
    compare(project_law("ancestral", replace(sigma_grid(sigmas, eta=eta), s_noise=s_noise)), mean, var)


# ---------------------------------------------------------------- VP-SDE stepped in t (Song et al. 2021b)
BETA_MIN, BETA_MAX = 0.1, 20.0


def vp_beta(t):
    return BETA_MIN + t * (BETA_MAX - BETA_MIN)


def vp_score(forms, x, t):
    """Exact score of ``x_t = alpha x0 + sqrt(1 - alpha^2) n``, ``alpha = exp(-B(t)/2)``, target ``N(mu, lambda)``."""
    alpha = math.exp(-0.5 * (BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t**2))
    variance = alpha**2 * EIGENVALUES + 1 - alpha**2
    return -(x - alpha * MEAN[:, None] * forms.unit(0)) / variance[:, None]


def pf_velocity(forms, x, t):
    """Probability-flow ODE of the VP SDE: ``dx/dt = -beta(t)/2 (x + score)``."""
    return -0.5 * vp_beta(t) * (x + vp_score(forms, x, t))


def vp_rule(name, forms, ts):
    x = forms.start()
    for i in range(len(ts) - 1):
        t, h = ts[i], ts[i] - ts[i + 1]
        if name == "euler_t":
            x = x - h * pf_velocity(forms, x, t)
        elif name == "heun_t":
            predictor = x - h * pf_velocity(forms, x, t)
            x = x - 0.5 * h * (pf_velocity(forms, x, t) + pf_velocity(forms, predictor, ts[i + 1]))
        elif name == "rk4_t":  # classical Runge-Kutta 4 with the velocity at t, t - h/2 (twice), t - h
            k1 = pf_velocity(forms, x, t)
            k2 = pf_velocity(forms, x - 0.5 * h * k1, t - 0.5 * h)
            k3 = pf_velocity(forms, x - 0.5 * h * k2, t - 0.5 * h)
            k4 = pf_velocity(forms, x - h * k3, t - h)
            x = x - h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        elif name == "euler_maruyama":  # reverse SDE dx = [-beta/2 x - beta score] dt + sqrt(beta) dw
            x = x + h * vp_beta(t) * (0.5 * x + vp_score(forms, x, t)) + math.sqrt(vp_beta(t) * h) * forms.noise(i)
        else:  # ddpm_t: score_sde's ancestral sampling, beta_i = beta(t_i) dt
            beta = vp_beta(t) * h
            x = (x + beta * vp_score(forms, x, t)) / math.sqrt(1 - beta) + math.sqrt(beta) * forms.noise(i)
    return x


@pytest.mark.parametrize("name", ["euler_t", "heun_t", "rk4_t", "euler_maruyama", "ddpm_t"])
@pytest.mark.parametrize("N", [50, 200])
def test_vp_conventions_in_t_equal_the_published_rules(name, N):
    grid = VPSchedule(BETA_MIN, BETA_MAX, 1.0, 1e-3).grid(N)
    forms = Forms(N)
    mean, var = forms.law(vp_rule(name, forms, grid.t), 1.0)
    compare(project_law(name, grid), mean, var)


# ---------------------------------------------------------------- DPM-Solver++(2M) (Lu et al. 2022, Alg. 2)
def dpmpp_2m_rule(forms, sigmas):
    """Alg. 2 in VP notation ``alpha = 1/sqrt(1 + sigma^2)``, ``sigma_t = alpha sigma``, ``lambda = log(alpha/sigma_t)``."""
    alpha = 1 / np.sqrt(1 + sigmas**2)
    with np.errstate(divide="ignore"):
        lam = -np.log(sigmas)
    x, previous = forms.start(), None
    for i in range(len(sigmas) - 1):
        x0 = posterior_mean_vp(forms, x, alpha[i] ** 2)
        h = lam[i + 1] - lam[i]
        if previous is None or sigmas[i + 1] == 0:
            D = x0
        else:
            r = (lam[i] - lam[i - 1]) / h
            D = (1 + 1 / (2 * r)) * x0 - previous / (2 * r)
        ratio = 0.0 if sigmas[i + 1] == 0 else (alpha[i + 1] * sigmas[i + 1]) / (alpha[i] * sigmas[i])
        x = ratio * x - alpha[i + 1] * (math.exp(-h) - 1) * D
        previous = x0
    return x


@pytest.mark.parametrize("steps", [1, 2, 10, 30])
def test_dpmpp_2m_law_equals_the_published_rule(steps):
    sigmas = VESchedule(0.01, 80.0).grid(steps).sigma
    grid = sigma_grid(sigmas, variance_preserving=True)
    forms = Forms(steps)
    mean, var = forms.law(dpmpp_2m_rule(forms, sigmas), 1.0)
    law = multistep_law("dpmpp_2m", grid, lambda sigma: (np.diag(EIGENVALUES / (EIGENVALUES + sigma**2)),
                                                        MEAN * sigma**2 / (EIGENVALUES + sigma**2)),
                        GaussianLaw(np.zeros(4), np.eye(4)))
    compare(GaussianLaw(law.mean, np.diag(law.cov)), mean, var)
    diagonal = multistep_law("dpmpp_2m", grid, lambda sigma: (EIGENVALUES / (EIGENVALUES + sigma**2),
                                                              MEAN * sigma**2 / (EIGENVALUES + sigma**2)),
                             GaussianLaw(np.zeros(4), np.ones(4)), Diagonal)
    compare(diagonal, mean, var)

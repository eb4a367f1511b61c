"""diffusers' ``EulerDiscreteScheduler`` with ``s_churn > 0``: the exact law against the rule, written here from
diffusers' ``step`` and its pipelines (the real scheduler: ``tests/test_euler_churn_diffusers.py``).

The rule, on diffusers' state ``y`` (``x0 + sigma n``): the pipeline calls the model on ``y / sqrt(1 + sigma_i^2)``
at the timestep of ``sigma_i`` *before* ``step``; ``step`` then draws ``gamma_i = min(s_churn / N, sqrt 2 - 1)``
where ``s_tmin <= sigma_i <= s_tmax``, ``sigma_hat = (1 + gamma_i) sigma_i``, ``y_hat = y + s_noise sqrt(sigma_hat^2
- sigma_i^2) eps``, reads the model output as ``x0`` (epsilon: ``y_hat - sigma_hat out``; sample: ``out``; v:
``out * (-sigma / sqrt(sigma^2 + 1)) + y_hat / (sigma^2 + 1)``) and steps ``y' = y_hat + (sigma_{i+1} - sigma_hat)
(y_hat - x0) / sigma_hat``. So, unlike without churn, the prediction type changes the law.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from numerics.registry import CHURN_PREDICTIONS
from numerics.schedules import VESchedule, churned, sigma_grid
from theory.finite_step import check_sampler_grid
from theory.linear_law import prior_start, wiener_law

SPECTRUM, MEAN = np.array([4.0, 0.3, 1e-3]), np.array([0.7, -0.2, 0.05])


def model_output(prediction, y, sigma, D):
    """What a diffusers model trained for ``prediction`` outputs for the Bayes denoiser ``D`` at ``(y, sigma)``."""
    alpha = 1 / math.sqrt(1 + sigma**2)                 # the model sees alpha y
    eps = (y - D) / sigma
    return {"epsilon": eps, "sample": D, "v_prediction": alpha * eps - alpha * sigma * D}[prediction]


def x0_from(prediction, out, y_hat, sigma, sigma_hat):
    """diffusers' ``pred_original_sample`` (EulerDiscreteScheduler.step, step 1)."""
    if prediction == "epsilon":
        return y_hat - sigma_hat * out
    if prediction == "sample":
        return out
    return out * (-sigma / (sigma**2 + 1) ** 0.5) + y_hat / (sigma**2 + 1)


def rule_law(prediction, lam, mu, sigmas, s_churn, s_tmin, s_tmax, s_noise):
    """Mean and variance of ``y_N`` along one eigen-direction: affine in ``(y, eps)``, read off at unit inputs."""
    N = len(sigmas) - 1
    D = lambda y, sigma: mu + lam / (lam + sigma**2) * (y - mu)  # noqa: E731  the Wiener denoiser

    def step(y, eps, sigma, sigma_next):
        out = model_output(prediction, y, sigma, D(y, sigma))   # the model, before step
        gamma = min(s_churn / N, math.sqrt(2) - 1) if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat = sigma * (gamma + 1)
        y_hat = y + eps * s_noise * (sigma_hat**2 - sigma**2) ** 0.5
        x0 = x0_from(prediction, out, y_hat, sigma, sigma_hat)
        return y_hat + (y_hat - x0) / sigma_hat * (sigma_next - sigma_hat)

    m, v = 0.0, sigmas[0] ** 2
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        c = step(0.0, 0.0, sigma, sigma_next)
        a, q = step(1.0, 0.0, sigma, sigma_next) - c, step(0.0, 1.0, sigma, sigma_next) - c
        m, v = a * m + c, a * a * v + q * q
    return m, v


@pytest.mark.parametrize("prediction", sorted(CHURN_PREDICTIONS))
@pytest.mark.parametrize("s_churn, s_tmin, s_tmax, s_noise, steps", [
    (40.0, 0.05, 50.0, 1.003, 18), (5.0, 0.0, float("inf"), 1.0, 8), (0.0, 0.0, float("inf"), 1.0, 6),
])
def test_law_equals_the_rule(prediction, s_churn, s_tmin, s_tmax, s_noise, steps):
    grid = churned(VESchedule().grid(steps), s_churn, s_tmin, s_tmax, s_noise)
    law = wiener_law(CHURN_PREDICTIONS[prediction], grid, MEAN, np.diag(SPECTRUM), prior_start)
    for j, (lam, mu) in enumerate(zip(SPECTRUM, MEAN)):
        m, v = rule_law(prediction, lam, mu, grid.sigma, s_churn, s_tmin, s_tmax, s_noise)
        k = int(np.argmax(np.abs(law.basis[j])))  # the diagonal target's eigenbasis is a permutation
        assert law.mean[j] == pytest.approx(m, rel=1e-12, abs=1e-12)  # float64: the same arithmetic, other order
        assert law.cov[k] == pytest.approx(v, rel=1e-12)


def test_without_churn_every_prediction_type_is_euler():
    grid = VESchedule().grid(10)
    euler = wiener_law("euler", grid, MEAN, np.diag(SPECTRUM), prior_start)
    for sampler in CHURN_PREDICTIONS.values():
        law = wiener_law(sampler, churned(grid, 0.0), MEAN, np.diag(SPECTRUM), prior_start)
        np.testing.assert_allclose(law.cov, euler.cov, rtol=1e-12)  # gamma = 0: y_hat = y, every x0 is D


def test_with_churn_the_prediction_type_changes_the_law():
    """epsilon keeps the churn noise (its slope is the pre-churn eps); sample shrinks it by sigma'/sigma_hat."""
    grid = churned(VESchedule().grid(20), 40.0, 0.05, 50.0)
    variances = {p: np.sort(wiener_law(s, grid, MEAN, np.diag(SPECTRUM), prior_start).cov)
                 for p, s in CHURN_PREDICTIONS.items()}
    # measured, target 1e-3 / 0.3 / 4: epsilon 2.5e-3 / 0.49 / 6.17, v 4.6e-3 / 0.54 / 3.81, sample 6.1e-4 / 0.19 / 2.67
    assert np.all(variances["epsilon"] > 2 * variances["sample"])
    assert np.all(variances["v_prediction"] > 1.4 * variances["sample"])


def test_a_churned_grid_is_refused_by_samplers_without_churn():
    grid = churned(VESchedule().grid(8), 10.0)
    with pytest.raises(ValueError, match="churn levels"):
        check_sampler_grid("euler", grid)
    check_sampler_grid("euler_churn_epsilon", grid)  # accepted
    check_sampler_grid("euler_churn_sample", sigma_grid([80.0, 1.0, 0.0]))  # no churn: plain Euler


@pytest.mark.parametrize("sampler", ["euler", "heun", "ddim", "ancestral", "rk4_t"])
def test_every_registered_sampler_refuses_a_churn_it_would_ignore(sampler):
    """The registry's check wraps every torch sampler: a churned grid is refused before any step, not ignored."""
    import torch
    from numerics.samplers import SAMPLERS
    with pytest.raises(ValueError, match="churn levels"):
        SAMPLERS[sampler](lambda y, sigma: y, torch.zeros(2, 1, dtype=torch.float64), churned(VESchedule().grid(6), 10.0))

"""EDM Algorithm 2 (stochastic Heun with S_churn): the exact law against the published rule, written here.

The rule (Karras et al. 2022, Alg. 2, on ``y = x/s``): ``gamma_i = min(S_churn / N, sqrt 2 - 1)`` where
``S_tmin <= sigma_i <= S_tmax``, ``sigma_hat = (1 + gamma_i) sigma_i``, ``y_hat = y + S_noise sqrt(sigma_hat^2 -
sigma_i^2) eps``, then a Heun step from ``sigma_hat`` to ``sigma_{i+1}`` (Euler to 0). With the scalar Wiener
denoiser of ``N(mu, lambda)`` the deterministic part is affine, read off at ``y = 0, 1``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from numerics.schedules import VESchedule, churned
from theory.linear_law import prior_start, wiener_law


def rule_law(lam, mu, sigmas, S_churn, S_tmin, S_tmax, S_noise):
    """Mean and variance of ``y_N`` along one eigen-direction, from the rule itself."""
    N = len(sigmas) - 1
    D = lambda y, sigma: mu + lam / (lam + sigma**2) * (y - mu)  # noqa: E731  the Wiener denoiser

    def heun(y, sigma_hat, sigma_next):
        d = (y - D(y, sigma_hat)) / sigma_hat
        y_next = y + (sigma_next - sigma_hat) * d
        if sigma_next == 0:
            return y_next
        return y + (sigma_next - sigma_hat) * 0.5 * (d + (y_next - D(y_next, sigma_next)) / sigma_next)

    m, v = 0.0, sigmas[0] ** 2                        # VE prior N(0, sigma_max^2)
    for i in range(N):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        gamma = min(S_churn / N, math.sqrt(2) - 1) if S_tmin <= sigma <= S_tmax else 0.0
        sigma_hat = sigma * (1 + gamma)
        v += S_noise**2 * (sigma_hat**2 - sigma**2)   # the churn's fresh noise
        c = heun(0.0, sigma_hat, sigma_next)
        a = heun(1.0, sigma_hat, sigma_next) - c
        m, v = a * m + c, a * a * v
    return m, v


@pytest.mark.parametrize("S_churn, S_tmin, S_tmax, S_noise, steps", [
    (40.0, 0.05, 50.0, 1.003, 18), (10.0, 0.0, float("inf"), 1.0, 8), (80.0, 0.01, 1.0, 1.0, 32), (0.0, 0.0, 1.0, 1.0, 6),
])
def test_churn_law_equals_the_published_rule(S_churn, S_tmin, S_tmax, S_noise, steps):
    spectrum, mean = np.array([4.0, 0.3, 1e-3]), np.array([0.7, -0.2, 0.05])
    grid = churned(VESchedule().grid(steps), S_churn, S_tmin, S_tmax, S_noise)
    law = wiener_law("edm_churn", grid, mean, np.diag(spectrum), prior_start)
    for j, (lam, mu) in enumerate(zip(spectrum, mean)):
        m, v = rule_law(lam, mu, grid.sigma, S_churn, S_tmin, S_tmax, S_noise)
        k = int(np.argmax(np.abs(law.basis[j])))  # the diagonal target's eigenbasis is a permutation
        assert law.mean[j] == pytest.approx(m, rel=1e-12, abs=1e-12)
        assert law.cov[k] == pytest.approx(v, rel=1e-12)  # float64: the same arithmetic, other order


def test_no_churn_is_heun():
    grid = VESchedule().grid(10)
    a = wiener_law("edm_churn", churned(grid, 0.0), np.zeros(2), np.diag([1.0, 0.1]), prior_start)
    b = wiener_law("heun", grid, np.zeros(2), np.diag([1.0, 0.1]), prior_start)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-13)  # gamma = 0: the same step


def test_bad_churn_is_refused():
    with pytest.raises(ValueError, match="S_churn >= 0"):
        churned(VESchedule().grid(4), -1.0)

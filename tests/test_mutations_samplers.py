"""Mutation rows for the conventions' step maps: a planted error in each (theory side, by monkeypatch)
makes the ``verify.linear`` check that names it FAIL (exit 1); the same command without it passes.

Each row: (name, target: the step map in ``theory.steps.UPDATES`` / ``MULTISTEP_UPDATES``, the wrong
update, CLI argv, the check expected to fail).
"""
from __future__ import annotations

import pytest
import sympy as sp

import theory.finite_step
import theory.multistep
from theory import steps
from theory.steps import _D, _D_mid, _D_next, _pf_drift, _score
from theory.symbols import (G_prev, b_prev, eta, h, s, s_dot, s_dot_mid, s_dot_next, s_mid, s_next, s_noise, s_prev, sigma,
                            sigma_dot, sigma_dot_mid, sigma_dot_next, sigma_mid, sigma_next, sigma_prev, x, x_prev, z)
from verify.linear import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's __array__ under numpy 2, in diffusers
SMALL = ["--dim", "4", "--samples", "2000", "--seed", "3"]


def ancestral_with_eta_squared(to_zero):
    """eta scales the noise variance instead of its standard deviation."""
    y = x / s
    sigma_up = eta**2 * sigma_next * sp.sqrt(1 - sigma_next**2 / sigma**2)
    sigma_down = sp.sqrt(sigma_next**2 - sigma_up**2)
    return s_next * (_D(y) + sigma_down * (y - _D(y)) / sigma + s_noise * sigma_up * z)


def ddpm_large_with_small_variance(to_zero):
    """fixed_large's noise replaced by the posterior (fixed_small) variance."""
    y = x / s
    ratio = sigma_next**2 / sigma**2
    return s_next * (ratio * y + (1 - ratio) * _D(y)) + eta * s_next * sigma_next * sp.sqrt(1 - ratio) * z


def euler_t_with_sde_drift(to_zero):
    """The reverse SDE's drift (score term doubled) in the ODE step."""
    return x - h * ((s_dot / s) * x - 2 * s**2 * sigma_dot * sigma * _score())


def heun_t_with_stale_derivatives(to_zero):
    """The corrector evaluates s_dot, sigma_dot at t_i instead of t_{i+1}."""
    slope = _pf_drift(x, s, s_dot, sigma, sigma_dot, _D)
    x_pred = x - h * slope
    return x - h * (slope + _pf_drift(x_pred, s_next, s_dot, sigma_next, sigma_dot, _D_next)) / 2


def rk4_t_with_swapped_weights(to_zero):
    """RK4's weights 1, 2, 2, 1 read as 2, 1, 1, 2 (still consistent: sum 6; the order drops)."""
    k1 = _pf_drift(x, s, s_dot, sigma, sigma_dot, _D)
    k2 = _pf_drift(x - h / 2 * k1, s_mid, s_dot_mid, sigma_mid, sigma_dot_mid, _D_mid)
    k3 = _pf_drift(x - h / 2 * k2, s_mid, s_dot_mid, sigma_mid, sigma_dot_mid, _D_mid)
    k4 = _pf_drift(x - h * k3, s_next, s_dot_next, sigma_next, sigma_dot_next, _D_next)
    return x - h / 6 * (2 * k1 + k2 + k3 + 2 * k4)


def euler_churn_epsilon_read_at_sigma(to_zero):
    """diffusers' epsilon output read as x0 with sigma_i instead of sigma_hat (as if the model ran after the churn)."""
    return steps._diffusers_euler_churn(lambda y, y_hat: y_hat - sigma * (y_hat - _D(y_hat)) / sigma)


def ddpm_t_without_rescaling(to_zero):
    """score_sde's step without the 1/sqrt(1 - beta)."""
    beta = -2 * h * s_dot / s
    return x + beta * _score() + sp.sqrt(beta) * z


def dpmpp_2m_with_inverted_ratio(to_zero):
    """r = h_i / h_{i-1} instead of h_{i-1} / h_i."""
    r = sp.log(sigma / sigma_next) / sp.log(sigma_prev / sigma)
    y, y_prev = x / s, x_prev / s_prev
    d = (1 + 1 / (2 * r)) * _D(y) - (G_prev * y_prev + b_prev) / (2 * r)
    return s_next * (sigma_next / sigma * y + (1 - sigma_next / sigma) * d)


PROBE = "exact probe: covariance"
ROWS = [
    ("ancestral eta", "UPDATES", "ancestral", ancestral_with_eta_squared,
     ["--sampler", "ancestral", "--schedule", "ddpm", "--steps", "20", "--eta", "0.5"], PROBE),
    ("ddpm fixed_large variance", "UPDATES", "ddpm_large", ddpm_large_with_small_variance,
     ["--sampler", "ddpm_large", "--schedule", "ddpm", "--steps", "20"], PROBE),
    ("PF-ODE Euler in t drift", "UPDATES", "euler_t", euler_t_with_sde_drift,
     ["--sampler", "euler_t", "--schedule", "vp", "--steps", "50"], PROBE),
    ("PF-ODE Heun in t corrector", "UPDATES", "heun_t", heun_t_with_stale_derivatives,
     ["--sampler", "heun_t", "--schedule", "vp", "--steps", "20"], PROBE),
    ("PF-ODE RK4 in t weights", "UPDATES", "rk4_t", rk4_t_with_swapped_weights,
     ["--sampler", "rk4_t", "--schedule", "vp", "--steps", "20"], PROBE),
    ("diffusers Euler churn, model after the churn", "UPDATES", "euler_churn_epsilon", euler_churn_epsilon_read_at_sigma,
     ["--diffusers", "EulerDiscreteScheduler", "--s-churn", "10", "--steps", "15"], PROBE),
    ("score_sde DDPM in t rescaling", "UPDATES", "ddpm_t", ddpm_t_without_rescaling,
     ["--sampler", "ddpm_t", "--schedule", "vp", "--steps", "50"], PROBE),
    ("DPM-Solver++(2M) step ratio", "MULTISTEP_UPDATES", "dpmpp_2m", dpmpp_2m_with_inverted_ratio,
     ["--diffusers", "DPMSolverMultistepScheduler", "--steps", "20"], PROBE),
]


from mutations import clear_caches  # every functools cache in theory (step maps, compiled and fused steps)


@pytest.fixture
def planted(monkeypatch):
    def plant(table, name, update):
        clear_caches()
        monkeypatch.setitem(getattr(steps, table), name, update)
    yield plant
    clear_caches()  # the next test derives the true step maps again


@pytest.mark.parametrize("name, table, sampler, update, argv, check", ROWS, ids=[row[0] for row in ROWS])
def test_planted_error_fails_the_check_that_names_it(name, table, sampler, update, argv, check, planted, capsys):
    pytest.importorskip("diffusers") if "--diffusers" in argv else None
    planted(table, sampler, update)
    assert main(SMALL + argv) == 1
    assert any(line.startswith(check) and line.rstrip().endswith("FAIL") for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize("name, table, sampler, update, argv, check", ROWS, ids=[row[0] for row in ROWS])
def test_the_same_run_passes_without_the_error(name, table, sampler, update, argv, check, capsys):
    pytest.importorskip("diffusers") if "--diffusers" in argv else None
    assert main(SMALL + argv) == 0, capsys.readouterr().out

"""Result 18 (theory.step_stability): the explicit steps' amplification, exact on the linear test equation,
and its per-start prediction (verify.step_stability) on a 1-D restoring cubic whose flow never escapes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given

from numerics.polynomial import RandomFeatureDenoiser
from numerics.samplers import SAMPLERS
from numerics.schedules import sigma_grid
from theory import step_stability as result18
from verify import step_stability
from tests.strategies import step_modes

KAPPA, STEPS = 1e-2, 16   # D(y) = y - kappa y^3 on 16 geometric levels 80 .. 0.002 (q = -0.507 every step)
STABLE, ESCAPING = np.linspace(0.5, 0.9, 5), np.linspace(2.2, 3.0, 5)  # starts / linearized radius: outside
                  # the leading-order band (measured: Heun linearized-unstable from 1.1, escapes from 1.9)


def one_step(mu: float, sigma: float, q: float, method: str) -> float:
    """The numerics sampler's factor y'/y over sigma -> (1 + q) sigma with the linear denoiser D = mu y."""
    grid = sigma_grid(np.array([sigma, (1 + q) * sigma]))
    y = torch.ones(1, 1, dtype=torch.float64)
    return float(SAMPLERS[method](lambda v, s: mu * v, y, grid)[0, 0])


@pytest.mark.parametrize("method", result18.METHODS)
@given(step_modes())
def test_amplification_is_the_samplers_step_on_the_test_equation(method, mode):
    mu, sigma, q = mode
    z = q * (1 - mu)
    measured, predicted = one_step(mu, sigma, q, method), float(result18.amplification(z, q, method))
    assert measured == pytest.approx(predicted, rel=1e-9, abs=1e-12)  # a few roundings of O(|z|^2) terms
    unstable = result18.damped_mode_amplification(np.array([mu]), q, method) > 1
    assert unstable == (mu < 1 and abs(measured) > 1)  # damped by the flow, grown by the step


@pytest.mark.parametrize("q", [-0.05, -0.5, -0.9])
def test_heun_real_stiff_bound_is_minus_2_minus_q(q):
    bound = -(2 + q)
    assert result18.amplification(bound, q, "heun") == pytest.approx(1.0, abs=1e-12)
    assert result18.amplification(bound * 1.01, q, "heun") > 1 > result18.amplification(bound * 0.99, q, "heun")
    rhs = result18.StepStability().formulas["Heun stiff bound"].rhs
    assert float(rhs.subs({symbol: q for symbol in rhs.free_symbols})) == pytest.approx(bound)


def cubic_problem(method: str):
    """The restoring cubic as a 1-D RandomFeatureDenoiser, its grid, starts at +-radii and their prediction."""
    levels = np.geomspace(80.0, 0.002, STEPS)
    coef = np.array([[1.0], [0.0], [-KAPPA], [0.0]])  # (R u)^1, ^2, ^3 with R = 1, then the constant
    den = RandomFeatureDenoiser({float(s): (np.zeros(1), np.ones(1), coef) for s in levels}, np.ones((1, 1)), 3,
                                all_powers=True)
    q = levels[1] / levels[0] - 1
    r_lin = np.sqrt((2 + q) / (3 * -q * KAPPA)) if method == "heun" else np.sqrt(2 / (3 * -q * KAPPA))
    radii = np.concatenate([STABLE, ESCAPING]) * r_lin
    starts = np.concatenate([radii, -radii])[:, None]
    return step_stability.step_prediction(den, method, sigma_grid(np.append(levels, 0.0)), starts, 1.0)


@pytest.mark.parametrize("method", result18.METHODS)
def test_predicted_escapes_of_a_restoring_cubic_are_the_observed_ones(method):
    p = cubic_problem(method)
    assert not p["flow"].any()  # dy/dlog sigma = kappa y^3 only contracts: every escape is the step's
    expected = np.tile(np.repeat([False, True], 5), 2)
    assert np.array_equal(p["step"], expected) and np.array_equal(p["observed"], expected)


def test_a_planted_error_in_the_stability_function_is_caught(monkeypatch):
    classical = lambda z, q, method: 1 + z + z**2 / 2  # noqa: E731: Heun without the 1/sigma' of its corrector
    monkeypatch.setattr(result18, "amplification", classical)
    assert one_step(-20.0, 1.0, -0.5, "heun") != pytest.approx(float(result18.amplification(10.5, -0.5, "heun")))
    doubled = lambda z, q, method, original=result18.amplification: original(2 * z, q, method)  # noqa: E731
    monkeypatch.undo()
    monkeypatch.setattr(result18, "amplification", doubled)  # z = 2 h lambda: the bound at 1/sqrt(2) the radius
    p = cubic_problem("heun")
    assert not np.array_equal(p["step"], p["observed"])

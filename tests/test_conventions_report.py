"""The conventions' samplers: convergence order to the continuous-time law, and ``python -m verify.conventions``."""
from __future__ import annotations

import numpy as np
import pytest

from numerics.samplers import REGISTRY
from numerics.schedules import VESchedule, VPSchedule
from strategies import CONVENTION_SAMPLERS
from theory.finite_step import GaussianLaw
from theory.linear_law import spectral_continuous_law
from verify.conventions import convention_law, default_ratios, main, w2_to_data
from verify.stats import bures_wasserstein

EIGENVALUES = np.array([0.01, 0.1, 1.0, 4.0])
ORDERS = {"euler_t": 1, "heun_t": 2, "rk4_t": 4, "dpmpp_2m": 2, "ddpm_t": 1, "ddpm_large": 1, "ancestral": 1}


def test_every_convention_sampler_has_an_order():
    """Every sampler that discretizes Result 2's PF-ODE or reverse SDE has its order measured here
    (EDM's churn sampler converges to an SDE of its own: tests/test_edm_churn.py)."""
    assert set(ORDERS) == {n for n in CONVENTION_SAMPLERS if REGISTRY[n].continuous_limit is not None}


@pytest.mark.parametrize("sampler", sorted(ORDERS))
@pytest.mark.parametrize("schedule", [VPSchedule(), VESchedule()], ids=["vp", "ve"])
def test_convergence_order_to_the_continuous_law(sampler, schedule):
    """Doubling the steps divides the largest variance error by 2^order (measured 0.95..1.04, 2.01..2.07; RK4 4.07)."""
    if "variance_preserving" in REGISTRY[sampler].needs and schedule.name == "ve":
        pytest.skip("VP-only sampler")
    kind = "ddim" if REGISTRY[sampler].kind == "ode" else "ddpm"
    errors = []
    pair = (400, 800) if ORDERS[sampler] == 4 else (200, 400)  # RK4's next term still shows at 200 (4.14)
    for steps in pair:  # VE ends at sigma_min: a last Euler step to 0 would cap every order at 1
        grid = schedule.grid(steps, final_zero=False) if schedule.name == "ve" else schedule.grid(steps)
        law = convention_law(sampler, grid, EIGENVALUES)
        limit = spectral_continuous_law(kind, grid, EIGENVALUES, np.zeros(4))
        errors.append(np.abs(law.cov - limit.cov).max())
    assert np.log2(errors[0] / errors[1]) == pytest.approx(ORDERS[sampler], abs=0.1)  # asymptotic regime


def test_w2_to_data_is_the_bures_wasserstein_distance():
    law = GaussianLaw(np.array([0.1, -0.2, 0.0, 0.3]), np.array([0.02, 0.3, 0.9, 4.4]))
    expected = bures_wasserstein(law.mean, np.diag(law.cov), np.zeros(4), np.diag(EIGENVALUES))
    assert w2_to_data(law, EIGENVALUES) == pytest.approx(expected, rel=1e-12)  # float64 closed form


def test_default_ddim_ratio_departs_most_along_small_directions():
    ratios = default_ratios(EIGENVALUES)
    assert np.all(np.abs(ratios["ddim"] - 1) >= np.abs(ratios["ddpm"] - 1))
    assert np.argmax(np.abs(ratios["ddim"] - 1)) == 0  # the smallest eigenvalue


def test_report_prints_both_tables(capsys):
    assert main(["--nfe", "50"]) == 0
    out = capsys.readouterr().out
    assert "PF-ODE Heun in t on x" in out and "DPM-Solver++(2M)" in out and "max |ratio - 1|" in out

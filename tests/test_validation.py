"""Bad input gets a ValueError that names the argument (item (g) of the test-suite issue)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from numerics.denoisers import TabulatedAffineDenoiser, WienerDenoiser, fit_affine, train_linear
from numerics.samplers import SAMPLERS
from numerics.sampling import affine_probe, sample
from numerics.schedules import SCHEDULES, DDPMSchedule, VESchedule, VPSchedule
from strategies import covariances
from numerics import validation
from theory.linear import OptimalAffineDenoiser, TrainingSetLaw
from theory.linear_law import affine_law, continuous_law, prior_start, wiener_law
from theory.steps import step_map
from verify.targets import make_target

GRID = VESchedule().grid(3)
MEAN, COV = np.zeros(2), np.eye(2)

# ---------------------------------------------------------------- moments: every entry point that takes them
BAD_MOMENTS = {
    "non-symmetric cov": (MEAN, np.array([[1.0, 0.5], [0.0, 1.0]]), "cov must be symmetric"),
    "non-PSD cov": (MEAN, np.array([[1.0, 2.0], [2.0, 1.0]]), "cov must be positive semi-definite"),
    "NaN cov": (MEAN, np.array([[np.nan, 0.0], [0.0, 1.0]]), r"cov must be finite \(no NaN or inf\)"),
    "inf cov": (MEAN, np.array([[np.inf, 0.0], [0.0, 1.0]]), r"cov must be finite"),
    "NaN mean": (np.array([np.nan, 0.0]), COV, r"mean must be finite \(no NaN or inf\)"),
    "inf mean": (np.array([0.0, -np.inf]), COV, r"mean must be finite"),
    "mean vs cov": (np.zeros(3), COV, r"cov must be 3 x 3 to match the mean, got \(2, 2\)"),
    "non-square cov": (MEAN, np.ones((2, 3)), r"cov must be square"),
    "1-D cov": (MEAN, np.ones(2), r"cov must have 2 axes"),
    "2-D mean": (np.zeros((2, 1)), COV, r"mean must have 1 axes"),
}
ENTRY_POINTS = {
    "wiener_law": lambda m, c: wiener_law("euler", GRID, m, c),
    "continuous_law": lambda m, c: continuous_law("euler", GRID, m, c),
    "OptimalAffineDenoiser.affine": lambda m, c: OptimalAffineDenoiser().affine(m, c, 1.0),
    "WienerDenoiser": lambda m, c: WienerDenoiser(m, c),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("case", BAD_MOMENTS)
def test_bad_moments_are_refused_naming_them(case, entry):
    mean, cov, message = BAD_MOMENTS[case]
    with pytest.raises(ValueError, match=message):
        ENTRY_POINTS[entry](mean, cov)


@pytest.mark.parametrize("case", BAD_MOMENTS)
def test_bad_start_law_is_refused_by_sample_naming_it(case):
    mean, cov, message = BAD_MOMENTS[case]
    message = message.replace("cov must", "start_cov must").replace("mean must", "start_mean must")
    with pytest.raises(ValueError, match=message):
        sample(WienerDenoiser(MEAN, COV), "euler", GRID, mean, cov, 4, seed=0)


@given(covariances)
def test_valid_covariances_pass_validation(cov):
    """Rotated spectra 1e-4..1e3 with exact zeros: round-off asymmetry and negative eigenvalues are tolerated."""
    out = validation.covariance(cov)
    np.testing.assert_array_equal(out, out.T)  # returned symmetrized


def test_round_off_negative_eigenvalue_is_tolerated_but_a_real_one_is_not():
    v = np.array([1.0, 1.0]) / math.sqrt(2)
    validation.covariance(np.eye(2) - (1 + 1e-13) * np.outer(v, v))  # smallest eigenvalue -1e-13: round-off
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        validation.covariance(np.eye(2) - (1 + 1e-6) * np.outer(v, v))


# ---------------------------------------------------------------- x against the denoiser


@pytest.mark.parametrize("denoiser", [WienerDenoiser(MEAN, COV), TabulatedAffineDenoiser({1.0: (COV, MEAN)})],
                         ids=["wiener", "tabulated"])
def test_x_of_the_wrong_dimension_is_refused_by_the_denoiser(denoiser):
    with pytest.raises(ValueError, match=r"\bx\b.*(dimension|columns|shape)"):
        denoiser(torch.zeros(5, 3, dtype=torch.float64), 1.0)


@pytest.mark.parametrize("call", ["sample", "affine_probe"])
def test_start_of_the_wrong_dimension_is_refused_naming_it(call):
    denoiser = WienerDenoiser(MEAN, COV)
    with pytest.raises(ValueError, match=r"start_mean|\bd\b|\bx\b|denoiser"):
        if call == "sample":
            sample(denoiser, "euler", GRID, np.zeros(3), np.eye(3), 4, seed=0)
        else:
            affine_probe(denoiser, "euler", GRID, 3)


def test_start_law_of_the_wrong_dimension_is_refused_by_affine_law():
    """affine_law gets a ValueError, from numpy's matmul; it names no argument but at least is a ValueError."""
    with pytest.raises(ValueError):
        affine_law("ddpm", GRID, WienerDenoiser(MEAN, COV).affine, prior_start(GRID, np.zeros(3), np.eye(3)))


# ---------------------------------------------------------------- noise levels
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, -math.inf])
def test_non_positive_or_non_finite_sigma_is_refused(bad):
    message = r"sigma must be a finite number > 0"
    with pytest.raises(ValueError, match=message):
        OptimalAffineDenoiser().gain(np.ones(2), bad)
    with pytest.raises(ValueError, match=message):
        OptimalAffineDenoiser().affine(MEAN, COV, bad)
    with pytest.raises(ValueError, match=message):
        WienerDenoiser(MEAN, COV).affine(bad)
    with pytest.raises(ValueError, match=message):
        WienerDenoiser(MEAN, COV)(torch.zeros(3, 2, dtype=torch.float64), bad)


def test_untabulated_sigma_is_refused():
    fitted = fit_affine(np.random.default_rng(0).standard_normal((6, 2)), [1.0, 2.0], 2,
                        torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"sigma = 1.5 is not one of the 2 noise levels .* fit it on the sampler's grid"):
        fitted.affine(1.5)
    with pytest.raises(ValueError, match=r"sigma = 1.5 is not one of the 2 noise levels"):
        fitted(torch.zeros(3, 2, dtype=torch.float64), 1.5)
    other_grid = VESchedule().grid(4)  # its levels are not 1 and 2
    with pytest.raises(ValueError, match=r"sigma = 80.0 is not one of the 2 noise levels"):
        sample(fitted, "euler", other_grid, MEAN, COV, 4, seed=0)


@pytest.mark.parametrize("sigmas", [[1.0, -2.0], [1.0, math.nan], [math.inf]])
def test_fit_affine_refuses_bad_noise_levels(sigmas):
    with pytest.raises(ValueError, match="sigmas must be a finite number > 0"):
        fit_affine(np.ones((3, 2)), sigmas, 2)


# ---------------------------------------------------------------- names: samplers, schedules, targets
def test_choice_names_the_argument_and_lists_the_allowed():
    with pytest.raises(ValueError, match=r"unknown sampler 'nope'; allowed: ancestral, ddim, ddpm, ddpm_large, "
                                         r"ddpm_t, dpmpp_2m, edm_churn, euler, euler_churn_epsilon, euler_churn_sample, "
                                         r"euler_churn_v, euler_maruyama, euler_t, exponential_vp, heun, heun_t, rk4_t"):
        validation.choice("nope", "sampler", SAMPLERS)
    with pytest.raises(ValueError, match=r"unknown schedule 'nope'; allowed: ddpm, ve, vp"):
        validation.choice("nope", "schedule", SCHEDULES)
    assert validation.choice("vp", "schedule", SCHEDULES) == "vp"




@pytest.mark.parametrize("call", ["sample", "affine_probe", "wiener_law", "affine_law", "step_map",
                                  "continuous_law"])
def test_unknown_sampler_is_refused_everywhere(call):
    denoiser = WienerDenoiser(MEAN, COV)
    calls = {
        "sample": lambda: sample(denoiser, "nope", GRID, MEAN, COV, 4, seed=0),
        "affine_probe": lambda: affine_probe(denoiser, "nope", GRID, 2),
        "wiener_law": lambda: wiener_law("nope", GRID, MEAN, COV),
        "continuous_law": lambda: continuous_law("nope", GRID, MEAN, COV),
        "affine_law": lambda: affine_law("nope", GRID, denoiser.affine, prior_start(GRID, MEAN, COV)),
        "step_map": lambda: step_map("nope"),
    }
    with pytest.raises(ValueError, match=r"unknown sampler 'nope'; allowed: ancestral, ddim, ddpm, .*euler"):
        calls[call]()


def test_unknown_target_is_refused():
    with pytest.raises(ValueError, match=r"unknown target 'nope'; allowed: gaussian, mixture, product"):
        make_target("nope", 2, 0)


# ---------------------------------------------------------------- integers: steps, counts
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
@pytest.mark.parametrize("schedule", [VESchedule(), VPSchedule(), DDPMSchedule()], ids=["ve", "vp", "ddpm"])
def test_steps_below_one_or_not_an_integer_are_refused(schedule, bad):
    with pytest.raises(ValueError, match=r"steps must be an integer >= 1, got"):
        schedule.grid(bad)




@pytest.mark.parametrize("bad", [math.inf, math.nan], ids=["inf", "nan"])
@pytest.mark.parametrize("schedule", [VESchedule(), VPSchedule(), DDPMSchedule()], ids=["ve", "vp", "ddpm"])
def test_non_finite_steps_are_refused_naming_steps(schedule, bad):
    with pytest.raises(ValueError, match=r"steps must be an integer >= 1"):  # nan: unmatched -> AssertionError
        schedule.grid(bad)


@pytest.mark.parametrize("argument, call", [
    ("n", lambda: sample(WienerDenoiser(MEAN, COV), "euler", GRID, MEAN, COV, 0, seed=0)),
    ("batch_size", lambda: sample(WienerDenoiser(MEAN, COV), "euler", GRID, MEAN, COV, 4, seed=0, batch_size=0)),
    ("copies", lambda: fit_affine(np.ones((3, 2)), [1.0], 0)),
    ("iterations", lambda: train_linear(np.ones((3, 2)), [1.0], iterations=-1)),
    ("num_timesteps", lambda: DDPMSchedule(num_timesteps=0)),
    ("dim", lambda: make_target("gaussian", 0, 0)),
])
def test_counts_below_one_are_refused_naming_them(argument, call):
    with pytest.raises(ValueError, match=rf"{argument} must be an integer >= 1"):
        call()


def test_train_linear_refuses_zero_iterations():
    with pytest.raises(ValueError, match=r"iterations must be an integer >= 1"):
        train_linear(np.ones((3, 2)), [1.0], iterations=0)


def test_train_linear_refuses_an_empty_batch():
    train = np.arange(6.0).reshape(3, 2)
    with pytest.raises(ValueError, match=r"batch must be an integer >= 1"):
        train_linear(train, [1.0], iterations=2, batch=0)


# ---------------------------------------------------------------- schedule parameters
@pytest.mark.parametrize("kwargs, message", [
    ({"sigma_min": 80.0, "sigma_max": 80.0}, r"sigma_min must be < sigma_max, got 80.0 >= 80.0"),
    ({"sigma_min": 100.0, "sigma_max": 80.0}, r"sigma_min must be < sigma_max"),
    ({"sigma_min": 0.0}, r"sigma_min must be a finite number > 0"),
    ({"sigma_max": math.nan}, r"sigma_max must be a finite number > 0"),
    ({"rho": -7.0}, r"rho must be a finite number > 0"),
])
def test_ve_schedule_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VESchedule(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"eps": 1.0, "T": 1.0}, r"eps must be < T"),
    ({"beta_min": 0.0}, r"beta_min must be a finite number > 0"),
    ({"T": math.inf}, r"T must be a finite number > 0"),
])
def test_vp_schedule_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VPSchedule(**kwargs)


def test_ddpm_parameters_and_too_many_steps():
    with pytest.raises(ValueError, match=r"beta_end must be < 1"):
        DDPMSchedule(beta_end=1.0)
    with pytest.raises(ValueError, match=r"steps must be <= num_timesteps = 10, got 11"):
        DDPMSchedule(num_timesteps=10).grid(11)
    assert DDPMSchedule(num_timesteps=10).grid(10).steps == 10  # the boundary is allowed


# ---------------------------------------------------------------- training sets
@pytest.mark.parametrize("train, message", [
    (np.ones(3), r"train must have 2 axes"),
    (np.array([[1.0, np.nan]]), r"train must be finite"),
    (np.ones((0, 2)), r"train must have at least one row"),
])
def test_bad_training_sets_are_refused(train, message):
    with pytest.raises(ValueError, match=message):
        TrainingSetLaw.moments(train)
    if train.size:  # fit_affine on an empty set is caught by torch, not here
        with pytest.raises(ValueError, match=message):
            fit_affine(train, [1.0], 2)


def test_positive_int_accepts_integral_values():
    assert validation.positive_int(np.int64(3), "n") == 3
    assert validation.positive_int(2.0, "n") == 2


@given(st.floats(allow_nan=False, allow_infinity=False, max_value=0.0))
def test_positive_refuses_every_non_positive_number(value):
    with pytest.raises(ValueError, match=r"x must be a finite number > 0"):
        validation.positive(value, "x")

"""The real diffusers schedulers, driven with the project's linear denoiser, against the predicted law.

Each scheduler's own loop runs in float64 (``numerics.interop.float64``); its affine map is read
with the noise switched off (one kick per step for the noise) and compared with the exact law of
the project's sampler and grid for that scheduler to 1e-10; a Monte-Carlo run of the same loop
passes the calibrated Gaussian-law checks and rejects a 10% wrong covariance.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's __array__ under numpy 2, in diffusers

from numerics.denoisers import WienerDenoiser  # noqa: E402
from numerics.interop import (float64, make_scheduler, probe, run_scheduler, sample_scheduler,  # noqa: E402
                              scheduler_spec)
from numerics.samplers import STOCHASTIC  # noqa: E402
from numerics.schedules import DDPMSchedule  # noqa: E402
from theory.finite_step import GaussianLaw, probe_law  # noqa: E402
from theory.linear_law import affine_law, prior_start  # noqa: E402
from theory.multistep import multistep_law  # noqa: E402
from cli import exit_code  # noqa: E402
from verify.linear import main  # noqa: E402
from verify.stats import gaussian_checks  # noqa: E402
from verify.targets import mixture_target  # noqa: E402

NO_CLIP = {"clip_sample": False}
CASES = [  # (scheduler, config, eta, steps)
    ("DDIMScheduler", NO_CLIP, 0.0, 50),
    ("DDIMScheduler", {**NO_CLIP, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}, 0.0, 20),
    ("DDIMScheduler", {**NO_CLIP, "steps_offset": 1, "set_alpha_to_one": False, "beta_schedule": "scaled_linear",
                       "beta_start": 0.00085, "beta_end": 0.012}, 0.0, 25),
    ("DDIMScheduler", {**NO_CLIP, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "sample"}, 0.5, 10),
    ("DDIMScheduler", NO_CLIP, 1.0, 10),
    ("DDPMScheduler", NO_CLIP, 0.0, 50),
    ("DDPMScheduler", {**NO_CLIP, "variance_type": "fixed_large"}, 0.0, 20),
    ("DDPMScheduler", {**NO_CLIP, "variance_type": "fixed_large", "timestep_spacing": "trailing",
                       "prediction_type": "v_prediction"}, 0.0, 10),
    ("DDPMScheduler", {**NO_CLIP, "timestep_spacing": "linspace", "steps_offset": 1}, 0.0, 12),
    ("EulerDiscreteScheduler", {}, 0.0, 20),
    ("EulerDiscreteScheduler", {"timestep_spacing": "leading", "steps_offset": 1,
                                "prediction_type": "v_prediction"}, 0.0, 15),
    ("EulerAncestralDiscreteScheduler", {}, 0.0, 15),
    ("HeunDiscreteScheduler", {}, 0.0, 10),
    ("DPMSolverMultistepScheduler", {}, 0.0, 20),
    ("DPMSolverMultistepScheduler", {"timestep_spacing": "trailing", "prediction_type": "sample"}, 0.0, 8),
    ("DDIMScheduler", {**NO_CLIP, "timestep_spacing": "linspace"}, 0.0, 30),       # lands at t - K//N, off the grid
    ("DDIMScheduler", {**NO_CLIP, "timestep_spacing": "trailing"}, 0.5, 7),        # K//N = 142: off the grid too
]
IDS = [f"{name}-{i}" for i, (name, *_) in enumerate(CASES)]
TARGET = mixture_target(3, 4)


def build(name, config, eta, steps):
    scheduler = make_scheduler(name, **config)
    with float64(type(scheduler)):
        spec = scheduler_spec(scheduler, steps, eta)
    return scheduler, spec


def predicted(spec, denoiser, start):
    if spec.sampler == "dpmpp_2m":
        return multistep_law(spec.sampler, spec.grid, denoiser.affine, GaussianLaw(start.mean, start.covariance()))
    return affine_law(spec.sampler, spec.grid, denoiser.affine, start)


@pytest.mark.parametrize("name, config, eta, steps", CASES, ids=IDS)
def test_probe_of_the_real_scheduler_equals_the_law(name, config, eta, steps):
    scheduler, spec = build(name, config, eta, steps)
    denoiser = WienerDenoiser(TARGET.mean, TARGET.cov)
    start = prior_start(spec.grid, TARGET.mean, TARGET.cov)
    law = predicted(spec, denoiser, start)
    A, c, N = probe(lambda x, noise: run_scheduler(scheduler, denoiser, x, steps, eta=eta, noise_sampler=noise),
                    3, spec.grid.steps, spec.sampler in STOCHASTIC)
    probed = probe_law(A, c, N, GaussianLaw(start.mean, start.covariance()))
    scale = np.abs(law.covariance()).max()
    assert np.abs(probed.cov - law.covariance()).max() <= 1e-10 * scale  # float64 loop, <= 50 steps (measured <= 3e-15)
    assert np.abs(probed.mean - law.mean).max() <= 1e-10 * np.sqrt(scale)  # same


@pytest.mark.parametrize("name", ["DDIMScheduler", "EulerDiscreteScheduler", "DPMSolverMultistepScheduler"])
def test_prediction_type_does_not_change_the_law(name):
    """The same denoiser as epsilon, sample or v: diffusers' conversions undo the wrapper's, the law is one."""
    denoiser = WienerDenoiser(TARGET.mean, TARGET.cov)
    outputs = []
    for prediction_type in ("epsilon", "sample", "v_prediction"):
        scheduler = make_scheduler(name, prediction_type=prediction_type, **(NO_CLIP if "DDIM" in name else {}))
        x = torch.as_tensor(np.random.default_rng(0).standard_normal((5, 3)))
        outputs.append(run_scheduler(scheduler, denoiser, x, 12).numpy())
    for other in outputs[1:]:
        np.testing.assert_allclose(other, outputs[0], rtol=0, atol=1e-12)  # float64 conversions, 12 steps


@pytest.mark.parametrize("name, config, eta, steps", [CASES[i] for i in (0, 4, 6, 9, 11, 12, 13, 15)],
                         ids=[IDS[i] for i in (0, 4, 6, 9, 11, 12, 13, 15)])
def test_monte_carlo_of_the_real_scheduler_matches_the_law(name, config, eta, steps):
    """3000 samples, calibrated checks at family-wise alpha = 1e-3 (fixed seed: deterministic); the same samples
    reject a covariance 10% too large (covariance trace test)."""
    scheduler, spec = build(name, config, eta, steps)
    denoiser = WienerDenoiser(TARGET.mean, TARGET.cov)
    start = prior_start(spec.grid, TARGET.mean, TARGET.cov)
    law = predicted(spec, denoiser, start)
    x = sample_scheduler(scheduler, denoiser, steps, start.mean, start.covariance(), 3000, seed=7, eta=eta).numpy()
    checks = gaussian_checks(x, law.mean, law.covariance(), alpha=1e-3)
    assert all(c.passed for c in checks), [(c.name, c.p_value) for c in checks if not c.passed]
    wrong = gaussian_checks(x, law.mean, 1.1 * law.covariance(), alpha=1e-3)
    assert not all(c.passed for c in wrong)


@pytest.mark.parametrize("config, steps", [({}, 50), ({"steps_offset": 1, "set_alpha_to_one": False}, 50),
                                           ({"timestep_spacing": "trailing"}, 20),
                                           ({"beta_schedule": "squaredcos_cap_v2"}, 10),
                                           ({"timestep_spacing": "linspace"}, 30), ({"timestep_spacing": "trailing"}, 7)])
def test_the_projects_own_schedule_reproduces_diffusers_grid(config, steps):
    """``DDPMSchedule.ddim_grid(spacing=...)`` is written from the definitions; diffusers' arrays agree with it
    (where each step lands too: off the next timestep for linspace and for trailing with N not dividing K)."""
    _, spec = build("DDIMScheduler", {**NO_CLIP, **config}, 0.0, steps)
    schedule = DDPMSchedule(beta_schedule=config.get("beta_schedule", "linear"))
    grid = schedule.ddim_grid(steps, config.get("timestep_spacing", "leading"), config.get("steps_offset", 0),
                              config.get("set_alpha_to_one", True))
    np.testing.assert_allclose(grid.s, spec.grid.s, rtol=1e-12)  # float64 cumprod of the same betas
    np.testing.assert_allclose(grid.sigma, spec.grid.sigma, rtol=1e-10)  # sqrt((1-a)/a): 1 - a cancels near a = 1
    for i in range(steps):
        np.testing.assert_allclose(grid.land_at(i), spec.grid.land_at(i), rtol=1e-10)  # the same, where it lands


@pytest.mark.parametrize("name, config, message", [
    ("DDIMScheduler", {}, "clip_sample=True is not affine"),
    ("DDPMScheduler", {"clip_sample": False, "thresholding": True}, "thresholding=True is not affine"),
    ("DPMSolverMultistepScheduler", {"solver_order": 3}, "only solver_order=2"),
    ("DDPMScheduler", {**NO_CLIP, "variance_type": "learned"}, "unknown variance_type 'learned'"),
])
def test_unsupported_configurations_are_refused(name, config, message):
    scheduler = make_scheduler(name, **config)
    with pytest.raises(ValueError, match=message):
        scheduler_spec(scheduler, 30)


def test_eta_is_refused_outside_ddim():
    with pytest.raises(ValueError, match="eta must be in"):
        scheduler_spec(make_scheduler("EulerDiscreteScheduler"), 10, eta=0.5)
    with pytest.raises(ValueError, match="unknown scheduler"):
        make_scheduler("LMSDiscreteScheduler")


# ---------------------------------------------------------------- python -m verify.linear --diffusers
CLI = ["--dim", "4", "--samples", "2000", "--steps", "12"]


@pytest.mark.parametrize("name", ["DDPMScheduler", "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler"])
def test_cli_passes_against_the_real_scheduler(name, tmp_path, capsys):
    config = tmp_path / "scheduler_config.json"
    config.write_text('{"_class_name": "%s"%s}' % (name, ', "clip_sample": false' if name == "DDPMScheduler" else ""))
    assert main(CLI + ["--diffusers", name, "--scheduler-config", str(config)]) == 0
    assert "exact probe: covariance" in capsys.readouterr().out


def test_cli_negative_control_fails():
    assert main(CLI + ["--diffusers", "EulerDiscreteScheduler", "--negative-control", "covariance+2%",
                       "--samples", "10000"]) == 1


@pytest.mark.parametrize("argv, message", [
    (["--diffusers", "DDIMScheduler"], "clip_sample=True is not affine"),
    (["--diffusers", "Nope"], "unknown scheduler 'Nope'"),
    (["--diffusers", "EulerDiscreteScheduler", "--scheduler-config", "{config}"], "unexpected keyword argument"),
    (["--diffusers", "DDIMScheduler", "--scheduler-config", "/nonexistent.json"], "not a readable JSON file"),
    (["--diffusers", "DDIMScheduler", "--sampler", "euler"], "drop --sampler"),
    (["--scheduler-config", "x.json"], "needs --diffusers"),
    (["--diffusers", "EulerDiscreteScheduler", "--eta", "0.5"], "eta must be in"),
    (["--diffusers", "EulerDiscreteScheduler", "--denoiser", "fitted"], "supports only --denoiser closed-form"),
    (["--eta", "2"], "must be in \\[0, 1\\]"),
])
def test_cli_refuses_bad_input(argv, message, capsys, tmp_path):
    config = tmp_path / "bad.json"
    config.write_text('{"clip_sample": false}')  # EulerDiscreteScheduler has no clip_sample
    assert exit_code(main, CLI + [a.replace("{config}", str(config)) for a in argv]) == 2
    assert re.search(message, capsys.readouterr().err)

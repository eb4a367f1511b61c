"""The conventions' torch samplers against their exact law: noise-off probe (any affine denoiser,
non-commuting gains included) and Monte Carlo with the calibrated checks; the registry's grid needs."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.denoisers import TabulatedAffineDenoiser, WienerDenoiser
from numerics.samplers import REGISTRY, SAMPLERS, STOCHASTIC
from numerics.sampling import affine_probe, sample
from numerics.schedules import DDPMSchedule, VESchedule, VPSchedule
from strategies import CONVENTION_SAMPLERS, seeds
from theory.finite_step import GaussianLaw, check_sampler_grid, probe_law
from theory.linear_law import affine_law, prior_start
from theory.multistep import multistep_law
from verify.linear import main
from verify.stats import gaussian_checks
from verify.targets import mixture_target

GRIDS = {"ve": lambda n: VESchedule().grid(n), "vp": lambda n: VPSchedule().grid(n),
         "ddpm": lambda n: DDPMSchedule().grid(n, "leading"), "ddpm-trailing": lambda n: DDPMSchedule().grid(n, "trailing")}
PAIRS = [(name, grid) for name in CONVENTION_SAMPLERS for grid in GRIDS
         if grid.partition("-")[0] in REGISTRY[name].schedules]  # what the registry says each accepts
STEPS = 40  # enough for ddpm_t on VP (beta(T) h = 0.5 < 1)


def law_of(sampler, grid, affine, start):
    if REGISTRY[sampler].multistep:
        return multistep_law(sampler, grid, affine, GaussianLaw(start.mean, start.covariance()))
    return affine_law(sampler, grid, affine, start)


def random_table(grid, d, seed):
    """Unrelated random gains at every level the samplers call the denoiser at (RK4: the midpoints too)."""
    rng = np.random.default_rng(seed)
    levels = np.concatenate([grid.sigma[grid.sigma > 0], [] if grid.mid is None else grid.mid.sigma])
    return {float(level): (0.5 * np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d), rng.standard_normal(d))
            for level in levels}


@pytest.mark.parametrize("sampler, grid_name", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
@settings(max_examples=5)
@given(d=st.integers(1, 4), seed=seeds, eta=st.sampled_from([None, 0.0, 0.4, 1.0]), s_noise=st.sampled_from([1.0, 1.007]))
def test_probe_equals_the_law_for_non_commuting_gains(sampler, grid_name, d, seed, eta, s_noise):
    grid = replace(GRIDS[grid_name](STEPS), s_noise=s_noise)
    grid = grid if eta is None else replace(grid, eta=eta)
    denoiser = TabulatedAffineDenoiser(random_table(grid, d, seed))
    start = prior_start(grid, np.zeros(d), np.eye(d))
    law = law_of(sampler, grid, denoiser.affine, start)
    A, c, N = affine_probe(denoiser, sampler, grid, d, stochastic=sampler in STOCHASTIC)
    probed = probe_law(A, c, N, GaussianLaw(start.mean, start.covariance()))
    scale = np.abs(law.covariance()).max()
    assert np.abs(probed.cov - law.covariance()).max() <= 1e-9 * scale  # float64 round-off, 40 steps
    assert np.abs(probed.mean - law.mean).max() <= 1e-9 * (np.sqrt(scale) + np.abs(law.mean).max())  # same


STOCHASTIC_PAIRS = [pair for pair in PAIRS if pair[0] in STOCHASTIC and pair[1] != "ddpm-trailing"]


@pytest.mark.parametrize("sampler, grid_name", STOCHASTIC_PAIRS, ids=[f"{a}-{b}" for a, b in STOCHASTIC_PAIRS])
def test_monte_carlo_matches_the_law(sampler, grid_name):
    """d = 4 mixture moments, 40 steps, 4000 samples, family-wise alpha = 1e-3 (fixed seed, deterministic);
    the same samples reject a 10% wrong covariance."""
    target, grid = mixture_target(4, 1), replace(GRIDS[grid_name](STEPS), eta=0.6)
    start = prior_start(grid, target.mean, target.cov)
    denoiser = WienerDenoiser(target.mean, target.cov)
    law = law_of(sampler, grid, denoiser.affine, start)
    x = sample(denoiser, sampler, grid, start.mean, start.covariance(), 4000, seed=11).numpy()
    checks = gaussian_checks(x, law.mean, law.covariance(), alpha=1e-3)
    assert all(c.passed for c in checks), [(c.name, c.p_value) for c in checks if not c.passed]
    assert not all(c.passed for c in gaussian_checks(x, law.mean, 1.1 * law.covariance(), alpha=1e-3))


@pytest.mark.parametrize("sampler", CONVENTION_SAMPLERS)
def test_the_registry_says_what_the_grid_needs(sampler):
    """numerics (the sampler) and theory (check_sampler_grid) refuse the same grids."""
    for grid in (VESchedule().grid(50), VPSchedule().grid(50), DDPMSchedule().grid(50, "leading")):
        x = torch.zeros(1, 2, dtype=torch.float64)
        denoiser = WienerDenoiser(np.zeros(2), np.eye(2))
        try:
            SAMPLERS[sampler](denoiser, x, grid)
            numerics_ok = True
        except ValueError:
            numerics_ok = False
        try:
            check_sampler_grid(sampler, grid)
            theory_ok = True
        except ValueError as error:
            theory_ok = REGISTRY[sampler].multistep and "multistep" in str(error)  # routed to theory.multistep
        assert numerics_ok == theory_ok, grid.schedule
        assert numerics_ok == (grid.schedule in REGISTRY[sampler].schedules)


def test_ddpm_t_refuses_a_step_with_beta_above_one():
    grid = VPSchedule().grid(10)  # beta(T) h = 20 x 0.1 = 2
    with pytest.raises(ValueError, match="0 < beta"):
        check_sampler_grid("ddpm_t", grid)
    with pytest.raises(ValueError, match="0 < beta"):
        SAMPLERS["ddpm_t"](WienerDenoiser(np.zeros(1), np.eye(1)), torch.zeros(1, 1, dtype=torch.float64), grid)


def test_eta_outside_the_unit_interval_and_negative_s_noise_are_refused():
    with pytest.raises(ValueError, match="eta must be in"):
        replace(VESchedule().grid(4), eta=1.5)
    with pytest.raises(ValueError, match="s_noise must be"):
        replace(VESchedule().grid(4), s_noise=-1.0)


@pytest.mark.parametrize("argv, message", [(["--eta", "0.5", "--sampler", "euler"], "sampler 'euler' has none"),
                                           (["--sampler", "dpmpp_2m"], "is multistep")])
def test_verify_linear_refuses_what_it_cannot_check(argv, message, capsys):
    assert main(["--dim", "2", "--samples", "100"] + argv) == 2
    assert message in capsys.readouterr().err


def test_rk4_nested_export_expands_to_the_step_map():
    """The export shows RK4 in t through its stages (P_t, q_t, B_j, e_j); substituted back it is the derived step."""
    import sympy as sp
    from theory.steps import VECTORS, expand_nested, rk4_t_nested, step_map
    forms, step = rk4_t_nested(), step_map("rk4_t")
    assert sp.expand(expand_nested(forms, "A_i") - step.coefficient("x")) == 0
    c = sum((step.coefficient(k) * VECTORS[k] for k in ("b", "b_next", "b_mid")), sp.Integer(0))
    assert sp.simplify(sp.expand(expand_nested(forms, "c_i") - c)) == 0

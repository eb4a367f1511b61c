"""Every planted error in a theory formula makes the CLI that names the result FAIL (issue: independent checks).

Rows for Results 1-8 and the sampler step maps; other results keep their rows beside their tests
(``tests/test_mutations_*.py``) with the same machinery (``tests/mutations.py``).
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from mutations import Mutation, assert_caught, fresh_caches, run_cli  # noqa: F401 (fresh_caches: a fixture)
from theory import steps
from theory.bottleneck import Cut
from theory.symbols import s, s_next, s_noise, sigma, sigma_next, x, z

LINEAR = ("--dim", "8", "--samples", "2000", "--steps", "16")          # Result 1-4 checks all run here
LINEAR_SDE = LINEAR + ("--sampler", "euler_maruyama")
LINEAR_DDPM = LINEAR + ("--sampler", "ddpm")
LINEAR_EULER = LINEAR + ("--sampler", "euler")
RANK = ("--dim", "8", "--rank", "3", "--samples", "2000", "--steps", "16")
DECODER = ("--mode", "decoder", "--samples", "1000")
DECODER_DEFAULT = ("--mode", "decoder")                                  # the KS check needs its 4000 samples
CREATIVITY = ("--dim", "8", "--n-train", "40", "--samples", "500")


def _ode_gain_exponent(original):
    def ode(self, eigenvalues, mean, m0, v0, sigma_max, sigma_end):
        r = self._numeric[0](np.asarray(eigenvalues, float), sigma_max, sigma_end, 0.0) ** 1.1
        return mean + (m0 - mean) * r, v0 * r**2
    return ode


def _scaled_sde_variance(original):
    def sde(self, *args):
        mean, variance = original(self, *args)
        return mean, 1.01 * variance
    return sde


def _unbiased(original):
    def moments(train):
        mean, cov = original(train)
        return mean, cov * len(train) / (len(train) - 1)
    return staticmethod(moments)


def _bottom_r(original):
    def cut(eigenvalues, rank, rtol=1e-9):
        kept = original(eigenvalues, rank, rtol)
        return Cut(kept.keep[::-1].copy(), kept.unique, kept.tied)
    return staticmethod(cut)


def _squared_rank_gain(original):
    def affine(self, mean, cov, sigma_value, rank, allow_tie=False):
        G, b, cut = original(self, mean, cov, sigma_value, rank, allow_tie)
        G = G @ G
        return G, np.asarray(mean) - G @ np.asarray(mean), cut
    return affine


def _uncollapsed(original):
    def masked_law(sampler, grid, mean, cov, keep, start=None):
        return original(sampler, grid, mean, cov, np.ones_like(np.asarray(keep, dtype=bool)), start)
    return masked_law


def _regularized_decoder(original):
    def conditional_mean(self, W, u, sigma):
        return original(self, W, u, float(np.sqrt(sigma**2 + 1e-2)))
    return conditional_mean


def _inflated_projection(original):
    def project(self, W):
        projected = original(self, W)
        return type(projected)(projected.weights, projected.means, 2.0 * projected.covs)
    return project


def _half_temperature(original):
    return staticmethod(lambda y, train, sigma: original(y, train, sigma / np.sqrt(2)))


def _heun_weights(original):
    def heun(to_zero):
        if to_zero:
            return steps._euler(to_zero)
        y = x / s
        slope = (y - steps._D(y)) / sigma
        y_pred = y + (sigma_next - sigma) * slope
        slope_pred = (y_pred - steps._D_next(y_pred)) / sigma_next
        return s_next * (y + (sigma_next - sigma) * (sp.Rational(9, 20) * slope + sp.Rational(11, 20) * slope_pred))
    return heun


def _euler_step(original):
    def euler(to_zero):
        y = x / s
        return s_next * (y + sp.Rational(101, 100) * (sigma_next - sigma) * (y - steps._D(y)) / sigma)
    return euler


def _ddpm_std(original):
    def ddpm(to_zero):
        y = x / s
        ratio = sigma_next**2 / sigma**2
        return s_next * (ratio * y + (1 - ratio) * steps._D(y) + sigma_next * (1 - ratio) * z)
    return ddpm


def _em_noise(original):
    def euler_maruyama(to_zero):
        return original(to_zero).subs(z, z / sp.sqrt(2))
    return euler_maruyama


def _wrong_offset(original):
    def affine(self, mean, cov, sigma_value):
        G, _ = original(self, mean, cov, sigma_value)
        return G, np.asarray(mean, dtype=float)
    return affine


def _churn_without_s_noise(original):
    def edm_churn(to_zero):
        return original(to_zero).subs(s_noise, 1)
    return edm_churn


LINEAR_CHURN = LINEAR + ("--sampler", "edm_churn", "--s-churn", "40", "--s-tmin", "0.05", "--s-tmax", "50",
                         "--s-noise", "1.2")


MUTATIONS = [
    Mutation("R1 gain lambda/(lambda+sigma)", "theory.linear:OptimalAffineDenoiser.gain",
             lambda o: lambda self, ev, sv: np.asarray(ev, float) / (np.asarray(ev, float) + sv),
             "verify.linear", LINEAR, "Result 1: formula = normal equations"),
    Mutation("R1 offset b = mu", "theory.linear:OptimalAffineDenoiser.affine", _wrong_offset,
             "verify.linear", LINEAR, "Result 1: formula = normal equations"),
    Mutation("R2 ODE gain exponent x1.1", "theory.linear:ContinuousFlowLaw.ode", _ode_gain_exponent,
             "verify.linear", LINEAR, "Result 2: limit of the finite-step laws"),
    Mutation("R2 SDE variance +1%", "theory.linear:ContinuousFlowLaw.sde", _scaled_sde_variance,
             "verify.linear", LINEAR_SDE, "Result 2: limit of the finite-step laws"),
    Mutation("R3 Heun corrector weights 9/20, 11/20", "theory.steps:UPDATES[heun]", _heun_weights,
             "verify.linear", LINEAR, "exact probe: covariance"),
    Mutation("R3 Euler step 1% long", "theory.steps:UPDATES[euler]", _euler_step,
             "verify.linear", LINEAR_EULER, "exact probe: covariance"),
    Mutation("R3 DDPM posterior std without sqrt", "theory.steps:UPDATES[ddpm]", _ddpm_std,
             "verify.linear", LINEAR_DDPM, "exact probe: covariance"),
    Mutation("R3 EDM Algorithm 2 churn noise without S_noise", "theory.steps:UPDATES[edm_churn]",
             _churn_without_s_noise, "verify.linear", LINEAR_CHURN, "exact probe: covariance"),
    Mutation("R3 Euler-Maruyama noise / sqrt 2", "theory.steps:UPDATES[euler_maruyama]", _em_noise,
             "verify.linear", LINEAR_SDE, "exact probe: covariance"),
    Mutation("R4 covariance over n - 1", "theory.linear:TrainingSetLaw.moments", _unbiased,
             "verify.linear", LINEAR, "Result 4 (n = 16) probe: covariance"),
    Mutation("R5 keeps the bottom r directions", "theory.bottleneck:RankRestrictedDenoiser.cut", _bottom_r,
             "verify.bottleneck", RANK, "Result 5: kept = top-r eigenvectors"),
    Mutation("R5 kept gain squared", "theory.bottleneck:RankRestrictedDenoiser.affine", _squared_rank_gain,
             "verify.bottleneck", RANK, "Result 5: formula = reduced-rank regression"),
    Mutation("R6 discarded directions not collapsed", "theory.bottleneck:masked_law", _uncollapsed,
             "verify.bottleneck", RANK, "exact probe: covariance"),
    Mutation("R7 decoder regularized by 1e-2", "theory.mixture:GaussianMixture.conditional_mean",
             _regularized_decoder, "verify.bottleneck", DECODER, "regression residual"),
    Mutation("R7 projected component covariances doubled", "theory.mixture:GaussianMixture.project", _inflated_projection,
             "verify.bottleneck", DECODER_DEFAULT, "projected law"),
    Mutation("R8 softmax at half temperature", "theory.memorization:EmpiricalDenoiser.posterior_weights",
             _half_temperature, "verify.creativity", CREATIVITY, "Result 8: formula run through the sampler"),
]
CLEAN_RUNS = sorted({(m.cli, m.argv) for m in MUTATIONS})


pytestmark = pytest.mark.usefixtures("fresh_caches")


@pytest.mark.parametrize("cli, argv", CLEAN_RUNS, ids=[f"{c} {' '.join(a)}" for c, a in CLEAN_RUNS])
def test_unmutated_run_passes(cli, argv, capsys):
    code, output = run_cli(cli, argv, capsys)
    assert code == 0, output


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutant_is_caught(mutation, monkeypatch, capsys):
    assert_caught(mutation, monkeypatch, capsys)

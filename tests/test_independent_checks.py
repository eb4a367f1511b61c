"""The checks that compare a theory formula with an independent computation: they pass on the truth,
fail on a wrong formula, and the statistical one keeps its stated false-alarm rate."""
from __future__ import annotations

import numpy as np

from numerics.denoisers import normal_equations
from theory.linear_law import OPTIMAL
from verify.convergence import aitken
from verify.denoiser_checks import fit_check, formula_check
from verify.targets import make_target

TARGET = make_target("mixture", 3, 0)
LEVELS = np.array([10.0, 1.0, 0.1])


def truth(sigma):
    return OPTIMAL.affine(TARGET.mean, TARGET.cov, sigma)


def wrong_gain(sigma):  # 2% too much gain: a small but real formula error
    G, _ = truth(sigma)
    G = 1.02 * G
    return G, TARGET.mean - G @ TARGET.mean


def test_formula_check_passes_on_the_truth_and_fails_on_a_perturbation():
    numeric = lambda sigma: normal_equations(TARGET.mean, TARGET.cov, sigma)  # noqa: E731
    assert formula_check("R1", truth, numeric, LEVELS).passed
    assert not formula_check("R1", wrong_gain, numeric, LEVELS).passed
    perturbed = lambda sigma: (truth(sigma)[0] + 1e-7, truth(sigma)[1])  # noqa: E731
    assert not formula_check("R1", perturbed, numeric, LEVELS).passed


def test_fit_check_false_alarm_rate_is_at_most_its_level():
    """60 seeds at level 0.1: the true formula is rejected no more often than 0.1 (+3 binomial SE)."""
    rejections = sum(not fit_check("R1", truth, TARGET.sample, LEVELS, alpha=0.1, seed=seed).passed
                     for seed in range(60))
    assert rejections / 60 <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / 60)


def test_fit_check_detects_a_two_percent_gain_error():
    assert not fit_check("R1", wrong_gain, TARGET.sample, LEVELS, alpha=1e-3, seed=0).passed


def test_aitken_recovers_the_limit_of_a_geometric_error():
    limit, error = 3.0, np.array([0.4, 0.2, 0.1])  # order-1 convergence
    np.testing.assert_allclose(aitken(*(limit + error)), limit, rtol=1e-14)  # exact for a geometric sequence
    assert aitken(np.array(2.0), np.array(2.0), np.array(2.0)) == 2.0      # converged: no 0/0

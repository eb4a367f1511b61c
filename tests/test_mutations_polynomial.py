"""Mutation suite for the polynomial results (9-13): a planted error in a theory formula must make
``python -m verify.polynomial`` FAIL at the settings below, and the unmutated run must PASS.

Each row: (name, target attribute, replacement factory, argv, expected failing check). The factory
receives the original attribute and returns the mutant; it is applied with monkeypatch on the theory
side only (numerics never imports theory, so the sampler side cannot move with it).
Settings: ``--samples 500`` (the deterministic checks catch every row; 500 samples keep each run ~1 s).
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from verify import polynomial as cli

FAST = ["--samples", "500"]
ND = ["--dim", "2", "--degree", "2", "--samples", "64", "--n-train", "150"]  # default 32 steps: the probes need them


def wrong_gaussian_moment(original):
    return lambda order: 2.7 if order == 4 else original(order)  # E[n^4] = 2.7 instead of 3


def pairing_lost(original):
    return lambda positions: original(positions)[:-1] if len(positions) == 4 else original(positions)


def law_at_inflated_sigma(original):
    return lambda moments, degree: (lambda fn: (lambda s: fn(1.01 * s)))(original(moments, degree))


def wrong_binomial(original):
    from math import comb

    def noisy_moment(i, j, moments, sigma_value):  # drops the binomial factor C(j, l) for l >= 2
        return sum((1 if l else comb(j, l)) * sigma_value**l * (1, 0, 1, 0, 3, 0, 15, 0, 105, 0, 945)[l]
                   * moments[i + j - l] for l in range(0, j + 1, 2))
    return noisy_moment


def lower_quadrature_order(original):
    return lambda moments, points: original(moments, max(points - 1, 1))


def flow_step_scaled(original):
    def rhs(coefficient_fn):
        inner = original(coefficient_fn)
        return lambda t, state: inner(t, state) * np.r_[np.full(state.size // 2, 1.01), np.ones(state.size // 2)]
    return rhs


def variational_step_scaled(original):
    def rhs(coefficient_fn):
        inner = original(coefficient_fn)
        return lambda t, state: inner(t, state) * np.r_[np.ones(state.size // 2), np.full(state.size // 2, 1.05)]
    return rhs


def score_projection_off(original):
    return lambda moments, degree: original(moments, degree) * 1.05


def finite_step_coefficients_shifted(original):
    return lambda moments, sigma_value, degree=3: original(moments, 1.01 * sigma_value, degree)


def symbolic_coefficients_scaled(original):
    return lambda self, moments, sigma_value: original(self, moments, sigma_value) * 1.001


def cubature_one_order_short(original):
    return lambda points, weights=None, order=4: original(points, weights, order - 1)


def scaled_method(factor):
    return lambda original: (lambda self, *args: original(self, *args) * factor)


def field_scaled(flow_factor, trace_factor):
    def factory(original):
        def field(self, y, sigma_value):
            f, trace = original(self, y, sigma_value)
            return f * flow_factor, trace * trace_factor
        return field
    return factory


def inverse_to_inflated_sigma_max(original):
    return lambda denoiser, x, sigma_max, sigma_end, **kw: original(denoiser, x, 1.01 * sigma_max, sigma_end, **kw)


MUTATIONS = [
    ("Result 9: E[n^4] = 2.7 in the normal equations", "theory.polynomial.gaussian_moment",
     wrong_gaussian_moment, FAST, "Result 9: coefficients vs least-squares fit"),
    ("Result 9: binomial factor dropped (wrong coefficient formula)", "theory.polynomial.noisy_moment",
     wrong_binomial, FAST, "Result 9: coefficients vs least-squares fit"),
    ("Result 9: symbolic coefficients 0.1% off", "theory.polynomial.OptimalPolynomialDenoiser.evaluate",
     symbolic_coefficients_scaled, FAST, "Result 9: coefficients vs least-squares fit"),
    ("Result 10: quadrature with k points instead of k + 1", "theory.polynomial.gauss_quadrature",
     lower_quadrature_order, FAST, "moment equivalence (p vs its 4-point quadrature)"),
    ("Result 11: projected score 5% off", "theory.polynomial.score_projection",
     score_projection_off, FAST, "Result 11: projected score vs small-noise fit"),
    ("Result 12: E[n^4] = 2.7 in the flow's denoiser", "theory.polynomial_law.gaussian_moment",
     wrong_gaussian_moment, FAST, "Result 12: flow map T(z) vs heun 256 steps (probe)"),
    ("Result 12: law evaluated at 1.01 sigma", "theory.polynomial_law.optimal_coefficient_fn",
     law_at_inflated_sigma, FAST, "Result 12: flow map T(z) vs heun 256 steps (probe)"),
    ("Result 12: flow-map step dy/dt scaled by 1.01", "theory.polynomial_law._rhs",
     flow_step_scaled, FAST, "Result 12: flow map T(z) vs heun 256 steps (probe)"),
    ("Result 12: variational step dJ/dt scaled by 1.05", "theory.polynomial_law._rhs",
     variational_step_scaled, FAST, "exact density mass"),
    ("Result 13: finite-step denoisers at 1.01 sigma", "theory.polynomial_steps.coefficients",
     finite_step_coefficients_shifted, FAST, "Result 13: P_N(z) vs 3 Euler steps"),
    ("Result 14: cubature of order 2k - 1", "theory.polynomial_nd.positive_cubature",
     cubature_one_order_short, ND, "moment equivalence (total degree"),
    ("Result 14/15: one Isserlis pairing of four slots lost (E[n^4] = 2)", "theory.isserlis_gram.pairings",
     pairing_lost, ND, "Result 15 denoiser: moment normal equations vs least-squares fit"),
    ("Result 15: denoiser coefficients 0.1% off", "theory.polynomial_flow_nd.MultivariateDenoiser.coefficients",
     scaled_method(1.001), ND, "Result 15 denoiser: moment normal equations vs least-squares fit"),
    ("Result 15: flow step dy/dt scaled by 1.01", "theory.polynomial_flow_nd.MultivariateDenoiser.field",
     field_scaled(1.01, 1.0), ND, "Result 15: flow map T(z) vs heun 256 steps (probe)"),
    ("Result 15: log-det trace scaled by 1.01", "theory.polynomial_flow_nd.MultivariateDenoiser.field",
     field_scaled(1.0, 1.01), ND, "Result 15: log|det J| vs finite-difference sampler Jacobian"),
    ("Result 15: inverse flow run up to 1.01 sigma_max", "theory.polynomial_flow_nd.inverse_flow_nd",
     inverse_to_inflated_sigma_max, ND, "Result 15: inverse flow round trip T^-1(x) = z"),
]


def _resolve(target: str):
    """``(owner, attribute)`` for a dotted path ``module[.Class].attribute``."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:-1]:
            owner = getattr(owner, name)
        return owner, parts[-1]
    raise ValueError(f"cannot resolve {target!r}")


def failing_checks(argv, capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().out


@pytest.mark.parametrize("argv", [FAST, ND], ids=["1-D", "2-D"])
def test_clean_run_passes(argv, capsys):
    code, out = failing_checks(argv, capsys)
    assert code == 0, out


@pytest.mark.parametrize("name,target,factory,argv,check", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutant_fails_its_check(name, target, factory, argv, check, monkeypatch, capsys):
    owner, attribute = _resolve(target)
    monkeypatch.setattr(owner, attribute, factory(getattr(owner, attribute)))
    code, out = failing_checks(argv, capsys)
    row = next((line for line in out.splitlines() if line.startswith(check)), None)
    assert code == 1, out
    assert row is not None and row.rstrip().endswith("FAIL"), out

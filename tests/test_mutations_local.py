"""Mutation rows for ``verify.local``: a planted error in a theory formula must make the CLI FAIL.

Each row: (name, target attribute, replacement factory, CLI argv, a check that must fail).
"""
import numpy as np
import pytest

import theory.local
import theory.local_fourier
import theory.local_mosaic
import theory.local_polynomial
from verify import local
from verify.check import Check

FAST = ["--steps", "6", "--samples", "200", "--texture-size", "5", "--n-train", "10", "--mosaic-samples", "8",
        "--mosaic-steps", "4"]


def _no_noise_term(original):
    return lambda cov_iN, cov_NN, sigma_value: original(cov_iN, cov_NN, 1e-3 * sigma_value)


def _wrapped_window(original):
    return lambda shape, patch, boundary: original(shape, patch, "circular")


def _spectrum_plus_2_percent(original):
    def mutated(mean, cov, shape):
        mu_bar, S = original(mean, cov, shape)
        return mu_bar, 1.02 * S
    return mutated


def _gain_sigma_not_squared(original):
    return lambda S, sigma_value: original(S, np.sqrt(sigma_value))


def _kernel_gain_unnormalized(original):
    return lambda kernel: original(kernel) / np.prod(kernel.shape[2:])


def _kernel_matrix_ignores_boundary(original):
    return lambda kernel, boundary: original(kernel, "circular")


def _posterior_temperature_doubled(original):
    return lambda z, atoms, sigma_value: original(z, atoms, np.sqrt(2) * sigma_value)


def _patches_reflected(original):
    return lambda images, shape, patch, boundary: original(images, shape, patch, "reflect")


def _noise_weights_sigma_not_squared(original):
    return lambda total, sigma_value: original(total, np.sqrt(sigma_value))


def _moments_zero_padded(original):
    def mutated(train, shape, patch, order):
        saved = theory.local_polynomial.image_patches
        theory.local_polynomial.image_patches = lambda t, s, p, b: saved(t, s, p, "zeros")
        try:
            return original(train, shape, patch, order)
        finally:
            theory.local_polynomial.image_patches = saved
    return mutated


MUTATIONS = [
    ("patch gain without sigma^2", theory.local, "patch_gain", _no_noise_term, "patch 3x3 zeros: exact probe: covariance"),
    ("patch neighbourhood wrapped", theory.local, "neighbourhoods", _wrapped_window,
     "patch 3x3 zeros: exact probe: covariance"),
    ("stationary spectrum +2%", theory.local_fourier, "stationary_spectrum", _spectrum_plus_2_percent,
     "circular FFT: exact probe: covariance"),
    ("Wiener gain with sigma", theory.local_fourier, "wiener_gain", _gain_sigma_not_squared,
     "circular FFT: exact probe: covariance"),
    ("kernel gain without h w", theory.local_fourier, "kernel_gain", _kernel_gain_unnormalized,
     "kernel circular: exact probe: covariance"),
    ("zero padding read as circular", theory.local_fourier, "kernel_matrix", _kernel_matrix_ignores_boundary,
     "kernel zeros: exact probe: covariance"),
    ("posterior temperature doubled", theory.local_mosaic, "_posterior", _posterior_temperature_doubled,
     "LS: output = posterior mean"),
    ("training patches reflected", theory.local_mosaic, "image_patches", _patches_reflected,
     "LS: output = posterior mean"),
    ("polynomial noise weights with sigma", theory.local_polynomial, "_gaussian_weights",
     _noise_weights_sigma_not_squared, "patch polynomial k=2 (3x3 circular): output = moment formula"),
    ("polynomial moments of zero-padded patches", theory.local_polynomial, "patch_moments", _moments_zero_padded,
     "patch polynomial k=2 (3x3 circular): output = moment formula"),
]


@pytest.mark.parametrize("name, module, attribute, mutate, failing", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutation_fails_verify_local(name, module, attribute, mutate, failing, monkeypatch, capsys):
    monkeypatch.setattr(module, attribute, mutate(getattr(module, attribute)))
    found = []
    original_verdict = local.report.verdict

    def record(checks: list[Check]) -> bool:
        found.extend(c.name for c in checks if not c.passed)
        return original_verdict(checks)

    monkeypatch.setattr(local.report, "verdict", record)
    assert local.main(FAST) == 1, f"mutation {name!r} went undetected"
    assert failing in found

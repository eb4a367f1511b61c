"""Mutation rows for ``verify.local`` (Results L1–L4), on the machinery of ``tests/mutations.py``.

Each planted error in a theory formula must make ``python -m verify.local`` exit 1 with the named check failing.
"""
import numpy as np
import pytest

from mutations import Mutation, assert_caught, fresh_caches, run_cli  # noqa: F401 (fresh_caches: a fixture)

LOCAL = ("--steps", "6", "--samples", "200", "--texture-size", "5", "--n-train", "10", "--mosaic-samples", "8",
         "--mosaic-steps", "4")


def _no_noise_term(original):
    return lambda cov_iN, cov_NN, sigma_value: original(cov_iN, cov_NN, 1e-3 * sigma_value)


def _wrapped_window(original):
    return lambda shape, patch, boundary: original(shape, patch, "circular")


def _spectrum_plus_2_percent(original):
    def mutated(mean, cov, shape):
        mu_bar, S = original(mean, cov, shape)
        return mu_bar, 1.02 * S
    return mutated


def _sigma_not_squared(original):
    return lambda S, sigma_value: original(S, np.sqrt(sigma_value))


def _kernel_gain_unnormalized(original):
    return lambda kernel: original(kernel) / np.prod(kernel.shape[2:])


def _boundary_ignored(original):
    return lambda kernel, boundary: original(kernel, "circular")


def _temperature_doubled(original):
    return lambda z, atoms, sigma_value: original(z, atoms, np.sqrt(2) * sigma_value)


def _padding(mode):
    return lambda original: lambda images, shape, patch, boundary: original(images, shape, patch, mode)


def _noise_weights_sigma_not_squared(original):
    return lambda total, sigma_value: original(total, np.sqrt(sigma_value))


POLYNOMIAL = "patch polynomial k=2 (3x3 circular): output = moment formula"
MUTATIONS = [
    Mutation("L1 patch gain without sigma^2", "theory.local:patch_gain", _no_noise_term, "verify.local", LOCAL,
             "patch 3x3 zeros: exact probe: covariance"),
    Mutation("L1 zero-padded neighbourhood wrapped", "theory.local:neighbourhoods", _wrapped_window, "verify.local",
             LOCAL, "patch 3x3 zeros: exact probe: covariance"),
    Mutation("L2 stationary spectrum +2%", "theory.local_fourier:stationary_spectrum", _spectrum_plus_2_percent,
             "verify.local", LOCAL, "circular FFT: exact probe: covariance"),
    Mutation("L2 Wiener gain with sigma", "theory.local_fourier:wiener_gain", _sigma_not_squared, "verify.local",
             LOCAL, "circular FFT: exact probe: covariance"),
    Mutation("L2 kernel gain without h w", "theory.local_fourier:kernel_gain", _kernel_gain_unnormalized,
             "verify.local", LOCAL, "kernel circular: exact probe: covariance"),
    Mutation("L2 zero padding read as circular", "theory.local_fourier:kernel_matrix", _boundary_ignored,
             "verify.local", LOCAL, "kernel zeros: exact probe: covariance"),
    Mutation("L3 posterior temperature doubled", "theory.local_mosaic:_posterior", _temperature_doubled,
             "verify.local", LOCAL, "LS: output = posterior mean"),
    Mutation("L3 training patches reflected", "theory.local_mosaic:image_patches", _padding("reflect"),
             "verify.local", LOCAL, "LS: output = posterior mean"),
    Mutation("L4 noise weights with sigma", "theory.local_polynomial:_gaussian_weights",
             _noise_weights_sigma_not_squared, "verify.local", LOCAL, POLYNOMIAL),
    Mutation("L4 moments of zero-padded patches", "theory.local_polynomial:image_patches", _padding("zeros"),
             "verify.local", LOCAL, POLYNOMIAL),
]


pytestmark = pytest.mark.usefixtures("fresh_caches")


def test_unmutated_run_passes(capsys):
    code, output = run_cli("verify.local", LOCAL, capsys)
    assert code == 0, output


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutant_is_caught(mutation, monkeypatch, capsys):
    assert_caught(mutation, monkeypatch, capsys)

"""Checks of the equivariant patch polynomial denoiser (Result L4): readout from patch moments, k = 1, equivalence."""
from __future__ import annotations

import numpy as np
import torch

from numerics.local_polynomial import PatchPolynomialDenoiser
from theory.linear import TrainingSetLaw
from theory.local_fourier import kernel_matrix, optimal_kernel, stationary_spectrum
from theory.local_polynomial import polynomial_denoise
from verify.check import Check

LEVELS = (0.1, 1.0)  # noise levels of the comparison (digit pixels are in [0, 1])
RTOL = 1e-8          # float64 normal equations of 55 monomials, condition up to ~1e6 at sigma = 0.1


def _relative(a, b) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _row(name, error, claim) -> Check:
    return Check(name, error, None, error <= RTOL, claim, f"{error:.2e}", f"<= {RTOL:g} relative, sigma in {LEVELS}")


def kernel_output(y, train, shape, sigma_value) -> np.ndarray:
    """Result L2's optimal circular 3x3 kernel of the training set's moments, applied densely."""
    c, h, w = shape
    mean, cov = TrainingSetLaw.moments(train)
    mu_bar, S = stationary_spectrum(mean, cov, shape)
    K = kernel_matrix(optimal_kernel(S.reshape(h * w, c, c), shape, 3, sigma_value), "circular")
    centre = np.repeat(mu_bar, h * w)
    return y @ K.T + centre - K @ centre


def polynomial_checks(cfg, train, probe_images, seed: int) -> list[Check]:
    """Numerics vs the moment formula (degree ``k``), degree 1 vs the optimal kernel, shift-equivalent training sets."""
    shape, k = cfg.shape, cfg.degree
    y = torch.as_tensor(probe_images)
    rng = np.random.default_rng([seed, 4])
    shifted = np.stack([np.roll(t.reshape(shape), tuple(rng.integers(0, shape[1:])), axis=(1, 2)).ravel() for t in train])
    machine, linear = PatchPolynomialDenoiser(train, shape, 3, k), PatchPolynomialDenoiser(train, shape, 3, 1)
    twin = PatchPolynomialDenoiser(shifted, shape, 3, k)
    formula = max(_relative(machine(y, s).numpy(), polynomial_denoise(probe_images, train, shape, 3, k, s))
                  for s in LEVELS)
    degree_one = max(_relative(linear(y, s).numpy(), kernel_output(probe_images, train, shape, s)) for s in LEVELS)
    equivalent = max(_relative(twin(y, s).numpy(), machine(y, s).numpy()) for s in LEVELS)
    return [_row(f"patch polynomial k={k} (3x3 circular): output = moment formula", formula, "readout from patch moments"),
            _row("patch polynomial k=1 = optimal 3x3 kernel", degree_one, "Result L2 on the training moments"),
            _row(f"patch polynomial k={k}: moment equivalence", equivalent,
                 "same denoiser for circularly shifted training images")]

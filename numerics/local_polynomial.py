"""The equivariant patch polynomial denoiser: one readout of the patch monomials shared by every pixel.

``D(y)_q = B phi(z_q)`` with ``z_q`` the circular ``p x p`` patch of pixel ``q`` and ``phi`` every
monomial of total degree ``<= k`` in its ``c p^2`` entries. ``B`` minimizes the denoising loss on a
training set with the noise expectation taken exactly: the circular patch holds distinct pixels, so
its noise entries are independent and ``E prod_j (x_j + sigma n_j)^{a_j} = prod_j h_{a_j}(x_j)``,
``h_a(x) = sum_{l even} C(a, l) x^{a - l} sigma^l (l - 1)!!``.
"""
from __future__ import annotations

from functools import cache
from itertools import combinations_with_replacement
from math import comb

import numpy as np
import torch

from numerics import validation
from numerics.denoisers import check_width
from numerics.local import image_shape, patch_size, patches
from numerics.local_memorizing import training_patches


@cache
def exponents(m: int, k: int) -> np.ndarray:
    """``(F, m)`` exponent vectors of the monomials of total degree ``<= k`` in ``m`` variables, degree order."""
    rows = [np.bincount(np.array(c, dtype=int), minlength=m) for degree in range(k + 1)
            for c in combinations_with_replacement(range(m), degree)]
    return np.array(rows).reshape(-1, m)


def noisy_power_mean(x: np.ndarray, a: int, sigma: float) -> np.ndarray:
    """``E (x + sigma n)^a`` for ``n ~ N(0, 1)``, element-wise."""
    total = np.zeros_like(x)
    for l in range(0, a + 1, 2):
        double_factorial = np.prod(np.arange(l - 1, 0, -2)) if l > 1 else 1
        total = total + comb(a, l) * x ** (a - l) * sigma**l * double_factorial
    return total


def normal_equations(T: np.ndarray, centres: np.ndarray, k: int, sigma: float):
    """``(M, V)``: position- and image-averaged ``E phi phi^T`` and ``E phi x_centre^T`` over training patches ``T``."""
    E = exponents(T.shape[1], k)
    powers = [noisy_power_mean(T, a, sigma) for a in range(2 * k + 1)]   # (P, m) each
    F = len(E)
    M = np.empty((F, F))
    for i in range(F):
        for j in range(i, F):
            total = E[i] + E[j]
            M[i, j] = M[j, i] = np.mean(np.prod([powers[t][:, col] for col, t in enumerate(total)], axis=0))
    phi_mean = np.stack([np.prod([powers[t][:, col] for col, t in enumerate(e)], axis=0) for e in E], axis=1)
    return M, phi_mean.T @ centres / len(T)


class PatchPolynomialDenoiser:
    """Optimal shared readout of degree-``k`` patch monomials (circular patches) for a training set."""

    def __init__(self, train, shape, patch: int, degree: int):
        self.shape = image_shape(shape)
        self.patch = patch_size(patch, self.shape)
        self.degree = validation.positive_int(degree, "degree")
        T = training_patches(train, self.shape, self.patch, "circular")        # (n, hw, m)
        self.T = T.reshape(-1, T.shape[2]).numpy()
        centre = np.arange(self.shape[0]) * self.patch**2 + (self.patch**2 - 1) // 2
        self.centres = self.T[:, centre]
        self._readouts = {}

    def readout(self, sigma: float) -> np.ndarray:
        """``B`` (``c x F``) at noise level ``sigma``: least squares on the exact normal equations."""
        sigma = validation.positive(sigma, "sigma")
        if sigma not in self._readouts:
            M, V = normal_equations(self.T, self.centres, self.degree, sigma)
            self._readouts[sigma] = np.linalg.lstsq(M, V, rcond=None)[0].T
        return self._readouts[sigma]

    def __call__(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        check_width(y, int(np.prod(self.shape)))
        B = torch.as_tensor(self.readout(sigma), dtype=y.dtype, device=y.device)
        z = patches(y.reshape(len(y), *self.shape), self.patch, "circular")      # (n, hw, m)
        E = torch.as_tensor(exponents(z.shape[2], self.degree), dtype=y.dtype, device=y.device)
        phi = torch.prod(z[:, :, None, :] ** E, dim=3)                            # (n, hw, F)
        return (phi @ B.T).permute(0, 2, 1).reshape(len(y), -1)

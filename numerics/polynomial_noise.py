"""Total-degree least squares with the Gaussian noise integrated in closed form, in any dimension.

The fit of :func:`numerics.polynomial.fit_multivariate` minimizes ``E_{x0 ~ atoms, n ~ N(0, I)} |phi(u) C - x0|^2``,
``u = (x0 + sigma n - center) / scale``. Its normal equations need ``E[phi_a(u) phi_b(u)]`` and ``E[phi_a(u) x0]``:
expectations of monomials of ``u``, which factor over coordinates given the atom. Per atom and coordinate
``E[(v + tau n)^p] = sum_{m even} C(p, m) v^(p-m) tau^m (m-1)!!`` (``v = (x0 - center)/scale``, ``tau = sigma/scale``),
so no quadrature rule is needed: exact where no Gaussian rule of degree ``2k + 1`` is at hand (``d > 3``, ``k = 3``).
"""
from __future__ import annotations

from math import comb

import numpy as np

from numerics.polynomial import (MultivariatePolynomial, _degree, _law, _levels, _scaling, monomial_exponents,
                                 solve_normal)

MAX_MOMENTS = 20000  # distinct monomials of degree <= 2k (d = 8, k = 3: 3003); beyond, the (n, M, d) table is large


def _double_factorial(m: int) -> int:
    return 1 if m <= 0 else m * _double_factorial(m - 2)


def coordinate_moments(v: np.ndarray, tau: np.ndarray, order: int) -> np.ndarray:
    """``P[i, j, p] = E[(v_ij + tau_j n)^p]``, ``n ~ N(0, 1)``, ``p = 0 .. order`` (binomial in the Gaussian moments)."""
    P = np.zeros(v.shape + (order + 1,))
    for p in range(order + 1):
        for m in range(0, p + 1, 2):
            P[..., p] += comb(p, m) * v ** (p - m) * tau ** m * _double_factorial(m - 1)
    return P


def _exponents(combos, d: int) -> np.ndarray:
    """Index tuples (repeats = powers) as exponent vectors ``(F, d)``."""
    e = np.zeros((len(combos), d), dtype=np.int64)
    for row, c in enumerate(combos):
        np.add.at(e[row], list(c), 1)
    return e


def _expected_monomials(P: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """``M[i, g] = prod_j P[i, j, exponents[g, j]]``: each monomial's expectation given atom ``i``."""
    d = P.shape[1]
    return np.prod(P[:, np.arange(d)[None, :], exponents], axis=2)


class _Pairs:
    """The monomials ``phi`` and the distinct products ``phi_a phi_b`` (degree <= 2k), indexed once."""

    def __init__(self, d: int, k: int):
        self.phi = _exponents(monomial_exponents(d, k), d)
        sums = (self.phi[:, None, :] + self.phi[None, :, :]).reshape(-1, d)
        self.products, self.index = np.unique(sums, axis=0, return_inverse=True)
        self.index = self.index.reshape(len(self.phi), len(self.phi))


def fit_multivariate_exact(atoms, weights, sigmas, degree: int) -> MultivariatePolynomial:
    """The total-degree-``k`` least-squares denoiser of ``atoms`` (weights uniform if None) at each level, the
    Gaussian noise integrated in closed form (:func:`coordinate_moments`); the same scaling and monomials as
    :func:`numerics.polynomial.fit_multivariate`.
    """
    a, w = _law(atoms, weights)
    k, levels = _degree(degree), _levels(sigmas)
    n, d = a.shape
    moments = comb(d + 2 * k, d)
    if moments > MAX_MOMENTS:
        raise ValueError(f"dim {d} with degree {k} has {moments} monomials of degree <= 2k > {MAX_MOMENTS}: "
                         "lower the degree or the dimension")
    pairs, table = _Pairs(d, k), {}
    for sigma in levels:
        center, scale = _scaling(a, w, sigma)
        P = coordinate_moments((a - center) / scale, sigma / scale, 2 * k)
        gram = (w @ _expected_monomials(P, pairs.products))[pairs.index]   # E[phi_a(u) phi_b(u)]
        rhs = (_expected_monomials(P, pairs.phi) * w[:, None]).T @ a          # E[phi_a(u) x0]
        table[sigma] = (center, scale, solve_normal(gram, rhs))
    return MultivariatePolynomial(table, d, k)

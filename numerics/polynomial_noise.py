"""Total-degree least squares with the Gaussian noise integrated in closed form, in any dimension.

The fit of :func:`numerics.polynomial.fit_multivariate` minimizes ``E_{x0 ~ atoms, n ~ N(0, I)} |phi(u) C - x0|^2``,
``u = (y - center) / scale``, ``y = x0 + sigma n``. Each monomial is ``phi_a(u) = (y - center)^a / scale^a``, and
``(y - center)^a`` expands over the sub-monomials ``nu`` of ``a`` (subsets ``T`` of its index slots) as
``sum_T v^(a \\ T) sigma^|T| n^T``, ``v = x0 - center``. So, with ``V_T[i, a] = v_i^(a \\ T)`` and the standard
normal moment matrix ``N[f, g] = E[n^f n^g]``,

    E[phi_a phi_b] scale^a scale^b = sum_{T, T'} sigma^(|T| + |T'|) (V_T^T W V_T')[a, b] N[T(a), T'(b)],

a polynomial in ``sigma^2`` whose coefficient matrices are formed once per law: every noise level then costs
one scaling and one solve. No quadrature rule is needed: exact where no Gaussian rule of degree ``2k + 1``
is at hand, and in high dimension (``d = 64``, ``k = 2``: 2145 monomials, 16 products of (n x 2145) blocks).
"""
from __future__ import annotations

import itertools
from math import comb

import numpy as np

from numerics.progress import bar
from numerics.polynomial import MultivariatePolynomial, _degree, _law, _levels, monomial_exponents, solve_normal

MAX_FEATURES = 5000  # monomials of degree <= k: (k + 1) coefficient matrices of F x F float64 (d = 64, k = 3: 47905)


def _double_factorial(m: int) -> int:
    return 1 if m <= 0 else m * _double_factorial(m - 2)


def normal_moment_matrix(combos, d: int) -> np.ndarray:
    """``N[f, g] = E[n^f n^g]``, ``n ~ N(0, I_d)``: per coordinate ``E[n^p] = (p - 1)!!`` for even ``p``, else 0."""
    count = {c: np.bincount(np.asarray(c, dtype=np.int64), minlength=d) for c in combos}
    out = np.zeros((len(combos), len(combos)))
    by_parity: dict = {}
    for f, c in enumerate(combos):  # only monomials with the same odd-power set can pair to an even one
        by_parity.setdefault(tuple(np.flatnonzero(count[c] % 2)), []).append(f)
    for members in by_parity.values():
        for f, g in itertools.product(members, repeat=2):
            total = count[combos[f]] + count[combos[g]]
            out[f, g] = np.prod([_double_factorial(p - 1) for p in total if p])
    return out


def _sub_monomials(combos, k: int):
    """For each slot subset ``T`` of ``k`` slots: ``(rest, column, size)``: per monomial ``a`` the index tuple of
    ``a \\ T`` (None where ``T`` reaches past ``a``), the row of ``T(a)`` among ``combos``, and ``|T|``."""
    where = {c: i for i, c in enumerate(combos)}
    for size in range(k + 1):
        for T in itertools.combinations(range(k), size):
            rest = [None if T and T[-1] >= len(c) else tuple(c[p] for p in range(len(c)) if p not in T) for c in combos]
            column = [0 if r is None else where[tuple(c[p] for p in T)] for r, c in zip(rest, combos)]
            yield rest, np.array(column), size


def _values(v: np.ndarray, rest) -> np.ndarray:
    """``V[i, a] = prod_{j in rest_a} v_ij`` (0 where ``rest_a`` is None)."""
    out = np.zeros((v.shape[0], len(rest)))
    for a, r in enumerate(rest):
        if r is not None:
            out[:, a] = np.prod(v[:, list(r)], axis=1)
    return out


class _RawNormalEquations:
    """Coefficients, in powers of ``sigma^2``, of ``E[(y - c)^a (y - c)^b]`` and ``E[(y - c)^a x0]``."""

    def __init__(self, a: np.ndarray, w: np.ndarray, k: int):
        self.combos = monomial_exponents(a.shape[1], k)
        self.center = w @ a
        v, N = a - self.center, normal_moment_matrix(self.combos, a.shape[1])
        subs = [(_values(v, rest), column, size) for rest, column, size in _sub_monomials(self.combos, k)]
        F = len(self.combos)
        self.gram = np.zeros((k + 1, F, F))
        self.rhs = np.zeros((k + 1, F, a.shape[1]))
        for (V, col, s), (V2, col2, s2) in itertools.product(subs, repeat=2):
            if (s + s2) % 2 == 0:  # odd total powers of the noise vanish
                self.gram[(s + s2) // 2] += (V.T @ (w[:, None] * V2)) * N[np.ix_(col, col2)]
        for V, col, s in subs:
            if s % 2 == 0:  # E[n^T] = N[T, ()], the empty monomial's column
                self.rhs[s // 2] += (V * N[col, 0][None, :]).T @ (w[:, None] * a)
        self.variance = w @ v**2
        self.powers = np.stack([np.bincount(np.asarray(c, dtype=np.int64), minlength=a.shape[1]) for c in self.combos])


def fit_multivariate_exact(atoms, weights, sigmas, degree: int, *, progress: bool = False) -> MultivariatePolynomial:
    """The total-degree-``k`` least-squares denoiser of ``atoms`` (weights uniform if None) at each level, the
    Gaussian noise integrated in closed form (:class:`_RawNormalEquations`); the same scaling and monomials as
    :func:`numerics.polynomial.fit_multivariate`.
    """
    a, w = _law(atoms, weights)
    k, levels = _degree(degree), _levels(sigmas)
    features = comb(a.shape[1] + k, k)
    if features > MAX_FEATURES:
        raise ValueError(f"dim {a.shape[1]} with degree {k} has {features} monomials of degree <= k > {MAX_FEATURES}: "
                         "lower the degree or the dimension")
    raw, table = _RawNormalEquations(a, w, k), {}
    shown = bar(len(levels), "closed-form least-squares fit per noise level", progress)
    for sigma in levels:
        scale = np.sqrt(raw.variance + sigma**2)
        powers = sigma ** (2 * np.arange(k + 1))
        scale_a = np.prod(scale ** raw.powers, axis=1)  # u^a = (y - center)^a / scale^a
        gram = np.tensordot(powers, raw.gram, axes=1) / np.outer(scale_a, scale_a)
        rhs = np.tensordot(powers, raw.rhs, axes=1) / scale_a[:, None]
        table[sigma] = (raw.center, scale, solve_normal(gram, rhs))
        shown.update()
    shown.close()
    return MultivariatePolynomial(table, a.shape[1], k)

"""Result 14: multivariate moment equivalence of polynomial denoisers, and positive cubature surrogates.

In ``d`` dimensions the optimal denoiser over a linear span of features ``h(y)`` that are polynomials of
degree ``<= k`` in ``y`` solves ``E[h h^T] C = E[h x0^T]``. With ``y = x0 + sigma n`` and ``n`` independent
of ``x0``, every entry of ``E[h h^T]`` is a polynomial of degree ``<= 2k`` in ``x0`` averaged over ``p``,
and every entry of ``E[h x0^T]`` one of degree ``<= k + 1``: the optimum, at every sigma and for any noise
law, depends on ``p`` only through its mixed moments ``E[x0^alpha]``, ``|alpha| <= 2k`` (Gram matrix) and
``|alpha| <= k + 1`` (right-hand side). :func:`positive_cubature` builds a small atomic law matching all of
them (Tchakaloff: at most as many atoms as moments), the surrogate for non-product targets.
"""
from __future__ import annotations

import itertools
from math import comb, prod

import numpy as np
import sympy as sp
from scipy.optimize import nnls

from numerics import validation
from theory.polynomial import _degree, gaussian_moment
from theory.result import Result
from theory.symbols import sigma

CUBATURE_RTOL = 1e-10  # relative moment residual of the NNLS + support least-squares cubature (~1e-14 measured)


def multi_indices(dim: int, order: int) -> list[tuple[int, ...]]:
    """Exponent vectors ``alpha`` in ``N^dim`` with ``|alpha| <= order``, by increasing order.

    >>> multi_indices(2, 2)
    [(0, 0), (0, 1), (1, 0), (0, 2), (1, 1), (2, 0)]
    """
    d, r = validation.positive_int(dim, "dim"), _degree(order, "order")
    out = []
    for total in range(r + 1):
        counts = [tuple(c.count(i) for i in range(d))
                  for c in itertools.combinations_with_replacement(range(d), total)]
        out += sorted(counts)
    return out


def noisy_mixed_moment(alpha, beta, moment, sigma_value):
    """``E[x0^beta y^alpha]``, ``y = x0 + sigma n``: ``sum_{g <= alpha} C(alpha, g) sigma^|g| E[n^g] m_{alpha+beta-g}``.

    ``moment(multi_index)`` returns ``E[x0^multi_index]``; entries may be sympy expressions.

    >>> noisy_mixed_moment((2, 0), (0, 0), lambda a: sp.Symbol(f"m_{a[0]}{a[1]}"), sigma)
    m_00*sigma**2 + m_20
    """
    total = 0
    for g in itertools.product(*(range(0, a + 1, 2) for a in alpha)):  # odd Gaussian moments vanish
        weight = prod(comb(a, gi) * gaussian_moment(gi) for a, gi in zip(alpha, g))
        total += weight * sigma_value ** sum(g) * moment(tuple(a + b - gi for a, b, gi in zip(alpha, beta, g)))
    return total


def normal_system(dim: int, degree: int, moment, sigma_value):
    """Gram ``M[a][b] = E[y^(a+b)]`` and right-hand side ``V[a][i] = E[x0_i y^a]`` over monomials ``|a| <= k``."""
    basis, units = multi_indices(dim, degree), [tuple(int(i == j) for j in range(dim)) for i in range(dim)]
    zero = (0,) * dim
    M = [[noisy_mixed_moment(tuple(x + y for x, y in zip(a, b)), zero, moment, sigma_value) for b in basis]
         for a in basis]
    V = [[noisy_mixed_moment(a, e, moment, sigma_value) for e in units] for a in basis]
    return M, V


def moments_used(dim: int, degree: int) -> dict:
    """Orders of the mixed moments in the symbolic normal equations: ``{"gram": .., "rhs": ..}`` (sorted).

    >>> moments_used(2, 2)
    {'gram': [0, 1, 2, 3, 4], 'rhs': [1, 2, 3]}
    """
    symbol = lambda a: sp.Symbol("m_" + "_".join(map(str, a)))
    M, V = normal_system(dim, degree, symbol, sigma)
    orders = lambda rows: sorted({sum(map(int, s.name[2:].split("_")))
                                  for e in itertools.chain(*rows) for s in sp.sympify(e).free_symbols - {sigma}})
    return {"gram": orders(M), "rhs": orders(V)}


def _monomial_matrix(x: np.ndarray, indices) -> np.ndarray:
    """``(len(indices), n)`` values ``x_r^alpha``."""
    return np.stack([np.prod(x ** np.asarray(a), axis=1) for a in indices])


def positive_cubature(points, weights=None, order: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Atoms (a subset of ``points``) and weights ``>= 0`` with all mixed moments ``|alpha| <= order`` of the law.

    Non-negative least squares on the moment equations over the candidate atoms ``points`` (in whitened
    coordinates, which preserve moment matching), then least squares on the support found; ValueError if
    the residual exceeds :data:`CUBATURE_RTOL`. At most ``C(d + order, d)`` atoms (Caratheodory).
    """
    x = validation.finite_array(points, "points", ndim=2)
    n, d = x.shape
    w = np.full(n, 1.0 / n) if weights is None else validation.finite_array(weights, "weights", ndim=1)
    mean = w @ x
    L = np.linalg.cholesky(np.cov(x.T, aweights=w, bias=True).reshape(d, d) + 1e-300 * np.eye(d))
    u = np.linalg.solve(L, (x - mean).T).T
    A = _monomial_matrix(u, multi_indices(d, _degree(order, "order")))
    b = A @ w
    v, _ = nnls(A, b, maxiter=50 * A.shape[1])
    support = np.flatnonzero(v > 0)
    refined = np.linalg.lstsq(A[:, support], b, rcond=None)[0]
    if np.all(refined >= 0):
        v = np.zeros(n)
        v[support] = refined
    residual = float(np.max(np.abs(A @ v - b)) / np.max(np.abs(b)))
    if residual > CUBATURE_RTOL:
        raise ValueError(f"no positive cubature of order {order} on these points: residual {residual:.2e}")
    keep = v > 0
    return x[keep], v[keep] / v[keep].sum()


class MultivariateMomentEquivalence(Result):
    """Result 14: polynomial and random-feature denoisers in ``d`` dims see ``p`` only through its mixed moments.

    >>> MultivariateMomentEquivalence().formulas["gram orders"].rhs
    2*k
    """

    def __init__(self):
        k = sp.Symbol("k", integer=True, positive=True)
        alpha = sp.Symbol("|alpha|", integer=True, nonnegative=True)
        super().__init__(
            name="Multivariate moment equivalence of polynomial denoisers",
            statement=("Let the denoiser class be $D(y) = C^T h(y)$ with features $h$ polynomials of degree "
                       "$\\le k$ in $y$: all monomials of total degree $\\le k$, or random features "
                       "$h(y) = ((R u)^{\\odot j})_{j \\le k} \\cup \\{1\\}$ with $u = (y - c)/s$ and a fixed "
                       "$R \\in \\mathbb{R}^{m \\times d}$. The optimum solves $\\mathbb{E}[h h^T] C = "
                       "\\mathbb{E}[h x_0^T]$; with $y = x_0 + \\sigma n$, $n$ independent of $x_0$ (Gaussian "
                       "or any fixed law, e.g. shared noise nodes), the Gram matrix involves the mixed "
                       "moments $\\mathbb{E}[x_0^\\alpha]$ with $|\\alpha| \\le 2k$ and the right-hand side "
                       "those with $|\\alpha| \\le k + 1$. For random features only the combinations reached "
                       "by the features enter: moments of $R x_0$ (products of two features, order "
                       "$\\le 2k$) and cross moments $\\mathbb{E}[x_0 (R x_0)^\\beta]$, $|\\beta| \\le k$. Hence "
                       "two laws with equal mixed moments of order $\\le 2k$ give the same denoiser at every "
                       "$\\sigma$ and the same generated law with every sampler. A normalization $(c, s)$ "
                       "must be data-independent or a function of these moments (mean and variance are); "
                       "a data-dependent statistic such as $\\max_i |x_i|$ over the training set must match "
                       "too. Product Gauss rules match all mixed moments only for product targets; "
                       "a positive cubature (Tchakaloff) matches them for any target."),
            assumptions=("$p$ has finite mixed moments of order $\\le 2k$",
                         "$n$ independent of $x_0$ with finite moments; the same noise law for both targets",
                         "the Gram matrix is positive definite (else the minimum-norm solution is meant)"),
            formulas={"gram orders": sp.Eq(sp.Symbol("max|alpha|_Gram"), 2 * k),
                      "rhs orders": sp.Eq(sp.Symbol("max|alpha|_rhs"), k + 1),
                      "noisy moment": sp.Eq(sp.Symbol("E[y^alpha]"),
                                            sp.Symbol("sum_g C(alpha,g) sigma^|g| E[n^g] m_(alpha-g)"))},
        )
        object.__setattr__(self, "order_symbol", alpha)

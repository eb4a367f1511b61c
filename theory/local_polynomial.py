"""Result: the equivariant patch polynomial denoiser, from the position-averaged patch moments.

The readout ``B`` of ``D(y)_q = B phi(z_q)`` (monomials ``phi`` of total degree ``<= k`` of the circular
patch ``z_q``) solves ``M B^T = V``. With independent noise entries (distinct pixels), each entry of
``M`` and ``V`` is a fixed combination of the clean patch moments ``m_gamma = E x_N^gamma`` averaged
over positions, ``|gamma| <= 2k``: the denoiser sees the target only through them.
"""
from __future__ import annotations

from itertools import combinations_with_replacement, product
from math import comb, prod

import numpy as np
import sympy as sp
import sympy.stats as ss

from theory.local_mosaic import image_patches
from theory.result import Result
from theory.symbols import sigma


def monomials(m: int, k: int) -> list[tuple[int, ...]]:
    """Exponent tuples of total degree ``<= k`` in ``m`` variables."""
    out = []
    for degree in range(k + 1):
        for chosen in combinations_with_replacement(range(m), degree):
            out.append(tuple(chosen.count(j) for j in range(m)))
    return out


def patch_moments(train, shape, patch: int, order: int) -> dict:
    """``gamma -> m_gamma``: moments of the circular training patches averaged over images and positions."""
    T = image_patches(train, shape, patch, "circular").reshape(-1, shape[0] * patch * patch)
    return {g: float(np.mean(np.prod(T ** np.array(g), axis=1))) for g in monomials(T.shape[1], order)}


def _gaussian_weights(total: tuple[int, ...], sigma_value: float):
    """``(l, weight)`` with ``E prod (x_j + sigma n_j)^{s_j} = sum_l weight_l x^{s - l}`` (even ``l`` only)."""
    ranges = [range(0, s + 1, 2) for s in total]
    for l in product(*ranges):
        weight = prod(comb(s, lj) * prod(range(lj - 1, 0, -2)) for s, lj in zip(total, l))
        yield l, weight * sigma_value ** sum(l)


def readout(moments: dict, m: int, centres, k: int, sigma_value: float) -> tuple[list, np.ndarray]:
    """``(monomials, B)``: the optimal readout from the moments; ``centres`` are the patch entries to output."""
    feats = monomials(m, k)
    shift = lambda g, l: tuple(a - b for a, b in zip(g, l))  # noqa: E731
    unit = lambda j: tuple(int(i == j) for i in range(m))     # noqa: E731
    M = np.array([[sum(w * moments[shift(tuple(a + b for a, b in zip(fa, fb)), l)]
                       for l, w in _gaussian_weights(tuple(a + b for a, b in zip(fa, fb)), sigma_value))
                   for fb in feats] for fa in feats])
    V = np.array([[sum(w * moments[tuple(x + y for x, y in zip(shift(fa, l), unit(c)))]
                       for l, w in _gaussian_weights(fa, sigma_value)) for c in centres] for fa in feats])
    return feats, np.linalg.lstsq(M, V, rcond=None)[0].T


def polynomial_denoise(y, train, shape, patch: int, k: int, sigma_value: float) -> np.ndarray:
    """The denoiser's output on ``(n, d)`` images, readout from the training set's patch moments."""
    c, h, w = shape
    m = c * patch * patch
    centres = [ch * patch * patch + (patch * patch - 1) // 2 for ch in range(c)]
    feats, B = readout(patch_moments(train, shape, patch, 2 * k), m, centres, k, sigma_value)
    Z = image_patches(y, shape, patch, "circular")                               # (n, hw, m)
    phi = np.stack([np.prod(Z ** np.array(f), axis=2) for f in feats], axis=2)  # (n, hw, F)
    return np.einsum("nqf,cf->ncq", phi, B).reshape(len(Z), -1)


def noisy_power(a: int) -> sp.Expr:
    """``E (x + sigma n)^a`` for ``n ~ N(0, 1)``, with sympy.stats."""
    x = sp.Symbol("x", real=True)
    return sp.expand(ss.E((x + sigma * ss.Normal("n", 0, 1)) ** a))


class PatchPolynomialDenoiser(Result):
    """Result L4: the equivariant patch polynomial denoiser depends on the target only through patch moments.

    .. math:: \\mathbb{E} (x + \\sigma n)^a = \\sum_{l \\text{ even}} \\binom{a}{l} x^{a - l} \\sigma^l (l - 1)!!

    >>> noisy_power(2)
    sigma**2 + x**2
    """

    def __init__(self):
        x, a, l = sp.Symbol("x", real=True), sp.Symbol("a", integer=True, nonnegative=True), sp.Symbol("l", integer=True)
        closed = sp.Sum(sp.binomial(a, 2 * l) * x ** (a - 2 * l) * sigma ** (2 * l) * sp.factorial2(2 * l - 1),
                        (l, 0, sp.floor(a / 2)))
        for power in range(5):
            assert sp.simplify(noisy_power(power) - closed.subs(a, power).doit()) == 0
        V = sp.Symbol("V")
        super().__init__(
            name="Equivariant patch polynomial denoiser",
            statement=("Let $\\phi$ be the monomials of total degree $\\le k$ in the entries of the circular "
                       "$p \\times p$ patch $z_q$ and $D(y)_q = B \\phi(z_q)$ with one readout $B$ for every pixel "
                       "$q$. The MSE-optimal $B$ solves $M B^\\top = V$, $M = \\frac{1}{hw}\\sum_q "
                       "\\mathbb{E}\\,\\phi(z_q)\\phi(z_q)^\\top$, $V = \\frac{1}{hw}\\sum_q \\mathbb{E}\\,\\phi(z_q) "
                       "x_q^\\top$. The patch holds distinct pixels, so its noise entries are independent and "
                       "$\\mathbb{E}\\prod_j (x_j + \\sigma n_j)^{s_j} = \\prod_j h_{s_j}(x_j)$ with $h_a$ below: "
                       "$M$ and $V$ are fixed linear combinations of the position-averaged clean patch moments "
                       "$m_\\gamma$, $|\\gamma| \\le 2k$. Moment equivalence: two targets with the same "
                       "position-averaged patch moments up to order $2k$ have the same optimal denoiser. "
                       "Degree $k = 1$ is the optimal affine kernel of the stationarized target."),
            assumptions=("circular boundary (a patch of distinct pixels), $p$ odd, $p \\le \\min(h, w)$",
                         "finite moments of order $2k$; $\\sigma > 0$; $M$ solved in the least-squares sense"),
            formulas={"noise expectation": sp.Eq(sp.Function("h_a")(x), closed),
                      "normal equations": sp.Eq(sp.Symbol("M B^{\\top}"), V)},
        )

"""Finite-step law with a polynomial denoiser: the sampler output is an explicit polynomial ``P_N(z)``.

An Euler step of the probability-flow ODE on ``y = x/s`` is ``y -> r y + (1 - r) D(y)``, ``r = sigma'/sigma``:
with ``D(y) = sum_j c_j y^j`` (degree ``k >= 1``) it is a degree-``k`` polynomial of ``y``, so ``N`` steps
map the initial state ``z`` to a polynomial of degree ``k^N`` (``k = 1``: affine for every ``N``). Heun's
corrector evaluates ``D`` at the predictor: degree ``k^2`` per step, ``k`` on a final step to
``sigma = 0``. DDIM (eta = 0) is algebraically Euler. Degrees grow exponentially, so
:func:`numeric_output` refuses grids whose output degree exceeds :data:`MAX_DEGREE`.

>>> from numerics.schedules import VESchedule
>>> P = numeric_output([1.0, 0.5, 1.25], 1, VESchedule().grid(50))  # N(0.5, 1): affine for any N
>>> P.degree()
1
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from numerics import validation
from theory.polynomial import _degree, coefficients
from theory.result import Result

MAX_DEGREE = 4096  # degree cap of P_N: composition costs O(degree^2) per step and coefficients lose meaning
MAX_SYMBOLIC_DEGREE = 64  # symbolic P_N with generic c_{i,j}: k = 2, N = 3 (degree 8) expands in < 1 s
SAMPLERS = ("euler", "heun", "ddim")
z = sp.Symbol("z", real=True)


def step_symbols(degree: int, steps: int):
    """Generic ``c_{i,j}`` (step ``i``, power ``j``) and ``sigma_0 .. sigma_N``."""
    c = [sp.symbols(f"c_{i}_0:{degree + 1}", real=True) for i in range(steps)]
    return c, sp.symbols(f"sigma_0:{steps + 1}", nonnegative=True)


def symbolic_output(degree: int, steps: int, *, expand: bool = True):
    """``P_N(z)``: ``N`` Euler steps (``s = 1``) composed with the generic denoisers ``sum_j c_{i,j} y^j``.

    >>> (c0, c1), (s0, s1) = step_symbols(1, 1)[0][0], step_symbols(1, 1)[1]
    >>> sp.expand(symbolic_output(1, 1) - (z + (s1 - s0) * (z - c0 - c1 * z) / s0))
    0
    """
    k, n = _degree(degree), validation.positive_int(steps, "steps")
    if max(k, 1) ** n > MAX_SYMBOLIC_DEGREE:
        raise ValueError(f"steps = {n} with degree {k} gives degree {k}^{n} > {MAX_SYMBOLIC_DEGREE} "
                         "symbolically; use numeric_output()")
    c, sig = step_symbols(k, n)
    y = z
    for i in range(n):
        denoised = sum(c[i][j] * y**j for j in range(k + 1))
        y = y + (sig[i + 1] - sig[i]) * (y - denoised) / sig[i]
    return sp.expand(y) if expand else y


def _step_degree(k: int, sampler: str, sigma_next: float) -> int:
    if sampler == "heun" and sigma_next > 0:
        return max(k * max(k, 1), 1)  # D evaluated at the predictor, itself of degree max(k, 1)
    return max(k, 1) if sigma_next > 0 else k


def output_degree(degree: int, grid, sampler: str = "euler") -> int:
    """Degree bound of ``P_N``; stops counting past :data:`MAX_DEGREE`.

    ``P.degree()`` can be lower: exact zeros (symmetric targets) and top coefficients underflowing to 0
    (VE, k = 2, N = 12: bound 4096, 90 nonzero) are trimmed by numpy.
    """
    k, total = _degree(degree), 1
    for sigma_next in grid.sigma[1:]:
        total *= _step_degree(k, sampler, float(sigma_next))
        if total > MAX_DEGREE:
            break
    return total


def numeric_output(moments, degree: int, grid, sampler: str = "euler") -> np.polynomial.Polynomial:
    """Monomial coefficients in ``z`` of ``P_N``: initial state ``x_0 = z`` to output ``x_N``, float64.

    Uses the optimal coefficients (:func:`theory.polynomial.coefficients`) at each ``sigma_i > 0``; state
    ``x = s y``. ValueError naming ``steps`` if the degree of ``P_N`` would exceed :data:`MAX_DEGREE`.
    """
    k = _degree(degree)
    validation.choice(sampler, "sampler", SAMPLERS)
    total = output_degree(k, grid, sampler)
    if total > MAX_DEGREE:
        raise ValueError(f"steps = {grid.steps} with degree {k} and sampler {sampler!r} gives an output degree "
                         f"> MAX_DEGREE = {MAX_DEGREE} (k^N grows exponentially); use fewer steps or degree 1")
    P = np.polynomial.Polynomial([0.0, 1.0])
    denoisers = [np.polynomial.Polynomial(coefficients(moments, float(v), k)) if v > 0 else None
                 for v in grid.sigma]
    for i in range(grid.steps):
        sigma, sigma_next = float(grid.sigma[i]), float(grid.sigma[i + 1])
        y = P / float(grid.s[i])
        d = (y - denoisers[i](y)) / sigma
        y_next = y + (sigma_next - sigma) * d
        if sampler == "heun" and sigma_next > 0:
            d_next = (y_next - denoisers[i + 1](y_next)) / sigma_next
            y_next = y + (sigma_next - sigma) * 0.5 * (d + d_next)
        P = float(grid.s[i + 1]) * y_next
    return P


class FiniteStepPolynomialLaw(Result):
    """Finite-step law with the degree-``k`` polynomial denoiser: push-forward of the prior by ``P_N``.

    >>> FiniteStepPolynomialLaw().formulas["P_2, degree 2"].lhs
    P_2(z)
    """

    def __init__(self):
        P2 = sp.collect(symbolic_output(2, 2), z)
        super().__init__(
            name="Finite-step sampler output with a polynomial denoiser",
            statement=("With a degree-$k$ polynomial denoiser $D_i(y) = \\sum_j c_{i,j} y^j$ at each noise "
                       "level, every Euler step $y \\mapsto y + (\\sigma_{i+1} - \\sigma_i)(y - D_i(y))/\\sigma_i$ "
                       "is a polynomial of degree $k$ ($k \\ge 1$) in $y$, so the output of $N$ deterministic "
                       "steps is $x_N = P_N(z)$, a polynomial of degree $k^N$ in the initial state $z$ (Heun: "
                       "$k^2$ per step with $\\sigma_{i+1} > 0$). The generated law is the push-forward of the "
                       "prior $\\mathcal{N}(0, \\sigma_0^2)$ by $P_N$; where $P_N$ is increasing its CDF is "
                       "$\\Phi(P_N^{-1}(x)/\\sigma_0)$. For $k = 1$, $P_N$ is affine: the Gaussian finite-step "
                       "law. Formula: $N = 2$, $k = 2$, generic coefficients."),
            assumptions=("deterministic sampler (Euler, DDIM with $\\eta = 0$, Heun) on a fixed grid "
                         "$\\sigma_0 > \\dots > \\sigma_N \\ge 0$, $s \\equiv 1$ in the formula",
                         "the denoiser at $\\sigma_i$ is a polynomial of degree $k$ in $y$ (e.g. the optimal "
                         "one, Result 9)",
                         "initial state $z \\sim \\mathcal{N}(0, \\sigma_0^2)$ (VE prior)"),
            formulas={"P_2, degree 2": sp.Eq(sp.Function("P_2")(z), P2)},
        )

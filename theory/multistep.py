"""Result 3 for a two-step sampler: the exact law of DPM-Solver++(2M) with an affine denoiser.

A multistep update reuses the previous denoiser output, ``x_{i+1} = A_i x_i + B_i x_{i-1} + c_i``
(``theory.steps.step_map("dpmpp_2m")``), so the pair ``(x_{i+1}, x_i)`` is an affine image of
``(x_i, x_{i-1})`` and stays jointly Gaussian:

.. math:: \\begin{pmatrix} x_{i+1} \\\\ x_i \\end{pmatrix} = \\begin{pmatrix} A_i & B_i \\\\ I & 0 \\end{pmatrix}
   \\begin{pmatrix} x_i \\\\ x_{i-1} \\end{pmatrix} + \\begin{pmatrix} c_i \\\\ 0 \\end{pmatrix}.

First-order steps (the first, and one to ``sigma = 0``) are the ``ddim`` step. Full matrices.

>>> import numpy as np
>>> from numerics.schedules import VESchedule
>>> law = multistep_law("dpmpp_2m", VESchedule().grid(8), lambda sigma: (np.eye(1) / (1 + sigma**2), np.zeros(1)),
...                     GaussianLaw(np.zeros(1), 6400.0 * np.eye(1)))
>>> round(float(law.cov[0, 0]), 4)
1.3947
"""
from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp

from numerics.validation import choice
from theory.finite_step import Dense, GaussianLaw, grid_values
from theory.finite_step import _compiled as _one_step_compiled
from theory.result import Result
from theory.symbols import b, b_prev
from theory.steps import MULTISTEP_SYMBOLS, MULTISTEP_UPDATES, step_map

FIRST_ORDER = "ddim"  # DPM-Solver++ of order 1 is DDIM (Lu et al. 2022, Sec. 4.1)


@cache
def _compiled(sampler: str):
    return {name: tuple((sp.lambdify(MULTISTEP_SYMBOLS, c, "numpy"), gains) for c, gains in parts)
            for name, parts in step_map(sampler).terms.items()}


def _combine(parts, values, gains, algebra, d, vector=None):
    """``sum_k coeff_k (G ... G)_k`` applied to ``vector`` (or as an operator if ``vector`` is None)."""
    total = 0.0
    for coefficient, names in parts:
        operator = algebra.identity(d)
        for name in names:
            operator = algebra.mul(operator, gains[name])
        term = operator if vector is None else algebra.apply(operator, vector)
        total = total + float(coefficient(*values)) * term
    return total


def step_affine(sampler, grid, i, affine, algebra, d):
    """``(A_i, c_i, Q_i)`` of the one-step sampler's step ``i``, for the first and last DPM-Solver++ steps."""
    to_zero = bool(grid.sigma[i + 1] == 0)
    compiled, values = _one_step_compiled(sampler, to_zero), grid_values(grid, i)
    G, b = affine(grid.sigma[i])
    gains, offsets = {"G": G}, {"b": b}
    if "b_next" in compiled:
        gains["G_next"], offsets["b_next"] = affine(grid.sigma[i + 1])
    A = _combine(compiled["x"], values, gains, algebra, d)
    c = sum(_combine(compiled[k], values, gains, algebra, d, offsets[k]) for k in offsets if k in compiled)
    Q = _combine(compiled["z"], values, gains, algebra, d) if "z" in compiled else 0.0 * algebra.identity(d)
    return A, c, Q


def two_step_affine(sampler, grid, i, affine, algebra, d):
    """``(A_i, B_i, c_i)`` of step ``i >= 1``; ``affine(sigma) -> (G, b)`` in the chosen algebra."""
    compiled = _compiled(sampler)
    values = grid_values(grid, i) + (grid.sigma[i - 1], grid.s[i - 1])
    (G, b), (G_prev, b_prev) = affine(grid.sigma[i]), affine(grid.sigma[i - 1])
    gains = {"G": G, "G_prev": G_prev}
    A = _combine(compiled["x"], values, gains, algebra, d)
    B = _combine(compiled["x_prev"], values, gains, algebra, d)
    c = (_combine(compiled["b"], values, gains, algebra, d, b)
         + _combine(compiled["b_prev"], values, gains, algebra, d, b_prev))
    return A, B, c


def _T(M):
    return M.T if np.ndim(M) == 2 else M


def multistep_law(sampler, grid, affine, start: GaussianLaw, algebra=Dense) -> GaussianLaw:
    """Push ``start`` through ``sampler`` on ``grid`` keeping the joint law of ``(x_i, x_{i-1})``.

    ``algebra``: ``Dense`` (full matrices) or ``Diagonal`` (per eigen-direction; ``start.cov`` a vector).
    """
    choice(sampler, "sampler", MULTISTEP_UPDATES)
    m, C = np.asarray(start.mean, dtype=np.float64), np.asarray(start.cov, dtype=np.float64)
    d, m_prev, C_prev, C_cross = len(m), None, None, None    # C_cross = Cov(x_i, x_{i-1})
    for i in range(grid.steps):
        if i == 0 or grid.sigma[i + 1] == 0:                  # first-order step on x_i alone
            A, c, _ = step_affine(FIRST_ORDER, grid, i, affine, algebra, d)
            B = None
        else:
            A, B, c = two_step_affine(sampler, grid, i, affine, algebra, d)
        m_next = algebra.apply(A, m) + c
        C_next = algebra.congruence(A, C)
        cross_next = algebra.mul(A, C)
        if B is not None:                                     # the x_{i-1} terms
            m_next = m_next + algebra.apply(B, m_prev)
            mixed = algebra.mul(A, algebra.mul(C_cross, _T(B)))
            C_next = C_next + mixed + _T(mixed) + algebra.congruence(B, C_prev)
            cross_next = cross_next + algebra.mul(B, _T(C_cross))
        m_prev, C_prev, C_cross = m, C, cross_next
        m, C = m_next, C_next
    return GaussianLaw(m, C, start.basis)


class MultistepLaw(Result):
    """Result 3 for DPM-Solver++(2M): its two-step map in LaTeX and the joint recursion."""

    def __init__(self):
        step = step_map("dpmpp_2m")
        tag = "\\mathrm{dpmpp\\_2m}"
        super().__init__(
            name="Exact law of DPM-Solver++(2M) with an affine denoiser",
            statement=("With $D(y) = G_\\sigma y + b_\\sigma$ a DPM-Solver++(2M) step is "
                       "$x_{i+1} = A_i x_i + B_i x_{i-1} + c_i$, so $(x_{i+1}, x_i)$ is an affine image of "
                       "$(x_i, x_{i-1})$ and the output is exactly Gaussian; its mean and covariance follow from "
                       "the joint recursion. $r_i = \\log(\\sigma_{i-1}/\\sigma_i) / \\log(\\sigma_i/\\sigma_{i+1})$; "
                       "the first step and a step to $\\sigma = 0$ are DDIM steps."),
            assumptions=("affine denoiser at every noise level the sampler visits",
                         "Gaussian start $x_0 \\sim \\mathcal{N}(m_0, C_0)$"),
            formulas={"dpmpp_2m: A": sp.Eq(sp.Symbol(f"A^{{{tag}}}_i"), step.coefficient("x")),
                      "dpmpp_2m: B": sp.Eq(sp.Symbol(f"B^{{{tag}}}_i"), step.coefficient("x_prev")),
                      "dpmpp_2m: c": sp.Eq(sp.Symbol(f"c^{{{tag}}}_i"),
                                           step.coefficient("b") * b + step.coefficient("b_prev") * b_prev)},
        )

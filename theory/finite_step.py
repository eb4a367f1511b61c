"""Result 3: the exact Gaussian law of every finite-step sampler with an affine denoiser.

Each step is ``x_{i+1} = A_i x_i + c_i + Q_i z_i`` (``theory.steps``), so from ``x_0 ~ N(m_0, C_0)``

.. math:: m_{i+1} = A_i m_i + c_i, \\qquad C_{i+1} = A_i C_i A_i^\\top + Q_i Q_i^\\top .

Two algebras evaluate the same symbolic step: per eigen-direction (gains are vectors, for a
denoiser that commutes with ``Sigma``) and full matrices (any affine denoiser, e.g. one fitted
from finitely many noisy samples, whose gains at different noise levels need not commute).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp

from theory.result import Result
from theory.steps import GRID_SYMBOLS, UPDATES, step_map
from theory.symbols import b, b_next
from numerics.validation import choice


class Diagonal:
    """Gains are per-direction vectors; products are element-wise."""

    @staticmethod
    def identity(d):
        return np.ones(d)

    @staticmethod
    def mul(A, B):
        return A * B

    @staticmethod
    def apply(A, v):
        return A * v

    @staticmethod
    def congruence(A, C):
        return A * C * A

    @staticmethod
    def gram(Q):
        return Q * Q


class Dense:
    """Gains are ``d x d`` matrices; products are matrix products."""

    @staticmethod
    def identity(d):
        return np.eye(d)

    @staticmethod
    def mul(A, B):
        return A @ B

    @staticmethod
    def apply(A, v):
        return A @ v

    @staticmethod
    def congruence(A, C):
        return A @ C @ A.T

    @staticmethod
    def gram(Q):
        return Q @ Q.T


@dataclass(frozen=True)
class GaussianLaw:
    """``N(mean, cov)``. A 1-D ``cov`` holds variances along the columns of ``basis`` (the identity if None)."""

    mean: np.ndarray
    cov: np.ndarray
    basis: np.ndarray | None = None

    def covariance(self) -> np.ndarray:
        if np.ndim(self.cov) == 2:
            return self.cov
        return np.diag(self.cov) if self.basis is None else (self.basis * self.cov) @ self.basis.T

    def eigenvalues(self) -> np.ndarray:
        """Covariance eigenvalues, ascending."""
        return np.sort(self.cov) if np.ndim(self.cov) == 1 else np.linalg.eigvalsh(self.cov)


@cache
def _compiled(sampler: str, to_zero: bool):
    """Lambdified coefficients of the step, grouped by vector: name -> ((f(grid values), gains), ...)."""
    return {name: tuple((sp.lambdify(GRID_SYMBOLS, c, "numpy"), gains) for c, gains in parts)
            for name, parts in step_map(sampler, to_zero).terms.items()}


def grid_values(grid, i: int) -> tuple:
    """Values of ``GRID_SYMBOLS`` for step ``i`` of ``grid`` (NaN derivatives on a discrete grid)."""
    s_dot = np.nan if grid.s_dot is None else grid.s_dot[i]
    sigma_dot = np.nan if grid.sigma_dot is None else grid.sigma_dot[i]
    return (grid.sigma[i], grid.sigma[i + 1], grid.s[i], grid.s[i + 1], s_dot, sigma_dot,
            grid.t[i] - grid.t[i + 1])


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
    """``(A_i, c_i, Q_i)`` of step ``i``; ``affine(sigma) -> (G, b)`` in the chosen algebra."""
    to_zero = grid.sigma[i + 1] == 0  # Heun's last step to sigma = 0 is an Euler step
    compiled, values = _compiled(sampler, bool(to_zero)), grid_values(grid, i)
    G, b = affine(grid.sigma[i])
    gains, offsets = {"G": G}, {"b": b}
    if "b_next" in compiled:
        gains["G_next"], offsets["b_next"] = affine(grid.sigma[i + 1])
    A = _combine(compiled["x"], values, gains, algebra, d)
    c = sum(_combine(compiled[k], values, gains, algebra, d, offsets[k]) for k in offsets if k in compiled)
    Q = _combine(compiled["z"], values, gains, algebra, d) if "z" in compiled else 0.0 * algebra.identity(d)
    return A, c, Q


def check_sampler_grid(sampler: str, grid) -> str:
    """The theory's assumptions on the pair: Euler–Maruyama needs derivatives, the VP integrator VP."""
    choice(sampler, "sampler", UPDATES)
    if sampler == "euler_maruyama" and grid.sigma_dot is None:
        raise ValueError(f"sampler 'euler_maruyama' needs a continuous-time schedule; {grid.schedule!r} is discrete")
    if sampler == "exponential_vp" and not grid.variance_preserving:
        raise ValueError(f"sampler 'exponential_vp' needs a variance-preserving schedule (vp, ddpm), got {grid.schedule!r}")
    return sampler


def propagate(sampler, grid, affine, start: GaussianLaw, algebra) -> GaussianLaw:
    """Push ``start`` through every step of ``sampler`` on ``grid``: the exact output law."""
    check_sampler_grid(sampler, grid)
    m, C = start.mean, start.cov
    for i in range(grid.steps):
        A, c, Q = step_affine(sampler, grid, i, affine, algebra, len(m))
        m = algebra.apply(A, m) + c
        C = algebra.congruence(A, C) + algebra.gram(Q)
    return GaussianLaw(m, C, start.basis)


def probe_law(operator, offset, noise_response, start: GaussianLaw) -> GaussianLaw:
    """Law of ``x_N = operator x_0 + offset + sum_i M_i z_i`` given ``noise_response = sum_i M_i M_i^T``."""
    C0 = start.covariance()
    return GaussianLaw(operator @ start.mean + offset, operator @ C0 @ operator.T + noise_response)


class FiniteStepLaw(Result):
    """Result 3 as a Result: the recursion, with the per-step maps of every sampler in LaTeX."""

    def __init__(self):
        formulas = {}
        for name in UPDATES:
            step, tag = step_map(name), "\\mathrm{" + name.replace("_", "\\_") + "}"
            formulas[f"{name}: A"] = sp.Eq(sp.Symbol(f"A^{{{tag}}}_i"), step.coefficient("x"))
            formulas[f"{name}: c"] = sp.Eq(sp.Symbol(f"c^{{{tag}}}_i"),
                                           step.coefficient("b") * b + step.coefficient("b_next") * b_next)
            if "z" in step.terms:
                formulas[f"{name}: Q"] = sp.Eq(sp.Symbol(f"Q^{{{tag}}}_i"), step.coefficient("z"))
        super().__init__(
            name="Exact law of finite-step samplers with an affine denoiser",
            statement=("For a denoiser $D(y) = G_\\sigma y + b_\\sigma$ every step below is affine in $x$ plus "
                       "independent Gaussian noise, $x_{i+1} = A_i x_i + c_i + Q_i z_i$, hence the output is "
                       "exactly Gaussian with $m_{i+1} = A_i m_i + c_i$ and "
                       "$C_{i+1} = A_i C_i A_i^\\top + Q_i Q_i^\\top$ (per eigen-direction when the $G_\\sigma$ "
                       "commute with $\\Sigma$). $y = x/s$, $z \\sim \\mathcal{N}(0, I)$; Heun takes an Euler step "
                       "on a last step to $\\sigma = 0$."),
            assumptions=("affine denoiser at every noise level the sampler visits",
                         "Gaussian start $x_0 \\sim \\mathcal{N}(m_0, C_0)$, noise independent across steps",
                         "Euler--Maruyama: continuous-time schedule; exponential integrator: $s^2(1+\\sigma^2)=1$"),
            formulas=formulas,
        )

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
from theory.steps import GRID_SYMBOLS, MULTISTEP_UPDATES, NESTED, TITLES, UPDATES, step_map
from theory.symbols import b, b_next
from numerics import validation
from numerics.registry import first_call_level, require
from numerics.validation import choice


class Diagonal:
    """Gains are per-direction vectors; products are element-wise."""

    @staticmethod
    def identity(d):
        return np.ones(d)

    @staticmethod
    def plus_identity(A, c: float):
        return A + c

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

    @staticmethod
    def advance(sampler, to_zero, coefficients, levels, m, C):
        """One step of ``(m, C)`` by the sampler's fused elementwise kernel (``_fused``); ``levels``: name -> gain
        or offset (``G``, ``b`` and, where the step calls the denoiser there, ``G_next``, ``b_next``, ``G_mid``, ...)."""
        values = [value for name in VECTOR_ORDER for value, _ in coefficients.get(name, ())]
        return _fused(sampler, to_zero)(values, *(levels.get(name) for name in LEVELS), m, C)


class Dense:
    """Gains are ``d x d`` matrices; products are matrix products."""

    @staticmethod
    def identity(d):
        return np.eye(d)

    @staticmethod
    def plus_identity(A, c: float):
        A = np.array(A, dtype=np.float64, copy=True)
        A[np.diag_indices_from(A)] += c
        return A

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

    @classmethod
    def advance(cls, sampler, to_zero, coefficients, levels, m, C):
        """One step of ``(m, C)``: ``m <- A m + c``, ``C <- A C A^T + Q Q^T`` from the step's affine map."""
        A, c, Q = step_affine(coefficients, levels, cls)
        C = cls.congruence(A, C)
        if Q is not None:                 # q I adds q^2 on the diagonal, no product formed
            C = cls.plus_identity(C, Q * Q) if isinstance(Q, float) else C + cls.gram(Q)
        return cls.apply(A, m) + c, C


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


def grid_values(grid, i) -> tuple:
    """Values of ``GRID_SYMBOLS`` for step(s) ``i`` of ``grid`` (an index or an index array; NaN derivatives
    on a discrete grid; the noise multiplier ``eta`` is 1 where the grid sets none; ``sigma_next``, ``s_next``:
    where the step lands, ``grid.land_sigma`` when set)."""
    i = np.asarray(i)
    nan = np.full(i.shape, np.nan)
    s_dot = (nan, nan) if grid.s_dot is None else (grid.s_dot[i], grid.s_dot[i + 1])
    sigma_dot = (nan, nan) if grid.sigma_dot is None else (grid.sigma_dot[i], grid.sigma_dot[i + 1])
    eta = np.ones(i.shape) if grid.eta is None else grid.eta[i]
    sigma_hat = grid.sigma[i] if grid.sigma_hat is None else grid.sigma_hat[i]  # EDM churn; none: sigma_i
    mid = (nan,) * 4 if grid.mid is None else (grid.mid.sigma[i], grid.mid.s[i], grid.mid.s_dot[i], grid.mid.sigma_dot[i])
    sigma_next, s_next = (grid.sigma[i + 1], grid.s[i + 1]) if grid.land_sigma is None else (grid.land_sigma[i],
                                                                                             grid.land_s[i])
    return (grid.sigma[i], sigma_next, grid.s[i], s_next, s_dot[0], sigma_dot[0],
            grid.t[i] - grid.t[i + 1], eta, s_dot[1], sigma_dot[1], np.full(i.shape, grid.s_noise), sigma_hat, *mid)


def step_coefficients(sampler, grid) -> list:
    """Per step: name -> ((coefficient value, gains), ...), every coefficient evaluated once over the whole grid."""
    steps = np.arange(grid.steps)
    to_zero = grid.sigma[1:] == 0  # Heun's last step to sigma = 0 is an Euler step
    table = [{} for _ in range(grid.steps)]
    for flag in (False, True):
        chosen = steps[to_zero == flag]
        if chosen.size == 0:
            continue
        values, compiled = grid_values(grid, chosen), _compiled(sampler, flag)
        if set(compiled) - set(VECTOR_ORDER):  # a step map with a vector this recursion does not propagate
            raise NotImplementedError(f"sampler {sampler!r}: step terms {sorted(set(compiled) - set(VECTOR_ORDER))} "
                                      f"are not among {VECTOR_ORDER}")
        for name, parts in compiled.items():
            columns = [np.broadcast_to(np.asarray(f(*values), dtype=np.float64), chosen.shape).tolist()
                       for f, _ in parts]
            gains = [names for _, names in parts]
            for i, row in zip(chosen.tolist(), zip(*columns)):
                table[i][name] = tuple(zip(row, gains))
    return table


VECTOR_ORDER = ("x", "b", "b_next", "b_mid", "z")  # the order of a step's coefficient values in ``values``
LEVELS = ("G", "b", "G_next", "b_next", "G_mid", "b_mid")  # a step's denoiser at sigma_i, sigma_{i+1}, sigma_{i+1/2}
OFFSETS = {"b": "G", "b_next": "G_next", "b_mid": "G_mid"}  # each offset vector and the gain of the same call


@cache
def _fused(sampler: str, to_zero: bool):
    """The whole step ``(m, v) -> (A m + c, A^2 v + Q^2)`` for commuting (elementwise) gains, lambdified once
    with common subexpressions shared: one numpy call per step, as few vector operations as a hand-written loop.
    Its first argument is the step's coefficient values in ``VECTOR_ORDER``."""
    symbols = dict(zip(LEVELS, sp.symbols(LEVELS)))
    gains, offsets = ({name: symbols[name] for name in group} for group in (OFFSETS.values(), OFFSETS))
    terms, k, coefficients = step_map(sampler, to_zero).terms, iter(sp.symbols("k0:256")), []

    def part(vector):
        total = sp.Integer(0)
        for _, names in terms.get(vector, ()):
            coefficients.append(next(k))
            total += coefficients[-1] * sp.Mul(*[gains[n] for n in names])
        return total
    A = part("x")
    c = sum((part(name) * offsets[name] for name in OFFSETS), sp.Integer(0))
    Q = part("z")
    m, v = sp.symbols("m v")
    return sp.lambdify((coefficients, *symbols.values(), m, v), [A * m + c, A**2 * v + Q**2], "numpy", cse=True)


def _combine(parts, gains, algebra, products: dict, vector=None):
    """``sum_k coeff_k (G ... G)_k`` applied to ``vector`` (or as an operator; a float ``q`` means ``q I``).

    Gain products are formed once per step (shared via ``products``); the identity term is never multiplied out.
    """
    identity, total = 0.0, None
    for coefficient, names in parts:
        if not names:
            identity += coefficient
            continue
        operator = products.get(names)
        if operator is None:
            operator = gains[names[0]]
            for name in names[1:]:
                operator = algebra.mul(operator, gains[name])
            products[names] = operator
        term = coefficient * (operator if vector is None else algebra.apply(operator, vector))
        total = term if total is None else total + term
    if vector is not None:
        return identity * vector if total is None else total + identity * vector
    return identity if total is None else algebra.plus_identity(total, identity)


def step_affine(coefficients: dict, levels: dict, algebra):
    """``(A_i, c_i, Q_i)`` of one step from its coefficient values and ``levels`` (name -> the denoiser's gains and
    offsets at the levels the step calls it: ``G``, ``b`` at sigma_i; ``G_next``, ``b_next``; ``G_mid``, ``b_mid``).
    ``Q_i`` is None for a noise-free step and a float ``q`` for ``Q_i = q I``."""
    gains, products = {name: levels.get(name) for name in OFFSETS.values()}, {}
    A = _combine(coefficients["x"], gains, algebra, products)
    A = algebra.plus_identity(0.0 * levels["G"], A) if isinstance(A, float) else A
    c = sum(_combine(coefficients.get(name, ()), gains, algebra, products, levels.get(name)) for name in OFFSETS)
    Q = _combine(coefficients["z"], gains, algebra, products) if "z" in coefficients else None
    return A, c, Q


def check_sampler_grid(sampler: str, grid) -> str:
    """The theory's assumptions on the pair: Euler–Maruyama needs derivatives, the VP integrator VP."""
    grid = validation.grid(grid, "grid")
    if sampler in MULTISTEP_UPDATES:
        raise ValueError(f"sampler {sampler!r} is multistep; its law is theory.multistep.multistep_law "
                         "(verify.linear checks it with --diffusers DPMSolverMultistepScheduler)")
    choice(sampler, "sampler", UPDATES)
    require(sampler, grid)  # what the registry says it needs of the grid (continuous time, VP)
    if sampler == "ddpm_t":  # beta_i = beta(t_i) h must be a probability-like step
        beta = -2 * grid.s_dot[:-1] / grid.s[:-1] * (grid.t[:-1] - grid.t[1:])
        if not np.all((beta > 0) & (beta < 1)):
            raise ValueError(f"sampler 'ddpm_t' needs 0 < beta(t_i) h < 1 on every step, got up to {beta.max():.4g}")
    return sampler


def call_levels(sampler, grid, i) -> dict:
    """Offset name -> the noise level of that denoiser call in step ``i`` (deferred: RK4's midpoint exists only
    on grids that carry one): the first call at sigma_i (sigma_hat_i after an EDM churn), then sigma_{i+1} and
    sigma(t_i - h/2)."""
    return {"b": lambda: first_call_level(sampler, grid, i), "b_next": lambda: float(grid.sigma[i + 1]),
            "b_mid": lambda: float(grid.mid.sigma[i])}


def propagate(sampler, grid, affine, start: GaussianLaw, algebra) -> GaussianLaw:
    """Push ``start`` through every step of ``sampler`` on ``grid``: the exact output law."""
    check_sampler_grid(sampler, grid)
    m, C = start.mean, start.cov
    table, at = step_coefficients(sampler, grid), cache(lambda sigma: affine(sigma))  # each level once
    for i, coefficients in enumerate(table):
        levels = {}
        for offset, level in call_levels(sampler, grid, i).items():
            if offset == "b" or offset in coefficients:  # the first call always; the others where the step has them
                levels[OFFSETS[offset]], levels[offset] = at(level())
        m, C = algebra.advance(sampler, bool(grid.sigma[i + 1] == 0), coefficients, levels, m, C)
    return GaussianLaw(m, C, start.basis)


def probe_law(operator, offset, noise_response, start: GaussianLaw) -> GaussianLaw:
    """Law of ``x_N = operator x_0 + offset + sum_i M_i z_i`` given ``noise_response = sum_i M_i M_i^T``."""
    C0 = start.covariance()
    return GaussianLaw(operator @ start.mean + offset, operator @ C0 @ operator.T + noise_response)


class FiniteStepLaw(Result):
    """Result 3 as a Result: the recursion, with the per-step maps of every sampler in LaTeX."""

    def label_text(self, label: str) -> str:
        """``heun: A`` reads ``Heun (EDM), $A_i$``: the sampler in words, then the coefficient."""
        sampler, _, part = label.partition(": ")
        symbol = part if "_" in part else f"{part}_i"  # nested forms name their own subscripts (P_{i+1/2})
        return f"{TITLES.get(sampler, sampler.replace('_', chr(92) + '_'))}, ${symbol}$"

    def __init__(self):
        formulas = {}
        for name in UPDATES:
            if name in NESTED:  # RK4: the expanded A, c run to pages; the nested stages are the readable law
                formulas.update({f"{name}: {part}": eq for part, eq in NESTED[name]().items()})
                continue
            step = step_map(name)
            formulas[f"{name}: A"] = sp.Eq(sp.Symbol("A_i"), step.coefficient("x"))
            formulas[f"{name}: c"] = sp.Eq(sp.Symbol("c_i"),
                                           step.coefficient("b") * b + step.coefficient("b_next") * b_next)
            if "z" in step.terms:
                formulas[f"{name}: Q"] = sp.Eq(sp.Symbol("Q_i"), step.coefficient("z"))
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
                         "Euler--Maruyama and the steps in $t$ (euler\\_t, heun\\_t, rk4\\_t, ddpm\\_t): "
                         "continuous-time schedule (rk4\\_t: also at each step's midpoint $t_i - h/2$); exponential "
                         "integrator, ddpm\\_large, ddpm\\_t: $s^2(1+\\sigma^2)=1$",
                         "ancestral, ddpm\\_large: the grid's per-step noise multiplier $\\eta_i \\in [0, 1]$ (default 1)"),
            formulas=formulas,
        )

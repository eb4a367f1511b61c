r"""Result 16: the finite-step output of a total-degree-``k`` polynomial denoiser in ``d`` dims, exact moments.

An Euler step of the probability-flow ODE on ``y = x/s`` with ``D_i(y) = C_i^T h(y)``, ``h`` the monomials of
total degree ``<= k``, is a vector polynomial of degree ``k`` in ``y``; ``N`` steps compose into a vector
polynomial ``P_N`` of degree ``k^N`` in the start (Heun: ``k^2`` per step, ``k`` on a final step to
``sigma = 0``; DDIM with eta = 0 is algebraically Euler). With the start ``z = sigma_0 w``,
``w ~ N(0, I)``, the output mean and second moment are finite sums of Gaussian monomial moments (Isserlis):

.. math::

    x_N = P_N(z) = \sum_{\alpha} a_\alpha\, w^\alpha, \qquad
    \mathbb{E}[w^\alpha] = \prod_j (\alpha_j - 1)!!\ \ (\text{all } \alpha_j \text{ even; else } 0),

    \mathbb{E}[x_N] = \sum_\alpha a_\alpha\, \mathbb{E}[w^\alpha], \qquad
    \mathrm{Cov}[x_N] = \sum_{\alpha, \beta} \bar a_\alpha \bar a_\beta^T\, \mathbb{E}[w^{\alpha + \beta}],

with ``bar a`` the coefficients of ``P_N - E[P_N]``. Polynomials are held as exponent rows and coefficient
rows (:class:`VectorPolynomial`) and composed exactly in float64; :func:`output_polynomial` refuses grids
whose output degree or monomial count exceeds :data:`MAX_OUTPUT_DEGREE` / :data:`MAX_MONOMIALS`.
The denoisers are the theory's (:class:`theory.polynomial_flow_nd.MultivariateDenoiser`: mixed-moment
normal equations), never a fit.

>>> mean, cov = symbolic_moments(2, 2, 1)   # one Euler step, d = 2, generic c_{i,j,alpha}, s = 1
>>> sp.factor(mean[0])
(sigma_0 - sigma_1)*(c_0_0_00 + c_0_0_02*sigma_0**2 + c_0_0_20*sigma_0**2)/sigma_0
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import sympy as sp

from numerics import validation
from theory.polynomial import _degree, gaussian_moment
from theory.polynomial_flow_nd import MultivariateDenoiser
from theory.polynomial_nd import multi_indices
from theory.polynomial_steps import SAMPLERS, output_degree
from theory.result import Result

MAX_OUTPUT_DEGREE = 32     # the covariance reads E[w^(a+b)] to order 64 (63!! ~ 1e44): beyond, float64 sums
                           # of such terms cancel away the O(1) answer
MAX_MONOMIALS = 2000       # the covariance forms the M x M Gaussian moment matrix (2000^2 float64 = 32 MB)
MAX_SYMBOLIC_DEGREE = 2    # generic symbolic moments: covariance of d = 2, k = 2, N = 1 ~1 s; degree 4 > 2 min
MAX_SYMBOLIC_COEFFICIENTS = 12  # generic c_{i,j,alpha} in all: 12 (d = 2, k = 1, N = 2) ~3 s, 24 (d = 3) ~40 s


class VectorPolynomial(NamedTuple):
    """``P(w) = sum_r coef[r] w^exponents[r]``: exponent rows ``(M, d)``, coefficient rows ``(M, m)``."""

    exponents: np.ndarray
    coef: np.ndarray

    def degree(self) -> int:
        return int(self.exponents.sum(axis=1).max(initial=0))

    def __call__(self, w) -> np.ndarray:
        """``(n, m)`` values at the rows of ``w`` (n, d)."""
        w = validation.finite_array(w, "w", ndim=2)
        return np.prod(w[:, None, :] ** self.exponents[None], axis=2) @ self.coef

    def component(self, j: int) -> "VectorPolynomial":
        return VectorPolynomial(self.exponents, self.coef[:, j:j + 1])


def collect(exponents: np.ndarray, coef: np.ndarray) -> VectorPolynomial:
    """Equal exponent rows merged (coefficients summed); rows whose coefficients are all exactly 0 dropped."""
    base, dim = int(exponents.max(initial=0)) + 1, exponents.shape[1]
    if base**dim < 2**62:  # one integer key per row: a 1-D unique, ~10x faster than rows
        _, first, inverse = np.unique(exponents @ (base ** np.arange(dim)), return_index=True, return_inverse=True)
        unique = exponents[first]
    else:
        unique, inverse = np.unique(exponents, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    summed = np.stack([np.bincount(inverse, weights=c, minlength=len(unique)) for c in coef.T], axis=1)
    keep = np.any(summed != 0, axis=1)
    if not keep.any():  # the zero polynomial keeps one constant row
        return VectorPolynomial(np.zeros((1, exponents.shape[1]), dtype=np.int64), np.zeros((1, coef.shape[1])))
    return VectorPolynomial(unique[keep], summed[keep])


def combine(*terms) -> VectorPolynomial:
    """``sum_t a_t P_t`` for pairs ``(a_t, P_t)``; ``a_t`` scalar or per-component vector."""
    exponents = np.concatenate([p.exponents for _, p in terms])
    coef = np.concatenate([np.broadcast_to(np.asarray(a, dtype=np.float64) * p.coef,
                                           (len(p.coef), max(q.coef.shape[1] for _, q in terms)))
                           for a, p in terms])
    return collect(exponents, coef)


def constant(value, dim: int) -> VectorPolynomial:
    """The constant vector ``value`` as a polynomial in ``dim`` variables."""
    return VectorPolynomial(np.zeros((1, dim), dtype=np.int64), np.atleast_1d(np.asarray(value, float))[None])


def product(p: VectorPolynomial, q: VectorPolynomial) -> VectorPolynomial:
    """Component-wise product ``P * Q`` (a one-component factor broadcasts): every pair of terms, collected."""
    exponents = (p.exponents[:, None, :] + q.exponents[None, :, :]).reshape(-1, p.exponents.shape[1])
    coef = (p.coef[:, None, :] * q.coef[None, :, :]).reshape(len(exponents), -1)
    return collect(exponents, coef)


def apply_denoiser(denoiser, y: VectorPolynomial, sigma_value: float) -> VectorPolynomial:
    """``D(y) = mean + scale * phi(u)^T C(sigma)``, ``u = (y - mean) / scale``, as a polynomial of ``y``'s variables.

    ``denoiser`` has ``mean``, ``scale`` (scalar or per coordinate), ``exponents`` (F, d) and
    ``coefficients(sigma) -> C`` (F, d), as :class:`MultivariateDenoiser`. Each monomial ``u^alpha`` is
    a shorter one times one coordinate (the exponents come by increasing order).
    """
    dim, scale = y.exponents.shape[1], np.asarray(denoiser.scale, dtype=np.float64)
    u = combine((1.0 / scale, y), (1.0, constant(-np.asarray(denoiser.mean) / scale, dim)))
    C = denoiser.coefficients(float(sigma_value))
    powers = {(0,) * len(denoiser.mean): constant(1.0, dim)}
    terms = []
    for row, alpha in enumerate(tuple(int(a) for a in e) for e in denoiser.exponents):
        if alpha not in powers:
            j = max(i for i, a in enumerate(alpha) if a > 0)
            lower = alpha[:j] + (alpha[j] - 1,) + alpha[j + 1:]
            powers[alpha] = product(powers[lower], u.component(j))
        terms.append((scale * C[row], powers[alpha]))
    return combine((1.0, constant(denoiser.mean, dim)), *terms)


def slope(denoiser, y: VectorPolynomial, sigma_value: float) -> VectorPolynomial:
    """``dy/dsigma = (y - D(y)) / sigma`` of the probability-flow ODE."""
    return combine((1.0 / sigma_value, y), (-1.0 / sigma_value, apply_denoiser(denoiser, y, sigma_value)))


def euler_step(denoiser, y: VectorPolynomial, sigma_value: float, sigma_next: float) -> VectorPolynomial:
    """``y + (sigma' - sigma) (y - D(y)) / sigma``."""
    return combine((1.0, y), (sigma_next - sigma_value, slope(denoiser, y, sigma_value)))


def heun_step(denoiser, y: VectorPolynomial, sigma_value: float, sigma_next: float) -> VectorPolynomial:
    """Euler predictor, then the trapezoidal corrector with ``D`` at the predictor (Euler on a step to 0)."""
    h, d = sigma_next - sigma_value, slope(denoiser, y, sigma_value)
    predictor = combine((1.0, y), (h, d))
    if sigma_next == 0:
        return predictor
    return combine((1.0, y), (0.5 * h, d), (0.5 * h, slope(denoiser, predictor, sigma_next)))


def check_size(dim: int, degree: int, grid, sampler: str) -> int:
    """The output degree bound, or ValueError naming ``steps`` and the cap it exceeds."""
    total = output_degree(degree, grid, sampler)
    monomials = math.comb(total + dim, dim)
    if total > MAX_OUTPUT_DEGREE or monomials > MAX_MONOMIALS:
        raise ValueError(f"steps = {grid.steps} with degree {degree} and sampler {sampler!r} in d = {dim} gives "
                         f"output degree {total} ({monomials} monomials); the caps are MAX_OUTPUT_DEGREE = "
                         f"{MAX_OUTPUT_DEGREE} and MAX_MONOMIALS = {MAX_MONOMIALS}: use fewer steps or a lower degree")
    return total


def output_polynomial(denoiser, grid, sampler: str = "euler") -> VectorPolynomial:
    """``P_N`` in the standardized start ``w = z / prior_std``: ``x_0 = prior_std * w`` to ``x_N``, float64."""
    validation.choice(sampler, "sampler", SAMPLERS)
    dim = len(denoiser.mean)
    check_size(dim, int(denoiser.k), grid, sampler)
    step = heun_step if sampler == "heun" else euler_step  # DDIM (eta = 0) is Euler algebraically
    x = VectorPolynomial(np.eye(dim, dtype=np.int64), grid.prior_std * np.eye(dim))
    for i in range(grid.steps):
        y = combine((1.0 / float(grid.s[i]), x))
        x = combine((float(grid.s[i + 1]), step(denoiser, y, float(grid.sigma[i]), float(grid.sigma[i + 1]))))
    return x


def standard_moments(exponents: np.ndarray) -> np.ndarray:
    """``E[w^alpha] = prod_j E[n^alpha_j]`` per exponent row, ``w ~ N(0, I)`` (Isserlis)."""
    table = np.array([float(gaussian_moment(r)) for r in range(int(exponents.max(initial=0)) + 1)])
    return np.prod(table[exponents], axis=-1)


def output_moments(P: VectorPolynomial) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(E[P(w)], Cov[P(w)])`` for ``w ~ N(0, I)``: the centred coefficients against ``E[w^(a+b)]``."""
    mean = standard_moments(P.exponents) @ P.coef
    centred = combine((1.0, P), (-1.0, constant(mean, P.exponents.shape[1])))
    e = centred.exponents
    gram = standard_moments(e[:, None, :] + e[None, :, :])
    cov = centred.coef.T @ gram @ centred.coef
    return mean, 0.5 * (cov + cov.T)


def finite_step_moments(atoms, weights, degree: int, grid, sampler: str = "euler"):
    """``(P_N, mean, cov)`` of the output with the optimal denoiser of the law ``(atoms, weights)`` (Result 14)."""
    P = output_polynomial(MultivariateDenoiser(atoms, weights, degree), grid, sampler)
    return (P, *output_moments(P))


def symbolic_output(dim: int, degree: int, steps: int):
    """``(P_N, z, sigmas)``: ``N`` Euler steps (``s = 1``), generic ``D_i(y)_j = sum_alpha c_{i,j,alpha} y^alpha``."""
    d, k, n = validation.positive_int(dim, "dim"), _degree(degree), validation.positive_int(steps, "steps")
    generic = n * d * math.comb(d + k, d)
    if max(k, 1) ** n > MAX_SYMBOLIC_DEGREE or generic > MAX_SYMBOLIC_COEFFICIENTS:
        raise ValueError(f"steps = {n} with degree {k} in dim {d} gives degree {max(k, 1) ** n} and {generic} generic "
                         f"coefficients; symbolic caps MAX_SYMBOLIC_DEGREE = {MAX_SYMBOLIC_DEGREE}, "
                         f"MAX_SYMBOLIC_COEFFICIENTS = {MAX_SYMBOLIC_COEFFICIENTS}: use output_polynomial()")
    zs, sig = sp.symbols(f"z_1:{d + 1}", real=True), sp.symbols(f"sigma_0:{n + 1}", positive=True)
    y = sp.Matrix(zs)
    for i in range(n):
        denoised = sp.Matrix([sum(sp.Symbol(f"c_{i}_{j}_{''.join(map(str, a))}", real=True)
                                  * sp.prod([v**p for v, p in zip(y, a)]) for a in multi_indices(d, k))
                              for j in range(d)])
        y = y + (sig[i + 1] - sig[i]) * (y - denoised) / sig[i]
    return y.applyfunc(sp.expand), zs, sig


def expectation(expr, zs, std):
    """``E[expr]`` for ``z ~ N(0, std^2 I)``: each monomial ``z^alpha`` by Isserlis, ``prod std^a (a - 1)!!``."""
    poly = sp.Poly(sp.expand(expr), *zs)
    return sp.expand(sum(c * sp.prod([std**a * gaussian_moment(a) for a in alpha]) for alpha, c in poly.terms()))


def symbolic_moments(dim: int, degree: int, steps: int):
    """Exact mean vector and covariance matrix of :func:`symbolic_output` for ``z ~ N(0, sigma_0^2 I)``."""
    P, zs, sig = symbolic_output(dim, degree, steps)
    mean = P.applyfunc(lambda e: expectation(e, zs, sig[0]))
    centred = P - mean
    cov = sp.Matrix(dim, dim, lambda i, j: expectation(centred[i] * centred[j], zs, sig[0]))
    return mean, cov


class FiniteStepMomentsND(Result):
    """Result 16: exact mean and covariance of the finite-step output of a polynomial denoiser in ``d`` dims.

    >>> FiniteStepMomentsND().formulas["mean, d = 2, k = 2, N = 1"].lhs
    m_{1,1}
    """

    def __init__(self):
        k, n = sp.symbols("k N", integer=True, positive=True)
        mean, cov = sp.factor(symbolic_moments(2, 2, 1)[0][0]), sp.factor(symbolic_moments(2, 1, 1)[1][0, 1])
        super().__init__(
            name="Finite-step output moments of a polynomial denoiser in d dimensions",
            statement=("With a total-degree-$k$ polynomial denoiser $D_i(y) = C_i^T h(y)$ at each noise level, "
                       "$h$ the monomials of total degree $\\le k$ in $y \\in \\mathbb{R}^d$, every Euler step "
                       "$y \\mapsto y + (\\sigma_{i+1} - \\sigma_i)(y - D_i(y))/\\sigma_i$ is a vector "
                       "polynomial of degree $k$, so $N$ steps give $x_N = P_N(z) = \\sum_\\alpha a_\\alpha "
                       "z^\\alpha$ of degree $k^N$ (Heun: $k^2$ per step with $\\sigma_{i+1} > 0$; DDIM with "
                       "$\\eta = 0$ is Euler). For $z \\sim \\mathcal{N}(0, \\sigma_0^2 I)$ the output mean "
                       "$\\sum_\\alpha a_\\alpha \\mathbb{E}[z^\\alpha]$ and covariance $\\sum_{\\alpha,\\beta} "
                       "\\bar a_\\alpha \\bar a_\\beta^T \\mathbb{E}[z^{\\alpha+\\beta}]$ ($\\bar a$: coefficients "
                       "of $P_N - \\mathbb{E} P_N$) are finite sums of Gaussian moments, $\\mathbb{E}[z^\\alpha] = "
                       "\\prod_j \\sigma_0^{\\alpha_j} (\\alpha_j - 1)!!$ for all $\\alpha_j$ even and 0 otherwise "
                       "(Isserlis). Formulas: one step, $s \\equiv 1$, generic coefficients $c_{i,j,\\alpha}$ of "
                       "$D_i(y)_j = \\sum_\\alpha c_{i,j,\\alpha} y^\\alpha$; $m_{1,1}$ the mean of the first "
                       "coordinate of $x_1$, $V_{1,12}$ the covariance of its two coordinates."),
            assumptions=("deterministic sampler (Euler, DDIM with $\\eta = 0$, Heun) on a fixed grid "
                         "$\\sigma_0 > \\dots > \\sigma_N \\ge 0$",
                         "the denoiser at $\\sigma_i$ is a polynomial of total degree $k$ in $y$ (e.g. the "
                         "optimal one from the mixed moments, Results 14 and 15)",
                         "initial state $z \\sim \\mathcal{N}(0, \\sigma_0^2 I)$ (VE prior)"),
            formulas={"output degree": sp.Eq(sp.Symbol("deg P_N"), k**n),
                      "mean, d = 2, k = 2, N = 1": sp.Eq(sp.Symbol("m_{1,1}"), mean),
                      "covariance, d = 2, k = 1, N = 1": sp.Eq(sp.Symbol("V_{1,12}"), cov)},
        )

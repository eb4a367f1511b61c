"""Polynomial denoisers ``D(y) = sum_{j<=k} c_j(sigma) y^j`` in 1-D: their optimum, moment equivalence, small noise.

The optimum solves the normal equations in the moments ``m_i = E[x0^i]`` of the target (``m_0 = 1``);
they are derived with sympy for ``k <= 3`` and evaluated in float64 for any ``k`` after standardizing
the target (shift by the mean, scale by the standard deviation) to keep the Hankel systems conditioned.
"""
from __future__ import annotations

from functools import cache, cached_property
from math import comb

import numpy as np
import sympy as sp

from numerics import validation
from theory.result import Result
from theory.symbols import sigma

MAX_SYMBOLIC_DEGREE = 3
moment_symbols = sp.symbols("m_1:7", real=True)  # m_1 .. m_6: enough for degree 3
y = sp.Symbol("y", real=True)
ASSUMPTIONS = ("$p$ has finite moments $m_i = \\mathbb{E}[x_0^i]$ through order $2k$ ($m_0 = 1$)",
               "the Hankel matrix $[m_{i+j}]_{i,j \\le k}$ is positive definite, i.e. $p$ has more than "
               "$k$ support points",
               "$y = x_0 + \\sigma n$ with $n \\sim \\mathcal{N}(0, 1)$ independent of $x_0$, $\\sigma > 0$")
HANKEL_RTOL = 1e-12  # smallest/largest eigenvalue of the equilibrated standardized Hankel matrix: ~1e4 x eps


def gaussian_moment(order: int) -> int:
    """``E[n^l]`` for ``n ~ N(0, 1)``: ``(l - 1)!!`` for even ``l``, 0 for odd ``l``."""
    return 0 if order % 2 else int(np.prod(np.arange(order - 1, 0, -2), dtype=object))


def _degree(value, name: str = "degree") -> int:
    """Return ``value`` if it is an integer >= 0."""
    numeric = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not numeric or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def noisy_moment(i: int, j: int, moments, sigma_value):
    """``E[x0^i y^j]`` with ``y = x0 + sigma n``: ``sum_l C(j, l) sigma^l E[n^l] m_{i+j-l}``.

    ``moments[r] = m_r`` (``moments[0] = m_0 = 1``); entries and ``sigma_value`` may be sympy expressions.

    >>> noisy_moment(0, 2, (1, 0, 1), 2)
    5
    """
    i, j = _degree(i, "i"), _degree(j, "j")
    if len(moments) < i + j + 1:
        raise ValueError(f"moments must hold m_0 .. m_{i + j}, got {len(moments)} entries")
    return sum(comb(j, l) * sigma_value**l * gaussian_moment(l) * moments[i + j - l]
               for l in range(0, j + 1, 2))


def normal_system(moments, sigma_value, degree: int):
    """The normal equations ``M c = v``: ``M[i][j] = E[y^(i+j)]`` and ``v[i] = E[x0 y^i]``, as nested lists."""
    k = _degree(degree)
    M = [[noisy_moment(0, i + j, moments, sigma_value) for j in range(k + 1)] for i in range(k + 1)]
    return M, [noisy_moment(1, i, moments, sigma_value) for i in range(k + 1)]


# ----------------------------------------------------------------------------- numeric moments
def _moment_array(moments, order: int) -> np.ndarray:
    """Float64 ``m_0 .. m_order`` of ``moments`` or ValueError naming ``moments``."""
    m = validation.finite_array(moments, "moments", ndim=1)
    if m.shape[0] < order + 1:
        raise ValueError(f"moments must hold m_0 .. m_{order}, got {m.shape[0]} entries")
    if abs(m[0] - 1.0) > 1e-8:  # weights of a quadrature / empirical law sum to 1 up to round-off
        raise ValueError(f"moments[0] = m_0 must be 1, got {m[0]!r}")
    return m[: order + 1] / m[0]


def _standardized(m: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``(mean, std, z)`` with ``z_i = E[((x0 - mean) / std)^i]``; ValueError if the variance is not > 0."""
    if m.shape[0] < 3:
        return (float(m[1]) if m.shape[0] > 1 else 0.0), 1.0, m.copy()
    mean, variance = m[1], m[2] - m[1] ** 2
    if not variance > HANKEL_RTOL * max(m[2], np.finfo(float).tiny):
        raise ValueError(f"moments must have m_2 > m_1^2 (positive variance), got variance {variance:.3e}")
    std = float(np.sqrt(variance))
    powers = np.arange(m.shape[0])
    central = [sum(comb(i, r) * (-mean) ** (i - r) * m[r] for r in range(i + 1)) for i in powers]
    return float(mean), std, np.asarray(central) / std**powers


def _check_hankel(z: np.ndarray, k: int) -> None:
    """ValueError naming ``moments`` unless ``[z_{i+j}]_{i,j<=k}`` is (numerically) positive definite."""
    H = np.array([[z[i + j] for j in range(k + 1)] for i in range(k + 1)])
    scale = 1.0 / np.sqrt(np.abs(np.diag(H)))
    eigenvalues = np.linalg.eigvalsh(H * np.outer(scale, scale))
    if not eigenvalues[0] > HANKEL_RTOL * eigenvalues[-1]:
        raise ValueError(f"moments must be a valid moment sequence of a law with > {k} support points: "
                         f"the Hankel matrix [m_(i+j)]_(i,j<={k}) is not positive definite")


def coefficients(moments, sigma_value, degree: int = 3) -> np.ndarray:
    """Optimal ``c_0 .. c_k`` of ``D(y) = sum_j c_j y^j`` at noise ``sigma_value``, float64, any degree ``k``.

    Solved in the standardized variable ``u = (y - m_1)/std`` with diagonal equilibration, then mapped back.
    """
    k = _degree(degree)
    sigma_value = validation.positive(sigma_value, "sigma")
    mean, std, z = _standardized(_moment_array(moments, max(2 * k, 1)))
    if k == 0:
        return np.array([mean])
    _check_hankel(z, k)
    M, v = (np.asarray(a, dtype=np.float64) for a in normal_system(z, sigma_value / std, k))
    scale = 1.0 / np.sqrt(np.diag(M))
    d = scale * np.linalg.solve(M * np.outer(scale, scale), scale * v) * std
    d[0] += mean  # E[x0 u^i] = mean E[u^i] + std E[z u^i]
    return _in_y(d, mean, std, k)


def _in_y(d: np.ndarray, mean: float, std: float, k: int) -> np.ndarray:
    """Monomial coefficients in ``y`` of ``sum_j d_j ((y - mean)/std)^j``, padded to length ``k + 1``."""
    coef = np.polynomial.Polynomial(d)(np.polynomial.Polynomial([-mean / std, 1.0 / std])).coef
    return np.pad(coef, (0, k + 1 - coef.shape[0]))[: k + 1]


def denoise(coefs, y_values) -> np.ndarray:
    """``D(y) = sum_j c_j y^j`` evaluated at ``y_values``."""
    return np.polynomial.polynomial.polyval(np.asarray(y_values, dtype=np.float64), np.asarray(coefs))


def empirical_moments(points, weights=None, order: int = 8) -> np.ndarray:
    """``m_0 .. m_order`` of the discrete law ``sum_r w_r delta_{x_r}`` (uniform weights by default)."""
    x = validation.finite_array(points, "points", ndim=1)
    w = np.full(x.shape, 1.0 / x.shape[0]) if weights is None else validation.finite_array(weights, "weights", ndim=1)
    return np.array([np.sum(w * x**i) for i in range(_degree(order, "order") + 1)])


# ----------------------------------------------------------------------------- Result 9
@cache
def _symbolic_solution(degree: int):
    """Cramer's rule on the symbolic normal equations (numerator and Hankel determinant are coprime)."""
    moments = (sp.Integer(1),) + moment_symbols[: max(2 * degree, 1)]
    M, v = (sp.Matrix(a) for a in normal_system(moments, sigma, degree))
    det = sp.expand(M.det(method="berkowitz"))
    coefs = []
    for j in range(degree + 1):
        Mj = M.copy()
        Mj[:, j] = v
        coefs.append(sp.expand(Mj.det(method="berkowitz")) / det)
    return M, v, tuple(coefs)


class OptimalPolynomialDenoiser(Result):
    """Result 9: the MSE-optimal degree-``k`` polynomial denoiser, from the moments ``m_1 .. m_2k``.

    .. math:: \\sum_{j=0}^k c_j(\\sigma)\\, \\mathbb{E}[y^{i+j}] = \\mathbb{E}[x_0 y^i], \\quad i = 0..k

    >>> OptimalPolynomialDenoiser(degree=1).coefficient_exprs
    (-m_1*sigma**2/(m_1**2 - m_2 - sigma**2), (m_1**2 - m_2)/(m_1**2 - m_2 - sigma**2))
    """

    def __init__(self, degree: int = 3):
        k = _degree(degree)
        if k > MAX_SYMBOLIC_DEGREE:
            raise ValueError(f"degree must be <= {MAX_SYMBOLIC_DEGREE} for the symbolic result, got {k}; "
                             "use coefficients() for higher degrees")
        M, v, coefs = _symbolic_solution(k)
        coefs = tuple(sp.factor(c) for c in coefs) if k <= 2 else coefs  # k = 3: 47-59 terms, no factoring
        object.__setattr__(self, "degree", k)
        object.__setattr__(self, "coefficient_exprs", coefs)
        object.__setattr__(self, "system", (M, v))
        c = sp.Matrix(sp.symbols(f"c_0:{k + 1}"))
        formulas = ({f"c_{j}": sp.Eq(c[j], e) for j, e in enumerate(coefs)} if k <= 2
                    else {"normal equations M c = v": sp.Eq(M * c, v, evaluate=False)})
        super().__init__(
            name=f"Optimal polynomial denoiser of degree {k}",
            statement=("Among polynomials $D(y) = \\sum_{j \\le k} c_j y^j$ the minimizer of "
                       "$\\mathbb{E}(D(x_0 + \\sigma n) - x_0)^2$ solves the normal equations below; its "
                       "coefficients are rational functions of $\\sigma$ and $m_1, \\dots, m_{2k}$ only. "
                       "For $k = 1$ it is the Wiener filter; on Gaussian moments it is linear for every $k$; "
                       "as $\\sigma \\to 0$ it tends to the identity. "
                       + ("Formulas: one per coefficient." if k <= 2 else
                          "Formulas: the linear system $M c = v$ (closed forms have up to 59 terms).")),
            assumptions=ASSUMPTIONS,
            formulas=formulas,
        )

    @cached_property
    def _numeric(self):
        return sp.lambdify((moment_symbols[: max(2 * self.degree, 1)], sigma), list(self.coefficient_exprs), "numpy")

    def evaluate(self, moments, sigma_value) -> np.ndarray:
        """The symbolic coefficients at ``moments = (m_0, .., m_2k)`` and ``sigma_value`` (no conditioning care)."""
        m = _moment_array(moments, max(2 * self.degree, 1))
        s = validation.positive(sigma_value, "sigma")
        return np.asarray(self._numeric(tuple(m[1:]), s), dtype=np.float64)


# ----------------------------------------------------------------------------- Result 10
def gauss_quadrature(moments, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``points``-point Gauss rule of the law with ``moments`` (Golub--Welsch).

    Uses ``m_0 .. m_{2 points - 1}``; the rule reproduces exactly these moments.
    """
    n = validation.positive_int(points, "points")
    mean, std, z = _standardized(_moment_array(moments, 2 * n - 1))
    if n == 1:
        return np.array([mean]), np.array([1.0])
    _check_hankel(z, n - 1)
    H = np.array([[z[i + j] for j in range(n)] for i in range(n)])
    L = np.linalg.cholesky(H)
    R = np.column_stack([L.T, np.linalg.solve(L, z[n: 2 * n])])  # n x (n+1) upper Cholesky factor
    ratio = np.array([R[j, j + 1] / R[j, j] for j in range(n)])
    alpha = ratio - np.concatenate([[0.0], ratio[:-1]])
    off = np.array([R[j + 1, j + 1] / R[j, j] for j in range(n - 1)])
    t, V = np.linalg.eigh(np.diag(alpha) + np.diag(off, 1) + np.diag(off, -1))
    return mean + std * t, V[0] ** 2


class MomentEquivalence(Result):
    """Result 10: a degree-``k`` denoiser sees ``p`` only through ``m_1 .. m_2k``.

    >>> MomentEquivalence().moments_used(2)
    (m_1, m_2, m_3, m_4)
    """

    def __init__(self):
        k, r = sp.symbols("k r", integer=True, positive=True)
        w, xs, i = sp.IndexedBase("w"), sp.IndexedBase("x"), sp.Symbol("i", integer=True)
        super().__init__(
            name="Moment equivalence of polynomial denoisers",
            statement=("The optimal degree-$k$ denoiser at every $\\sigma$ depends on $p$ only through "
                       "$m_1, \\dots, m_{2k}$ (Result 9), hence so does the law generated with it by every "
                       "sampler, schedule and initialization. In particular a degree-$k$ denoiser cannot tell "
                       "$p$ from its $(k+1)$-point Gauss quadrature, which matches $m_0, \\dots, m_{2k+1}$; a "
                       "surrogate matching only $m_1, \\dots, m_{2k-1}$ (e.g. a $(k+1)$-point law with another "
                       "$m_{2k}$) generally gives another denoiser."),
            assumptions=ASSUMPTIONS + ("the sampler uses the optimal degree-$k$ denoiser at each of its "
                                       "noise levels (any schedule, any initialization)",),
            formulas={"Gauss quadrature, i = 0..2k+1": sp.Eq(sp.Sum(w[r] * xs[r] ** i, (r, 1, k + 1)),
                                                             sp.Symbol("m_i"))},
        )

    @staticmethod
    def moments_used(degree: int) -> tuple:
        """The moment symbols in the symbolic normal equations of the given degree (sorted by order)."""
        k = _degree(degree)
        moments = (sp.Integer(1),) + sp.symbols(f"m_1:{2 * k + 2}", real=True)
        M, v = normal_system(moments, sigma, k)
        used = set().union(*(sp.sympify(e).free_symbols for e in sum(M, []) + v)) - {sigma}
        return tuple(sorted(used, key=lambda s_: int(s_.name[2:])))


# ----------------------------------------------------------------------------- Result 11
def score_projection(moments, degree: int) -> np.ndarray:
    """Coefficients of ``s_k``, the L2(p) projection of the score onto polynomials of degree <= k.

    Solves ``[m_{i+j}] a = b`` with ``b_i = E[s(x) x^i] = -i m_{i-1}`` (integration by parts).
    """
    k = _degree(degree)
    mean, std, z = _standardized(_moment_array(moments, max(2 * k, 1)))
    if k == 0:
        return np.zeros(1)
    _check_hankel(z, k)
    H = np.array([[z[i + j] for j in range(k + 1)] for i in range(k + 1)])
    b = np.array([-i * z[i - 1] if i else 0.0 for i in range(k + 1)])
    a = np.linalg.solve(H, b) / std  # score of x = (score of z) / std at z = (x - mean)/std
    return _in_y(a, mean, std, k)


@cache
def _series(degree: int):
    """``sigma^2`` coefficients of the symbolic optimal coefficients, and the symbolic score projection."""
    _, _, coefs = _symbolic_solution(degree)
    t = sp.Symbol("t", positive=True)  # t = sigma^2: the coefficients are rational in sigma^2
    second = tuple(sp.factor(sp.diff(c.subs(sigma, sp.sqrt(t)), t).subs(t, 0)) for c in coefs)
    moments = (sp.Integer(1),) + moment_symbols[: 2 * degree]
    H = sp.Matrix(degree + 1, degree + 1, lambda i, j: moments[i + j])
    b = sp.Matrix([-i * moments[i - 1] if i else 0 for i in range(degree + 1)])
    projection = tuple(sp.factor(e) for e in H.LUsolve(b))
    return second, projection


class SmallNoiseExpansion(Result):
    """Result 11: ``D(y; sigma) = y + sigma^2 s_k(y) + O(sigma^4)``, ``s_k`` the projected score.

    .. math:: D_k(y;\\sigma) = y + \\sigma^2 (\\Pi_k \\nabla \\log p)(y) + O(\\sigma^4)

    >>> SmallNoiseExpansion(degree=1).projection_exprs
    (-m_1/(m_1**2 - m_2), 1/(m_1**2 - m_2))
    """

    def __init__(self, degree: int = 2):
        k = _degree(degree)
        if k > 2:
            raise ValueError(f"degree must be <= 2 for the symbolic expansion, got {k}; use score_projection()")
        second, projection = _series(k)
        object.__setattr__(self, "degree", k)
        object.__setattr__(self, "series_exprs", second)
        object.__setattr__(self, "projection_exprs", projection)
        s_k = sum(a * y**j for j, a in enumerate(projection))
        super().__init__(
            name=f"Small-noise expansion of the degree-{k} polynomial denoiser",
            statement=("As $\\sigma \\to 0$ the optimal degree-$k$ denoiser is $D(y;\\sigma) = y + \\sigma^2 "
                       "s_k(y) + O(\\sigma^4)$ where $s_k$ is the $L^2(p)$ projection of the score "
                       "$\\nabla \\log p$ onto polynomials of degree $\\le k$, computed from the moments by "
                       "$\\mathbb{E}[s(x_0) x_0^i] = -i\\, m_{i-1}$. For a Gaussian, $s_k$ is the exact score "
                       "$-(y - \\mu)/\\lambda$."),
            assumptions=ASSUMPTIONS + ("$p$ has a differentiable density with $x^i p(x) \\to 0$ at "
                                       "$\\pm\\infty$ (integration by parts); $s_k$ uses only $m_0..m_{2k}$ "
                                       "and is defined for any law meeting the Hankel condition",),
            formulas={"expansion": sp.Eq(sp.Function("D")(y), y + sigma**2 * sp.Function("s_k")(y)
                                         + sp.O(sigma**4)),
                      "projected score": sp.Eq(sp.Function("s_k")(y), s_k)},
            exact=False,
        )

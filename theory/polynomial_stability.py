"""Result 17: finite-sigma blow-up of a polynomial probability-flow field, and the criterion that predicts it.

Mechanism. With ``tau = log(sigma_max / sigma)`` (time running down the noise) and ``v = y - mean`` the
flow is ``dv/dtau = D(y) - y``. Along a ray ``v = r theta`` (``|theta| = 1``) a denoiser with linear part
``J(sigma)`` and top-degree homogeneous part ``P_k(v; sigma)`` moves ``r`` by
``dr/dtau = (a - 1) r + b r^k``, ``a = theta^T J theta``, ``b = theta . P_k(theta)``: the linear part
contracts (``a < 1``), the top-degree part pushes out where ``b > 0``, and wins once ``r^(k-1)`` is large
enough. This Bernoulli equation is linear in ``u = r^(1-k)``:

.. math::

    \\frac{du}{d\\tau} = (1 - k)\\big((a - 1)u + b\\big), \\qquad
    u(\\tau) = e^{(1-k)\\Lambda(\\tau)}\\big(r_0^{1-k} - G(\\tau)\\big),

    \\Lambda(\\tau) = \\int_0^\\tau (a - 1)\\,d\\tau', \\qquad
    G(\\tau) = (k - 1)\\int_0^\\tau b\\, e^{(k-1)\\Lambda}\\,d\\tau',

so ``r`` reaches infinity exactly when ``u`` reaches 0: at the first ``tau`` with ``G(tau) = r_0^(1-k)``.
Starts with ``r_0 >= rho = (max G)^(-1/(k-1))`` blow up before ``sigma_end``, the others stay finite.

Exact for ``D = mean + a v + b (w . v)^k w`` (``theta = w``; the part of ``v`` orthogonal to ``w`` only
contracts). For a full polynomial (or random features) the intermediate degrees, the constant and the
turning of the direction are dropped: the escape radius is then a leading-order prediction, neither
sufficient nor necessary; measured on the 1-D bimodal target (``sigma_max = 80``): k = 2 predicts
7.53 sigma_max where the flow diverges from 7.6, k = 4 predicts 2.5 where it diverges from 7.8 (at
``|u| ~ 3`` every degree is comparable), see docs/results/polynomial-multivariate.md.

>>> BernoulliBlowup().formulas["linearized"]
Eq(Derivative(u(tau), tau), (1 - k)*((a(tau) - 1)*u(tau) + b(tau)))
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from scipy.integrate import cumulative_trapezoid

from numerics import validation
from theory.result import Result

GRID_POINTS = 4001  # log-sigma grid of the growth integral: trapezoid error ~ (10.6 / 4000)^2 ~ 7e-6 relative


class BernoulliBlowup(Result):
    """Result 17: the ray equation ``dr/dtau = (a - 1) r + b r^k`` blows up iff ``G`` reaches ``r_0^(1-k)``.

    >>> BernoulliBlowup().formulas["constant coefficients"].rhs
    b*(exp(tau*(a - 1)*(k - 1)) - 1)/(a - 1)
    """

    def __init__(self):
        tau, s, k = sp.Symbol("tau", nonnegative=True), sp.Symbol("s"), sp.Symbol("k", integer=True)
        a, b, r, u, G, Lam = (sp.Function(n) for n in ("a", "b", "r", "u", "G", "Lambda"))
        r0, rho, A, B = sp.Symbol("r_0", positive=True), sp.Symbol("rho"), sp.Symbol("a"), sp.Symbol("b")
        ray = (a(tau) - 1) * r(tau) + b(tau) * r(tau) ** k
        du = sp.diff(r(tau) ** (1 - k), tau).subs(sp.Derivative(r(tau), tau), ray)  # u = r^(1-k)
        linear = sp.collect(sp.expand(sp.powsimp(sp.expand(du))), k)
        target = (1 - k) * ((a(tau) - 1) * u(tau) + b(tau))
        assert sp.simplify(linear - target.subs(u(tau), r(tau) ** (1 - k))) == 0  # the substitution is exact
        lam = sp.Symbol("lambda", nonzero=True)  # (k - 1)(a - 1): constant a, b integrate in closed form
        constant = sp.together((k - 1) * sp.integrate(B * sp.exp(lam * s), (s, 0, tau))).subs(lam, (k - 1) * (A - 1))
        super().__init__(
            name="Finite-sigma blow-up of the polynomial flow (Bernoulli criterion)",
            statement=("Along a ray $v = r\\theta$ of $v = y - \\bar x$, with $\\tau = \\log(\\sigma_{max}/\\sigma)$, "
                       "a denoiser with linear part $a = \\theta^T J\\theta$ and top-degree part "
                       "$b = \\theta\\cdot P_k(\\theta)$, $k \\ge 2$, moves $r$ by "
                       "$dr/d\\tau = (a - 1)r + b r^k$; $u = r^{1-k}$ makes it linear, so $r$ blows up at the "
                       "first $\\tau$ with $G(\\tau) = r_0^{1-k}$ and every start with $r_0 \\ge \\rho = "
                       "(\\max_{\\sigma \\ge \\sigma_{end}} G)^{-1/(k-1)}$ diverges before $\\sigma_{end}$, the "
                       "others stay finite. Exact for $D = \\bar x + a v + b (w\\cdot v)^k w$; for a full "
                       "polynomial a leading-order prediction (intermediate degrees dropped)."),
            assumptions=("$k \\ge 2$, $a$ and $b$ continuous on $[\\sigma_{end}, \\sigma_{max}]$",
                         "the field along the ray is exactly $(a - 1)r + b r^k$ (otherwise leading order only)",
                         "$r_0 > 0$: the ray $r = 0$ is invariant, so $r$ keeps its sign"),
            formulas={"ray flow": sp.Eq(sp.Derivative(r(tau), tau), ray),
                      "linearized": sp.Eq(sp.Derivative(u(tau), tau), target),
                      "log contraction": sp.Eq(Lam(tau), sp.Integral(a(s) - 1, (s, 0, tau))),
                      "growth integral": sp.Eq(G(tau), (k - 1) * sp.Integral(b(s) * sp.exp((k - 1) * Lam(s)),
                                                                              (s, 0, tau))),
                      "blow-up": sp.Eq(r0 ** (1 - k), G(sp.Symbol("tau_*"))),
                      "escape radius": sp.Eq(rho, sp.Max(G(tau)) ** (-1 / (k - 1))),
                      "constant coefficients": sp.Eq(G(tau), constant)},
            exact=True,
        )


def _ray_degree(k) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 2:
        raise ValueError(f"k must be an integer >= 2 (degree 1 fields are linear: no blow-up), got {k!r}")
    return int(k)


def sigma_grid(sigma_max, sigma_end, num: int = GRID_POINTS) -> np.ndarray:
    """``num`` log-spaced noise levels from ``sigma_max`` down to ``sigma_end > 0``."""
    sigma_max, sigma_end = validation.positive(sigma_max, "sigma_max"), validation.positive(sigma_end, "sigma_end")
    if sigma_end >= sigma_max:
        raise ValueError(f"sigma_end must be < sigma_max, got {sigma_end!r} >= {sigma_max!r}")
    return np.geomspace(sigma_max, sigma_end, validation.positive_int(num, "num"))


def growth_integral(sigmas, a, b, k) -> np.ndarray:
    """``G`` on the decreasing grid ``sigmas`` for ray coefficients ``a``, ``b`` of shape (n,) or (n, m)."""
    k, s = _ray_degree(k), validation.finite_array(sigmas, "sigmas", ndim=1)
    if s.size < 2 or np.any(s <= 0) or np.any(np.diff(s) >= 0):
        raise ValueError("sigmas must be >= 2 positive, strictly decreasing noise levels")
    a, b = validation.finite_array(a, "a"), validation.finite_array(b, "b")
    if a.shape != b.shape or a.shape[0] != s.size:
        raise ValueError(f"a and b must have the same shape with one row per sigma ({s.size}), got {a.shape}, {b.shape}")
    tau = np.log(s[0] / s).reshape(-1, *([1] * (a.ndim - 1)))
    log_contraction = cumulative_trapezoid(a - 1.0, tau, axis=0, initial=0.0)
    return (k - 1) * cumulative_trapezoid(b * np.exp((k - 1) * log_contraction), tau, axis=0, initial=0.0)


def escape_radius(G, k) -> np.ndarray:
    """``rho = (max G)^(-1/(k-1))`` per column of ``G`` (``inf`` where ``G`` never gets above 0)."""
    k, top = _ray_degree(k), np.max(np.asarray(G, dtype=np.float64), axis=0)
    with np.errstate(divide="ignore"):
        return np.where(top > 0, np.maximum(top, np.finfo(float).tiny) ** (-1.0 / (k - 1)), np.inf)


def blowup_sigma(r0, sigmas, G, k) -> np.ndarray:
    """The sigma where a start at radius ``r0`` (per column of ``G``) blows up, ``nan`` if it stays finite."""
    k = _ray_degree(k)
    r0 = np.broadcast_to(np.asarray(r0, dtype=np.float64), np.shape(G)[1:])
    if np.any(r0 <= 0):
        raise ValueError("r0 must be > 0 (distance of the start from the mean along its ray)")
    G = np.asarray(G, dtype=np.float64).reshape(len(sigmas), -1)
    level = r0.reshape(-1) ** (1 - k)
    out = np.full(level.shape, np.nan)
    for j in range(G.shape[1]):
        hit = np.nonzero(G[:, j] >= level[j])[0]
        if hit.size:
            i = hit[0]  # linear interpolation of G in log sigma between the last level below and the first above
            w = (level[j] - G[i - 1, j]) / (G[i, j] - G[i - 1, j])
            out[j] = float(np.exp((1 - w) * np.log(sigmas[i - 1]) + w * np.log(sigmas[i])))
    return out.reshape(r0.shape)


def polynomial_ray_terms(coefficient_fn, mean: float, sigmas, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """1-D ``(a, b)`` of shape (n, 2) for the rays ``theta = +1, -1`` of ``D(y) = polyval(c(sigma), y)``."""
    k = _ray_degree(degree)
    shift = np.polynomial.Polynomial([float(mean), 1.0])
    a, b = [], []
    for s in sigmas:  # the coefficients of D(mean + v) in v
        c = np.polynomial.Polynomial(np.asarray(coefficient_fn(float(s)), dtype=np.float64))(shift).coef
        c = np.pad(c, (0, k + 1 - c.size))
        a.append([c[1], c[1]])
        b.append([c[k], (-1) ** (k + 1) * c[k]])  # along -1: r = -v, dr/dtau = (a - 1) r - b (-r)^k
    return np.array(a), np.array(b)


def multivariate_ray_terms(denoiser, sigmas, thetas) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` of shape (n, m) of a :class:`theory.polynomial_flow_nd.MultivariateDenoiser` on unit ``thetas``
    (m, d): ``D = mean + scale sum_alpha C_alpha (v / scale)^alpha``, so degree j carries ``scale^(1 - j)``."""
    k, E = _ray_degree(denoiser.k), denoiser.exponents
    thetas = _unit(thetas, denoiser.d)
    linear, top = E.sum(axis=1) == 1, E.sum(axis=1) == k
    theta_powers = np.prod(thetas[:, None, :] ** E[None, top], axis=2)  # (m, F_k)
    order = np.argmax(E[linear], axis=1)  # which coordinate each linear monomial is
    a, b = [], []
    for s in sigmas:
        C = denoiser.coefficients(float(s))
        J = np.zeros((denoiser.d, denoiser.d))
        J[order] = C[linear]  # J[l, i] = dD_i / dv_l
        a.append(np.einsum("ml,li,mi->m", thetas, J, thetas))
        b.append(denoiser.scale ** (1 - k) * np.einsum("mf,fi,mi->m", theta_powers, C[top], thetas))
    return np.array(a), np.array(b)


def feature_ray_terms(R, linear_coef, top_coef, scale, theta, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` per unit ``theta`` (m, d) of ``D = c + sum_j [A_1 (R u)_j + ... + A_k (R u)_j^k]``,
    ``u = v / scale``: ``linear_coef``, ``top_coef`` (features x d) are ``A_1``, ``A_k``; one noise level."""
    k = _ray_degree(degree)
    theta = _unit(theta, np.shape(R)[1])
    projected = theta / np.asarray(scale, dtype=np.float64) @ np.asarray(R, dtype=np.float64).T  # (m, F)
    return (np.einsum("mf,fi,mi->m", projected, linear_coef, theta),
            np.einsum("mf,fi,mi->m", projected ** k, top_coef, theta))


def _unit(thetas, d: int) -> np.ndarray:
    thetas = validation.finite_array(thetas, "thetas", ndim=2)
    norms = np.linalg.norm(thetas, axis=1, keepdims=True)
    if thetas.shape[1] != d or np.any(norms == 0):
        raise ValueError(f"thetas must be nonzero directions of shape (m, {d}), got {thetas.shape}")
    return thetas / norms

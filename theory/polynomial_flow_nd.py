"""Result 15: the exact generated density in any d by the flow map and its log-determinant; the inverse flow.

The optimal total-degree-``k`` denoiser of a discrete law (atoms, weights) is built here from its mixed
moments (normal equations of Result 14, noisy moments by Isserlis), in the isotropically standardized
variable ``u = (y - mean) / scale``. With ``t = log sigma`` the probability-flow ODE is ``dy/dt = y - D(y)``
and, by the instantaneous change of variables, ``d log|det J|/dt = tr(I - dD/dy) = d - tr dD/dy``; so the
generated density at ``x = T(z)`` is ``phi_prior(z) / |det J(z)|``. Integrating from ``sigma_end`` back up
to ``sigma_max`` is the inverse map ``T^{-1}``. Trajectories that leave every bound raise
:class:`theory.polynomial_law.FlowDivergence` (the starts and the sigma where they left).
"""
from __future__ import annotations


import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from numerics import validation
from theory.polynomial import _degree
from theory.polynomial_law import BOUND_FACTOR, FlowDivergence
from theory.polynomial_nd import multi_indices, noisy_mixed_moment
from theory.result import Result
from theory.symbols import sigma

MAX_FEATURES = 400  # monomials of total degree <= k: the normal equations are F x F per right-hand-side call


class MultivariateDenoiser:
    """``sigma -> C(sigma)``: the optimal degree-``k`` denoiser of the law ``(atoms, weights)`` from its moments."""

    def __init__(self, atoms, weights, degree: int):
        x = validation.finite_array(atoms, "atoms", ndim=2)
        w = np.full(x.shape[0], 1.0 / x.shape[0]) if weights is None else validation.finite_array(weights, "weights", ndim=1)
        self.k, self.d = _degree(degree), x.shape[1]
        self.exponents = np.array(multi_indices(self.d, self.k))
        if len(self.exponents) > MAX_FEATURES:
            raise ValueError(f"degree {self.k} in dim {self.d} has {len(self.exponents)} monomials > {MAX_FEATURES}")
        self.mean = w @ x
        self.scale = float(np.sqrt(w @ ((x - self.mean) ** 2).sum(axis=1) / self.d))
        u = (x - self.mean) / self.scale
        cache = {}

        def moment(alpha):  # E[u^alpha] of the standardized law
            if alpha not in cache:
                cache[alpha] = float(w @ np.prod(u ** np.asarray(alpha), axis=1))
            return cache[alpha]
        s = np.polynomial.Polynomial([0.0, 1.0])  # the noisy moments are polynomials in s = sigma / scale
        basis = [tuple(int(v) for v in a) for a in self.exponents]
        units = [tuple(int(i == j) for j in range(self.d)) for i in range(self.d)]
        zero = (0,) * self.d
        coef = lambda p: np.pad(np.atleast_1d(getattr(p, "coef", p)), (0, 2 * self.k + 1))[: 2 * self.k + 1]
        self.M = np.array([[coef(noisy_mixed_moment(tuple(x_ + y_ for x_, y_ in zip(a, b)), zero, moment, s))
                            for b in basis] for a in basis])  # F x F x (2k + 1)
        self.V = np.array([[coef(noisy_mixed_moment(a, e, moment, s)) for e in units] for a in basis])

    def coefficients(self, sigma_value: float) -> np.ndarray:
        """``C`` (F x d) with ``D(y) = mean + scale * phi(u)^T C``, by the equilibrated normal equations."""
        powers = (sigma_value / self.scale) ** np.arange(2 * self.k + 1)
        M, V = self.M @ powers, self.V @ powers
        r = 1.0 / np.sqrt(np.diag(M))
        return r[:, None] * np.linalg.solve(M * np.outer(r, r), r[:, None] * V)

    def field(self, y: np.ndarray, sigma_value: float) -> tuple[np.ndarray, np.ndarray]:
        """``(y - D(y), d - tr dD/dy)`` for ``y`` of shape (n, d)."""
        C = self.coefficients(sigma_value)
        u = (y - self.mean) / self.scale
        phi = np.prod(u[:, None, :] ** self.exponents[None], axis=2)
        trace = np.zeros(y.shape[0])
        for i in range(self.d):  # d phi / d u_i = alpha_i u^(alpha - e_i)
            lowered = np.maximum(self.exponents - np.eye(self.d, dtype=int)[i], 0)
            dphi = self.exponents[None, :, i] * np.prod(u[:, None, :] ** lowered[None], axis=2)
            trace += dphi @ C[:, i]
        return y - (self.mean + self.scale * phi @ C), self.d - trace


def _integrate(denoiser, y0, t0, t1, rtol, atol):
    """``(y, log|det J|)`` after integrating from ``t0`` to ``t1`` (t = log sigma); FlowDivergence if it escapes."""
    n, d = y0.shape
    bound = BOUND_FACTOR * (denoiser.scale + float(np.max(np.abs(denoiser.mean))) + 1.0)

    def rhs(t, state):
        f, tr = denoiser.field(state[: n * d].reshape(n, d), float(np.exp(t)))
        return np.concatenate([f.ravel(), tr])

    def escape(t, state):
        y = state[: n * d]
        return bound - np.max(np.abs(y)) if np.all(np.isfinite(y)) else -1.0
    escape.terminal = True
    with np.errstate(over="ignore", invalid="ignore"):
        sol = solve_ivp(rhs, (t0, t1), np.concatenate([y0.ravel(), np.zeros(n)]), method="DOP853",
                        rtol=rtol, atol=atol, events=escape)
    y, logdet = sol.y[: n * d, -1].reshape(n, d), sol.y[n * d:, -1]
    if sol.status != 0 or not np.all(np.isfinite(y)):
        bad = ~np.all(np.isfinite(y), axis=1) | (np.max(np.abs(y), axis=1) >= bound * 0.999)
        raise FlowDivergence(np.linalg.norm(y0[bad], axis=1), np.full(int(bad.sum()), float(np.exp(sol.t[-1]))))
    return y, logdet


def flow_map_nd(denoiser: MultivariateDenoiser, z, sigma_max, sigma_end, *, rtol=1e-10, atol=1e-10):
    """``(T(z), log|det dT/dz|)`` from ``sigma_max`` down to ``sigma_end > 0`` for starts ``z`` (n, d)."""
    z = validation.finite_array(z, "z", ndim=2)
    return _integrate(denoiser, z, np.log(validation.positive(sigma_max, "sigma_max")),
                      np.log(validation.positive(sigma_end, "sigma_end")), rtol, atol)


def inverse_flow_nd(denoiser: MultivariateDenoiser, x, sigma_max, sigma_end, *, rtol=1e-10, atol=1e-10):
    """``T^{-1}(x)``: the same ODE integrated from ``sigma_end`` back up to ``sigma_max``."""
    x = validation.finite_array(x, "x", ndim=2)
    z, _ = _integrate(denoiser, x, np.log(validation.positive(sigma_end, "sigma_end")),
                      np.log(validation.positive(sigma_max, "sigma_max")), rtol, atol)
    return z


def log_density(z, logdet, prior_std: float) -> np.ndarray:
    """``log p_gen(T(z)) = log phi_prior(z) - log|det J(z)|`` for the prior ``N(0, prior_std^2 I)``."""
    d = z.shape[1]
    return (-0.5 * np.sum((z / prior_std) ** 2, axis=1) - d * np.log(prior_std * np.sqrt(2 * np.pi))) - logdet


class MultivariateFlowDensity(Result):
    """Result 15: exact generated density in any d by flow map and log-determinant.

    >>> sorted(MultivariateFlowDensity().formulas)
    ['density', 'flow', 'log-determinant']
    """

    def __init__(self):
        y, L, D = sp.Function("y")(sigma), sp.Function("L")(sigma), sp.Function("D")
        d = sp.Symbol("d", integer=True, positive=True)
        z = sp.Symbol("z")
        super().__init__(
            name="Exact generated density of the polynomial-denoiser flow in d dimensions",
            statement=("For a deterministic probability-flow sampler with a smooth denoiser $D(y;\\sigma)$ "
                       "(e.g. the optimal total-degree-$k$ polynomial, Result 14) the flow map "
                       "$T: y(\\sigma_{max}) = z \\mapsto y(\\sigma_{end})$ is a diffeomorphism while "
                       "trajectories stay finite; $L = \\log|\\det \\partial y/\\partial z|$ obeys "
                       "$dL/d\\sigma = \\mathrm{tr}(I - \\partial D/\\partial y)/\\sigma$, so the generated "
                       "density is $p_{gen}(T(z)) = \\varphi_{prior}(z)\\, e^{-L(\\sigma_{end})}$, and "
                       "integrating the same ODE from $\\sigma_{end}$ up to $\\sigma_{max}$ maps a generated "
                       "sample back to its start noise, which is $\\mathcal{N}(0, \\sigma_{max}^2 I)$."),
            assumptions=("$D$ is $C^1$ in $y$ and continuous in $\\sigma$ on $[\\sigma_{end}, \\sigma_{max}]$",
                         "every trajectory stays finite (a polynomial field may blow up in finite sigma)",
                         "VE prior $z \\sim \\mathcal{N}(0, \\sigma_{max}^2 I)$"),
            formulas={"flow": sp.Eq(sp.Derivative(y, sigma), (y - D(y, sigma)) / sigma),
                      "log-determinant": sp.Eq(sp.Derivative(L, sigma),
                                               (d - sp.Symbol("tr(dD/dy)")) / sigma),
                      "density": sp.Eq(sp.Function("p_gen")(sp.Function("T")(z)),
                                       sp.Function("phi_prior")(z) * sp.exp(-L))},
        )

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

import math

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from numerics import validation
from theory.polynomial import _degree
from theory.polynomial_law import BOUND_FACTOR, FlowDivergence
from theory import isserlis_gram as gram
from theory.result import Result
from theory.symbols import sigma

MAX_FEATURES = 2500  # monomials of total degree <= k: one F x F solve per right-hand-side call of the flow
                     # (d = 64, k = 2: F = 2145, ~0.5 s on 2 cores); d = 64, k = 3 has 47905 (an 18 GB Gram)


class MultivariateDenoiser:
    """``sigma -> C(sigma)``: the optimal degree-``k`` denoiser of the law ``(atoms, weights)`` from its moments.

    The Gram matrix and right-hand side are polynomials in ``s = sigma / scale`` with moment coefficients
    (:mod:`theory.isserlis_gram`); :meth:`coefficients` evaluates them and solves the normal equations.
    """

    def __init__(self, atoms, weights, degree: int):
        x = validation.finite_array(atoms, "atoms", ndim=2)
        w = np.full(x.shape[0], 1.0 / x.shape[0]) if weights is None else validation.finite_array(weights, "weights", ndim=1)
        self.k, self.d = _degree(degree), x.shape[1]
        features = math.comb(self.d + self.k, self.d)
        if features > MAX_FEATURES:
            raise ValueError(f"degree {self.k} in dim {self.d} has {features} monomials > {MAX_FEATURES}")
        self.mean = w @ x
        self.scale = float(np.sqrt(w @ ((x - self.mean) ** 2).sum(axis=1) / self.d))
        moments = gram.MomentLookup((x - self.mean) / self.scale, w, max(2 * self.k, self.k + 1))
        self.slots = gram.slots(self.d, self.k, self.k)                       # (F, k), padded with d
        self.exponents = np.stack([np.bincount(r, minlength=self.d + 1)[: self.d] for r in self.slots])
        pairs = np.concatenate(np.broadcast_arrays(self.slots[:, None, :], self.slots[None, :, :]), axis=-1)
        self._gram_index = moments.index(pairs)                               # (F, F) -> moment table row
        self._gram_coef = gram.noisy_coefficients(moments.table, moments)[:, : 2 * self.k + 1]  # (rows, 2k + 1)
        units = np.broadcast_to(np.arange(self.d), (len(self.slots), self.d))
        rows = np.broadcast_to(self.slots[:, None, :], units.shape + (self.k,))
        self._rhs_coef = gram.noisy_coefficients(rows, moments, extra=units)  # (F, d, k + 1)

    def normal_equations(self, sigma_value: float) -> tuple[np.ndarray, np.ndarray]:
        """Gram ``E[phi phi^T]`` (F x F) and right-hand side ``E[phi u^T]`` (F x d) at noise level ``sigma``."""
        s = sigma_value / self.scale
        M = (self._gram_coef @ s ** np.arange(2 * self.k + 1))[self._gram_index]
        return M, self._rhs_coef @ s ** np.arange(self.k + 1)

    def coefficients(self, sigma_value: float) -> np.ndarray:
        """``C`` (F x d) with ``D(y) = mean + scale * phi(u)^T C``, by the equilibrated normal equations."""
        M, V = self.normal_equations(sigma_value)
        r = 1.0 / np.sqrt(np.diag(M))
        return r[:, None] * np.linalg.solve(M * np.outer(r, r), r[:, None] * V)

    def field(self, y: np.ndarray, sigma_value: float) -> tuple[np.ndarray, np.ndarray]:
        """``(y - D(y), d - tr dD/dy)`` for ``y`` of shape (n, d)."""
        C = self.coefficients(sigma_value)
        u = (y - self.mean) / self.scale
        factors = np.concatenate([u, np.ones((u.shape[0], 1))], axis=1)[:, self.slots]  # (n, F, k)
        phi = np.prod(factors, axis=2)
        C_slot = np.concatenate([C, np.zeros((len(C), 1))], axis=1)[np.arange(len(C))[:, None], self.slots]
        trace = np.zeros(y.shape[0])
        for j in range(self.k):  # d phi / d u_c: the product over the other slots, once per slot holding c
            others = np.prod(np.delete(factors, j, axis=2), axis=2)
            trace += others @ C_slot[:, j]
        return y - (self.mean + self.scale * phi @ C), self.d - trace


def _bound(denoiser) -> float:
    return BOUND_FACTOR * (denoiser.scale + float(np.max(np.abs(denoiser.mean))) + 1.0)


def _rhs(denoiser, n: int, d: int):
    """The ODE in ``t = log sigma`` for the state ``(y (n x d), log|det J| (n))``."""
    def rhs(t, state):
        f, tr = denoiser.field(state[: n * d].reshape(n, d), float(np.exp(t)))
        return np.concatenate([f.ravel(), tr])
    return rhs


def _run(denoiser, y0, t0, t1, rtol, atol):
    """One DOP853 run, stopped when a trajectory reaches the bound: ``(sol, y, logdet, left)``, ``left`` the
    rows beyond (0.999 of) the bound or non-finite at the stop."""
    n, d = y0.shape
    bound = _bound(denoiser)

    def escape(t, state):
        y = state[: n * d]
        return bound - np.max(np.abs(y)) if np.all(np.isfinite(y)) else -1.0
    escape.terminal = True
    with np.errstate(over="ignore", invalid="ignore"):
        sol = solve_ivp(_rhs(denoiser, n, d), (t0, t1), np.concatenate([y0.ravel(), np.zeros(n)]), method="DOP853",
                        rtol=rtol, atol=atol, events=escape)
        y, logdet = sol.y[: n * d, -1].reshape(n, d), sol.y[n * d:, -1]
        left = ~np.all(np.isfinite(y), axis=1) | ~(np.max(np.abs(y), axis=1) < bound * 0.999)
    return sol, y, logdet, left


def _integrate(denoiser, y0, t0, t1, rtol, atol):
    """``(y, log|det J|)`` after integrating from ``t0`` to ``t1`` (t = log sigma); FlowDivergence if it escapes."""
    sol, y, logdet, left = _run(denoiser, y0, t0, t1, rtol, atol)
    if sol.status != 0 or np.any(left):
        bad = left if left.any() else np.ones(len(y0), bool)
        raise FlowDivergence(np.linalg.norm(y0[bad], axis=1), np.full(int(bad.sum()), float(np.exp(sol.t[-1]))))
    return y, logdet


def flow_escapes_nd(denoiser: MultivariateDenoiser, y, sigma_from, sigma_to, *, rtol=1e-10, atol=1e-10):
    """``(y(sigma_to), escaped)`` for starts ``y`` at ``sigma_from`` (either direction): each time trajectories
    reach the bound they are flagged and the others go on from there; FlowDivergence if the integration
    fails with no trajectory at the bound."""
    y = validation.finite_array(y, "y", ndim=2).copy()
    t, t1 = (np.log(validation.positive(v, name)) for v, name in ((sigma_from, "sigma_from"), (sigma_to, "sigma_to")))
    escaped, alive = np.zeros(len(y), bool), np.arange(len(y))
    while alive.size:
        sol, end, _, left = _run(denoiser, y[alive], t, t1, rtol, atol)
        y[alive] = end
        if sol.status == 0 and not left.any():
            break
        if not left.any():
            raise FlowDivergence(np.linalg.norm(end, axis=1), np.full(alive.size, float(np.exp(sol.t[-1]))))
        escaped[alive[left]], alive, t = True, alive[~left], float(sol.t[-1])
    return y, escaped


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

"""The linear (affine) denoiser: its optimum, its continuous-time law and its finite-training-set law.

Everything is derived per eigen-direction of ``Sigma`` with sympy (the isotropic noise decouples the
normal equations in that basis) and assembled numerically in float64.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np
import sympy as sp

from numerics import validation
from theory.result import Result
from theory.symbols import lam, m0, mu, sigma, sigma_end, sigma_max, v0

y = sp.Symbol("y", real=True)                  # noisy observation along one direction
x0_, n_ = sp.symbols("x_0 n", real=True)       # clean value and standard-normal noise
gain_a, offset_c = sp.symbols("a c", real=True)  # candidate affine denoiser D(y) = a y + c


def expectation(polynomial, moments_x0) -> sp.Expr:
    """``E[poly(x0, n)]`` for independent ``x0`` (moments given) and ``n ~ N(0, 1)``."""
    gaussian = {0: 1, 1: 0, 2: 1, 3: 0, 4: 3}
    poly = sp.Poly(sp.expand(polynomial), x0_, n_)
    return sp.expand(sum(coef * moments_x0(i) * gaussian[j] for (i, j), coef in poly.terms()))


def solve_normal_equations(moments_x0) -> tuple[sp.Expr, sp.Expr]:
    """Minimize ``E[(a (x0 + sigma n) + c - x0)^2]`` over ``(a, c)``: the normal equations."""
    loss = expectation((gain_a * (x0_ + sigma * n_) + offset_c - x0_) ** 2, moments_x0)
    solution = sp.solve([sp.diff(loss, gain_a), sp.diff(loss, offset_c)], [gain_a, offset_c], dict=True)[0]
    return sp.simplify(solution[gain_a]), sp.simplify(solution[offset_c])


class OptimalAffineDenoiser(Result):
    """Result 1: the MSE-optimal affine denoiser.

    .. math:: D(x;\\sigma) = \\mu + \\Sigma(\\Sigma + \\sigma^2 I)^{-1}(x - \\mu)

    >>> OptimalAffineDenoiser().gain_expr
    lambda/(lambda + sigma**2)
    """

    def __init__(self):
        a, c = solve_normal_equations(lambda i: [1, mu, lam + mu**2][i])
        object.__setattr__(self, "gain_expr", a)
        object.__setattr__(self, "offset_expr", c)
        D = sp.Function("D")
        super().__init__(
            name="Optimal affine denoiser",
            statement=("Among affine maps $D(y) = G y + b$, the minimizer of "
                       "$\\mathbb{E}\\|D(x_0 + \\sigma n) - x_0\\|^2$ is "
                       "$D(y) = \\mu + \\Sigma(\\Sigma + \\sigma^2 I)^{-1}(y - \\mu)$, per eigen-direction of "
                       "$\\Sigma$ the gain below. It depends on $p$ only through $(\\mu, \\Sigma)$ and equals "
                       "the Bayes denoiser $\\mathbb{E}[x_0 \\mid y]$ of $\\mathcal{N}(\\mu, \\Sigma)$."),
            assumptions=("$p$ has finite second moments; $\\sigma > 0$ or $\\Sigma \\succ 0$",
                         "$n \\sim \\mathcal{N}(0, I)$ independent of $x_0$"),
            formulas={"gain": sp.Eq(D(y), sp.factor(a * y + c))},
        )

    def gaussian_bayes_denoiser(self) -> sp.Expr:
        """Tweedie's formula for ``N(mu, lambda)``: ``y + sigma^2 d/dy log N(y; mu, lambda + sigma^2)``."""
        log_density = -(y - mu) ** 2 / (2 * (lam + sigma**2))
        return sp.simplify(y + sigma**2 * sp.diff(log_density, y))

    @cached_property
    def _gain(self):
        return sp.lambdify((lam, sigma), self.gain_expr, "numpy")

    def gain(self, eigenvalues, sigma_value) -> np.ndarray:
        """Per-direction gain ``lambda / (lambda + sigma^2)``; ``lambda = 0`` directions get 0."""
        eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        sigma_value = validation.positive(sigma_value, "sigma")
        return np.asarray(self._gain(eigenvalues, sigma_value), dtype=np.float64)

    def affine(self, mean, cov, sigma_value) -> tuple[np.ndarray, np.ndarray]:
        """The matrix ``G`` and offset ``b`` of ``D(x) = G x + b`` for target moments ``(mean, cov)``."""
        mean = validation.mean_vector(mean)
        cov = validation.covariance(cov, dim=len(mean))
        eigenvalues, U = np.linalg.eigh(cov)
        G = (U * self.gain(np.clip(eigenvalues, 0, None), sigma_value)) @ U.T
        return G, mean - G @ mean


def _flow_moments():
    """Solve the per-direction moment ODEs in sigma of the PF-ODE and the reverse SDE with ``D`` optimal."""
    f = sp.Function("f")
    drift = sigma / (lam + sigma**2)  # (1 - gain) / sigma: dy/dsigma = drift * y for the centred ODE
    ode = sp.dsolve(sp.Eq(f(sigma).diff(sigma), drift * f(sigma)), f(sigma), ics={f(sigma_max): 1}).rhs
    sde_mean = sp.dsolve(sp.Eq(f(sigma).diff(sigma), 2 * drift * f(sigma)), f(sigma), ics={f(sigma_max): 1}).rhs
    sde_var = sp.dsolve(sp.Eq(f(sigma).diff(sigma), 4 * drift * f(sigma) - 2 * sigma), f(sigma),
                        ics={f(sigma_max): v0}).rhs
    ode, sde_mean, sde_var = (sp.simplify(e.subs(sigma, sigma_end)) for e in (ode, sde_mean, sde_var))
    readable = (lam + sigma_end**2) + (v0 - lam - sigma_max**2) * sde_mean**2  # same solution, readable form
    assert sp.simplify(sde_var - readable) == 0, "dsolve's SDE variance disagrees with its readable form"
    return ode, sde_mean, readable


class ContinuousFlowLaw(Result):
    """Result 2: the law generated by the exact probability-flow ODE and reverse SDE with ``D`` optimal.

    In the unscaled variable ``y = x / s`` started at ``sigma_max`` from ``N(m_0, v_0)`` per direction:

    .. math:: \\text{ODE: } y_{end} - \\mu = (y_0 - \\mu)\\sqrt{\\tfrac{\\lambda + \\sigma_{end}^2}{\\lambda + \\sigma_{max}^2}}

    >>> ContinuousFlowLaw().ode_gain_expr
    sqrt(lambda + sigma_end**2)/sqrt(lambda + sigma_max**2)
    """

    def __init__(self):
        ode, sde_mean, sde_var = _flow_moments()
        object.__setattr__(self, "ode_gain_expr", ode)
        object.__setattr__(self, "sde_mean_gain_expr", sde_mean)
        object.__setattr__(self, "sde_var_expr", sde_var)
        m, v = sp.Symbol("m_{end}"), sp.Symbol("v_{end}")
        super().__init__(
            name="Continuous-time law of the linear denoiser",
            statement=("With the optimal affine denoiser, both the probability-flow ODE and the reverse SDE "
                       "map a Gaussian start to a Gaussian; per eigen-direction of $\\Sigma$ the mean and "
                       "variance at $\\sigma_{end}$ are below (multiply by $s(t_{end})$ to scale). From the "
                       "Gaussian marginal $\\mathcal{N}(\\mu, \\Sigma + \\sigma_{max}^2 I)$ ($m_0 = \\mu$, $v_0 = \\lambda + \\sigma_{max}^2$) both give "
                       "$\\mathcal{N}(\\mu, \\Sigma)$ at $\\sigma_{end} = 0$; from the VE prior "
                       "($m_0 = 0$, $v_0 = \\sigma_{max}^2$) the ODE gain is "
                       "$\\sqrt{\\lambda/(\\lambda + \\sigma_{max}^2)}$."),
            assumptions=("affine denoiser optimal for $(\\mu, \\Sigma)$ at every $\\sigma$",
                         "exact integration in $\\sigma$ of $dy/d\\sigma = (y - D(y))/\\sigma$ (ODE) and of "
                         "$dy = 2 (y - D(y))/\\sigma\\, d\\sigma + \\sqrt{2\\sigma}\\, d\\bar w$ (SDE)",
                         "start $y \\sim \\mathcal{N}(m_0, v_0)$ per direction, independent across directions"),
            formulas={"ODE mean": sp.Eq(m, mu + (m0 - mu) * ode), "ODE variance": sp.Eq(v, v0 * ode**2),
                      "SDE mean": sp.Eq(m, mu + (m0 - mu) * sde_mean), "SDE variance": sp.Eq(v, sde_var)},
        )

    @cached_property
    def _numeric(self):
        args = (lam, sigma_max, sigma_end, v0)
        return tuple(sp.lambdify(args, e, "numpy")
                     for e in (self.ode_gain_expr, self.sde_mean_gain_expr, self.sde_var_expr))

    def ode(self, eigenvalues, mean, m0, v0, sigma_max, sigma_end):
        """Per-direction ``(mean, variance)`` of ``y`` at ``sigma_end`` under the exact PF-ODE from ``sigma_max``."""
        r = self._numeric[0](np.asarray(eigenvalues, float), sigma_max, sigma_end, 0.0)
        return mean + (m0 - mean) * r, v0 * r**2

    def sde(self, eigenvalues, mean, m0, v0, sigma_max, sigma_end):
        """Per-direction ``(mean, variance)`` of ``y`` at ``sigma_end`` under the exact reverse SDE from ``sigma_max``."""
        eigenvalues = np.asarray(eigenvalues, float)
        r = self._numeric[1](eigenvalues, sigma_max, sigma_end, 0.0)
        return mean + (m0 - mean) * r, self._numeric[2](eigenvalues, sigma_max, sigma_end, v0)


class TrainingSetLaw(Result):
    """Result 4: trained on ``x_1..x_n`` the optimal affine denoiser uses ``mu_hat`` and ``Sigma_hat`` (1/n).

    >>> TrainingSetLaw().derive(3)
    True
    """

    def __init__(self):
        n, i = sp.Symbol("n", integer=True, positive=True), sp.Idx("i")
        xs = sp.IndexedBase("x")
        mu_hat = sp.Sum(xs[i], (i, 1, n)) / n
        super().__init__(
            name="Linear denoiser trained on a finite set",
            statement=("The optimal affine denoiser for the empirical distribution of $x_1, \\dots, x_n$ is "
                       "Result 1 with the empirical mean and the empirical covariance normalized by $n$. "
                       "The continuous flows from the Gaussian marginal of $(\\hat\\mu, \\hat\\Sigma)$ generate "
                       "$\\mathcal{N}(\\hat\\mu, \\hat\\Sigma)$ at $\\sigma_{end} = 0$: new samples, almost surely "
                       "no training point, supported on the affine span of the training points (dimension "
                       "$\\le n - 1$). Finite-step samplers follow Result 3 with $(\\hat\\mu, \\hat\\Sigma)$; "
                       "those whose last step is not $D(y)$ (Euler--Maruyama, the VP integrator) or that stop at "
                       "$\\sigma_{end} > 0$ put some variance off the span."),
            assumptions=("the empirical distribution is the training target",
                         "exact minimization of the denoising loss over affine maps, noise expectation exact"),
            formulas={"mean": sp.Eq(sp.Symbol("\\hat{\\mu}"), mu_hat),
                      "covariance": sp.Eq(sp.Symbol("\\hat{\\Sigma}"),
                                          sp.Sum((xs[i] - mu_hat) ** 2, (i, 1, n)) / n)},
        )

    def derive(self, n: int) -> bool:
        """Solve the normal equations for ``n`` symbolic points; True if the gain uses the 1/n variance."""
        points = sp.symbols(f"x1:{n + 1}", real=True)
        gain, _ = solve_normal_equations(lambda k: sum(p**k for p in points) / n)
        mean = sum(points) / n
        variance = sum((p - mean) ** 2 for p in points) / n
        return sp.simplify(gain - variance / (variance + sigma**2)) == 0

    @staticmethod
    def moments(train) -> tuple[np.ndarray, np.ndarray]:
        """``(mu_hat, Sigma_hat)`` of a ``(n, d)`` training set, covariance normalized by ``n``."""
        train = validation.finite_array(train, "train", ndim=2)
        if train.shape[0] < 1 or train.shape[1] < 1:
            raise ValueError(f"train must have at least one row and one column, got shape {train.shape}")
        centred = train - train.mean(axis=0)
        return train.mean(axis=0), centred.T @ centred / train.shape[0]

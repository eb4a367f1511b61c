"""The unrestricted (memorizing) denoiser: the Bayes denoiser of a training set, and what it generates.

For ``p = (1/n) sum_i delta_{x_i}`` and ``y = x0 + sigma n`` the posterior over atoms is a softmax,
so ``D(y; sigma) = sum_i w_i(y) x_i`` with ``w = softmax(-|y - x_i|^2 / (2 sigma^2))`` (with the VP
scaling, ``y = x / s``).
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from scipy.special import logsumexp

from numerics import validation
from theory.result import Result


def derive_weights(n: int = 3) -> bool:
    """Sympy: Bayes' rule over ``n`` equally likely atoms with Gaussian likelihood gives the softmax weights."""
    y, sig = sp.Symbol("y", real=True), sp.Symbol("sigma", positive=True)
    atoms = sp.symbols(f"x1:{n + 1}", real=True)
    likelihood = [sp.exp(-(y - a) ** 2 / (2 * sig**2)) / (sp.sqrt(2 * sp.pi) * sig) for a in atoms]
    posterior = [lk / sum(likelihood) for lk in likelihood]            # prior 1/n cancels
    softmax = [sp.exp(-(y - a) ** 2 / (2 * sig**2)) / sum(sp.exp(-(y - b) ** 2 / (2 * sig**2)) for b in atoms)
               for a in atoms]
    return all(sp.simplify(p - q) == 0 for p, q in zip(posterior, softmax))


class EmpiricalDenoiser(Result):
    """Result 8: the Bayes-optimal (unrestricted) denoiser of a training set and its generated law.

    .. math:: D(y;\\sigma) = \\sum_i w_i(y)\\, x_i, \\quad w = \\mathrm{softmax}\\big(-\\|y - x_i\\|^2 / 2\\sigma^2\\big)

    >>> EmpiricalDenoiser().exact
    False
    """

    def __init__(self):
        i, n = sp.symbols("i n", integer=True, positive=True)
        y, sig = sp.Symbol("y"), sp.Symbol("sigma", positive=True)
        x = sp.IndexedBase("x")
        weight = sp.exp(-(y - x[i]) ** 2 / (2 * sig**2))
        super().__init__(
            name="Memorizing (unrestricted) denoiser of a training set",
            statement=("For the empirical distribution of $x_1,\\dots,x_n$ the Bayes denoiser is the posterior "
                       "mean over atoms (below; $(y - x_i)^2$ stands for $\\|y - x_i\\|^2$). (i) Exact: from the "
                       "true marginal $p_\\sigma$ (the training set blurred by the noise), the probability-flow ODE and the reverse SDE reproduce the empirical "
                       "distribution, uniform over the training points. (ii) Limit: from the standard prior every "
                       "trajectory ends at a training point as $\\sigma_{min} \\to 0$ (almost surely). (iii) Exact, "
                       "computable: at a finite $\\sigma$ the output $D(y)$ lies within "
                       "$\\sum_i w_i(y) \\|x_i - x_{j^*}\\|$ of the most likely atom $x_{j^*}$. (iv) Contrast: the "
                       "linear denoiser on the same set generates $\\mathcal{N}(\\hat\\mu, \\hat\\Sigma)$, which "
                       "charges no training point (for $n \\ge 2$ distinct points)."),
            assumptions=("equal weights $1/n$; Gaussian noise $y = x_0 + \\sigma n$",
                         "(i) exact flows from the true marginal $p_\\sigma$; (ii) a limit, not a finite-step statement"),
            formulas={"denoiser": sp.Eq(sp.Function("D")(y, sig),
                                        sp.Sum(weight * x[i], (i, 1, n)) / sp.Sum(weight, (i, 1, n)))},
            exact=False,
        )

    @staticmethod
    def posterior_weights(y, train, sigma: float) -> np.ndarray:
        """``w_i(y) = softmax_i(-|y - x_i|^2 / (2 sigma^2))`` per row of ``y``: shape ``(len(y), n)``.

        Logits are taken relative to the nearest atom and factored, so a tiny sigma sends far atoms to
        weight 0 instead of overflowing.
        """
        train = validation.finite_array(train, "train", ndim=2)
        y = validation.finite_array(y, "y", ndim=2)
        sigma = validation.positive(sigma, "sigma")
        distance = np.linalg.norm(y[:, None, :] - train[None], axis=2)
        nearest = distance.min(axis=1, keepdims=True)
        with np.errstate(over="ignore"):  # tiny sigma: far atoms get logit -inf, weight 0
            logits = -0.5 * ((distance - nearest) / sigma) * ((distance + nearest) / sigma)
        return np.exp(logits - logsumexp(logits, axis=1, keepdims=True))

    @classmethod
    def denoise(cls, y, train, sigma: float) -> np.ndarray:
        """``D(y; sigma) = sum_i w_i(y) x_i`` (the formula), per row of ``y``."""
        return cls.posterior_weights(y, train, sigma) @ validation.finite_array(train, "train", ndim=2)

    @classmethod
    def copy_bound(cls, y, train, sigma: float) -> np.ndarray:
        """Per row of ``y``: ``sum_i w_i(y) |x_i - x_{j*}|``, a bound on the distance of ``D(y)`` to ``x_{j*}``."""
        w = cls.posterior_weights(y, train, sigma)
        train = np.asarray(train, dtype=np.float64)
        nearest = train[w.argmax(axis=1)]
        return np.einsum("ni,ni->n", w, np.linalg.norm(train[None] - nearest[:, None], axis=2))

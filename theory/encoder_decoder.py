"""Result 7: a fixed linear encoder ``W`` with an unrestricted decoder, ``D(x) = g(W^T x)``.

The optimal decoder is ``g(u) = E[x0 | W^T x_sigma = u]``. Projected, ``u = W^T y`` follows the exact
Bayes flow of the projected target ``law(W^T x0)``; the orthogonal part follows the regression.
The generated law is that of ``E[x0 | W^T x0 = u0]`` with ``u0 ~ law(W^T x0)``.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from numerics import validation
from theory.mixture import GaussianMixture, encoder
from theory.result import Result


def projected_bayes_identity() -> bool:
    """Sympy check (one component, ``r = 1``): ``w^T E[x0 | w^T x_sigma = u]`` is the 1-D Bayes denoiser of ``w^T x0``.

    With ``c = w^T C w``: ``w^T (m + C w (u - w^T m) / (c + sigma^2)) = w^T m + c (u - w^T m) / (c + sigma^2)``.
    """
    c, sig, u, wm = sp.symbols("c sigma u wm", positive=True)
    projected_regression = wm + c * (u - wm) / (c + sig**2)             # w^T applied to the d-dim regression
    tweedie = u + sig**2 * sp.diff(-(u - wm) ** 2 / (2 * (c + sig**2)), u)  # Bayes denoiser of N(wm, c)
    return sp.simplify(projected_regression - tweedie) == 0


class FixedEncoderLaw(Result):
    """The generated law of ``D(x) = g(W^T x)`` with the optimal decoder.

    .. math:: x_{gen} = \\mathbb{E}[x_0 \\mid W^\\top x_0 = u_0], \\qquad u_0 \\sim \\mathrm{law}(W^\\top x_0)

    >>> FixedEncoderLaw().formulas["mixture decoder"].lhs
    g(u, sigma)
    """

    def __init__(self):
        d, r = sp.symbols("d r", integer=True, positive=True)
        W, u = sp.MatrixSymbol("W", d, r), sp.MatrixSymbol("u", r, 1)
        m_k, C_k = sp.MatrixSymbol("m_k", d, 1), sp.MatrixSymbol("C_k", d, d)
        S_k = sp.MatrixSymbol("S_k", r, r)
        w_k = sp.Symbol("w_k")  # responsibility w_k(u), defined in the statement
        k, K = sp.symbols("k K", integer=True, positive=True)
        decoder = sp.Sum(w_k * (m_k + C_k * W * S_k.I * (u - W.T * m_k)), (k, 1, K))
        super().__init__(
            name="Fixed linear encoder, unrestricted decoder",
            statement=("For $D(x) = g(W^\\top x)$ with $W$ fixed ($d\\times r$, orthonormal columns) the optimal "
                       "decoder is $g(u) = \\mathbb{E}[x_0 \\mid W^\\top x_\\sigma = u]$. Since "
                       "$W^\\top \\mathbb{E}[x_0\\mid u] = \\mathbb{E}[W^\\top x_0 \\mid u]$, the code $u = W^\\top y$ follows "
                       "the exact Bayes probability-flow of the projected target $\\mathrm{law}(W^\\top x_0)$ and, "
                       "from its true marginal $p_\\sigma$, ends distributed as $\\mathrm{law}(W^\\top x_0)$; the orthogonal part "
                       "solves $d v/d\\sigma = (v - P_\\perp g)/\\sigma$, whose limit is $P_\\perp g(u_0)$ at "
                       "$\\sigma = 0$. The generated sample is the regression $\\mathbb{E}[x_0 \\mid W^\\top x_0 = u_0]$. "
                       "The same holds for the reverse SDE: $W^\\top d\\bar w$ is an $r$-dimensional Brownian motion, so "
                       "$u$ follows the exact reverse SDE of the projected target, and the orthogonal deviation "
                       "$v - P_\\perp g(u)$ is contracted by the drift $2(v - P_\\perp g)/\\sigma$ while the injected "
                       "noise has variance $O(\\sigma^2)$: it vanishes at $\\sigma = 0$. From the standard prior "
                       "$\\mathcal{N}(0, \\sigma_{max}^2 I)$ instead of $p_{\\sigma_{max}}$ it holds approximately, with an "
                       "error that vanishes as $\\operatorname{tr}\\Sigma / \\sigma_{max}^2 \\to 0$. "
                       "For a Gaussian mixture the decoder is the ratio of mixtures below with "
                       "$S_k = W^\\top C_k W + \\sigma^2 I$ and responsibilities "
                       "$w_k(u) \\propto \\pi_k \\mathcal{N}(u; W^\\top m_k, S_k)$. For a training set whose "
                       "projections are distinct the flow returns training points: the bottleneck still memorizes."),
            assumptions=("$W^\\top W = I_r$; the decoder is the exact conditional mean at every $\\sigma$",
                         "exact integration of the probability-flow ODE or the reverse SDE; start from the true marginal "
                         "$p_{\\sigma_{max}}$ (from the prior: approximately)",
                         "$u \\mapsto \\mathbb{E}[x_0 \\mid W^\\top x_\\sigma = u]$ continuous as $\\sigma \\to 0$ "
                         "(for mixtures: $W^\\top C_k W \\succ 0$, or distinct projected atoms)"),
            formulas={"mixture decoder": sp.Eq(sp.Function("g")(u, sp.Symbol("sigma")), decoder)},
        )

    @staticmethod
    def sample(mixture: GaussianMixture, W, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draws of the generated law: ``u0`` from the projected mixture, mapped through the regression."""
        W = encoder(W, mixture.dim)
        n = validation.positive_int(n, "n")
        if np.all(mixture.covs == 0):  # a training set: the flow returns the atoms themselves
            projected = mixture.means @ W
            gaps = np.linalg.norm(projected[:, None] - projected[None], axis=2) + np.eye(len(projected))
            if np.min(gaps) == 0:
                raise ValueError("training points must have distinct projections W^T x_i")
            return mixture.means[rng.choice(len(mixture.weights), size=n, p=mixture.weights)]
        return mixture.conditional_mean(W, mixture.project(W).sample(n, rng), 0.0)

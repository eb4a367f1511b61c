"""Bottleneck denoisers: rank-r affine maps, and a fixed linear encoder with an unrestricted decoder.

Results 5–7 of the toolkit (docs/results/bottleneck-*.md). The rank-r law reuses the linear
machinery: the rank-r optimum is the optimal affine denoiser of the truncated covariance
``Sigma_r = U_r Lambda_r U_r^T``, started from the true target's law.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from numerics import validation
from theory.finite_step import GaussianLaw
from theory.linear_law import OPTIMAL, eigen_decomposition, prior_start, spectral_continuous_law, spectral_law
from theory.result import Result
from theory.symbols import lam, sigma

a = sp.Symbol("a", real=True)  # gain of a kept direction


def direction_loss(gain) -> sp.Expr:
    """Centred per-direction MSE ``E[(a (x0 + sigma n) - x0)^2]`` for ``Var x0 = lambda``."""
    return sp.expand(gain**2 * (lam + sigma**2) - 2 * gain * lam + lam)


@dataclass(frozen=True)
class Cut:
    """Which eigen-directions a rank-r optimum keeps, and whether that choice is unique."""

    keep: np.ndarray      # boolean mask over eigenvalues sorted ascending
    unique: bool          # False when lambda_r ties lambda_{r+1}: the optimum is then not unique
    tied: tuple           # the tied eigenvalues at the cut (empty when unique)


class RankRestrictedDenoiser(Result):
    """Result 5: the MSE-optimal affine denoiser of rank <= r keeps the top-r principal directions.

    .. math:: D_r(x;\\sigma) = \\mu + U_r \\,\\mathrm{diag}\\Big(\\frac{\\lambda_j}{\\lambda_j + \\sigma^2}\\Big) U_r^\\top (x - \\mu)

    >>> RankRestrictedDenoiser().reduction_expr
    lambda**2/(lambda + sigma**2)
    """

    def __init__(self):
        best = sp.solve(sp.diff(direction_loss(a), a), a)[0]
        reduction = sp.simplify(direction_loss(0) - direction_loss(best))
        slope = sp.factor(sp.diff(reduction, lam))
        assert slope.is_positive, "the kept-direction gain must increase with lambda"
        object.__setattr__(self, "reduction_expr", reduction)
        object.__setattr__(self, "slope_expr", slope)
        super().__init__(
            name="Rank-restricted affine denoiser",
            statement=("Among affine maps $A x + b$ with $\\operatorname{rank} A \\le r$, the MSE optimum at noise "
                       "$\\sigma$ is $\\mu + U_r \\operatorname{diag}(\\lambda_j/(\\lambda_j+\\sigma^2)) U_r^\\top (x - \\mu)$. "
                       "Completing the square, the loss is $\\operatorname{tr}\\Sigma - \\operatorname{tr}"
                       "(\\Sigma S^{-1}\\Sigma) + \\|(A - A^*) S^{1/2}\\|_F^2$ with $S = \\Sigma + \\sigma^2 I$, so "
                       "(Eckart--Young) $A S^{1/2}$ is the rank-$r$ truncation of $\\Sigma S^{-1/2}$, whose singular "
                       "values $\\lambda/\\sqrt{\\lambda+\\sigma^2}$ increase with $\\lambda$: the same top-$r$ subspace "
                       "wins at every $\\sigma$. Keeping a direction lowers the loss by the amount below. If "
                       "$\\lambda_r = \\lambda_{r+1} > 0$ the optimum is not unique: any rank-$r$ choice inside the tied "
                       "eigenspace is optimal, possibly a different one at each $\\sigma$, so a family of laws results "
                       "(ties at $\\lambda = 0$ are harmless: those directions get gain 0)."),
            assumptions=("finite second moments, $n \\sim \\mathcal{N}(0, I)$ independent of $x_0$",
                         "$1 \\le r \\le d$; for uniqueness a strict gap $\\lambda_r > \\lambda_{r+1}$ or $\\lambda_r = 0$"),
            formulas={"loss reduction": sp.Eq(sp.Symbol("\\Delta_j"), reduction),
                      "monotone in lambda": sp.Eq(sp.Derivative(sp.Symbol("\\Delta_j"), lam), slope)},
        )

    @staticmethod
    def cut(eigenvalues, rank: int, rtol: float = 1e-9) -> Cut:
        """The top-``rank`` directions of an ascending spectrum, with a tie report at the cut."""
        eigenvalues = validation.finite_array(eigenvalues, "eigenvalues", ndim=1)
        d = len(eigenvalues)
        rank = validation.positive_int(rank, "rank")
        if rank > d:
            raise ValueError(f"rank must be <= dim = {d}, got {rank}")
        keep = np.zeros(d, dtype=bool)
        keep[d - rank:] = True
        if rank == d:
            return Cut(keep, True, ())
        inside, outside = eigenvalues[d - rank], eigenvalues[d - rank - 1]
        top = max(np.max(np.abs(eigenvalues)), 1e-300)
        # eigh resolves eigenvalues to ~eps x max. Zero eigenvalues at the cut (rank Sigma < r) are no tie:
        # their directions get gain 0 whichever is "kept", so the optimum is unique.
        tied = inside > rtol * top and abs(inside - outside) <= rtol * top
        return Cut(keep, not tied, (float(outside), float(inside)) if tied else ())

    def affine(self, mean, cov, sigma_value, rank: int, allow_tie: bool = False):
        """``(G, b, cut)`` of the rank-``rank`` optimum; a tie at the cut raises unless ``allow_tie``.

        With ``allow_tie`` the member returned keeps the tied eigenvectors that ``numpy.linalg.eigh``
        orders last; every rank-r choice inside the tied eigenspace is optimal too, and a denoiser may
        pick a different one at each sigma, so a tie defines a family of generated laws.
        """
        mean, eigenvalues, U = eigen_decomposition(mean, cov)
        cut = self.cut(eigenvalues, rank)
        if not cut.unique and not allow_tie:
            raise ValueError(f"rank-{rank} optimum is not unique: eigenvalues {cut.tied} tie at the cut; "
                             "pass allow_tie=True to take one of the optima")
        gain = np.where(cut.keep, OPTIMAL.gain(eigenvalues, sigma_value), 0.0)
        G = (U * gain) @ U.T
        return G, mean - G @ mean, cut


def truncated(eigenvalues, cut: Cut) -> np.ndarray:
    """``Lambda_r``: the spectrum with the discarded eigenvalues set to 0."""
    return np.where(cut.keep, np.clip(eigenvalues, 0.0, None), 0.0)


def rank_law(sampler, grid, mean, cov, rank: int, start=prior_start, allow_tie: bool = False) -> GaussianLaw:
    """Result 6: exact output law of ``sampler`` with the rank-r optimum (start from the true target)."""
    mean, eigenvalues, U = eigen_decomposition(mean, cov)
    cut = RankRestrictedDenoiser.cut(eigenvalues, rank)
    if not cut.unique and not allow_tie:
        raise ValueError(f"rank-{rank} optimum is not unique: eigenvalues {cut.tied} tie at the cut")
    return masked_law(sampler, grid, mean, cov, cut.keep, start)


def masked_law(sampler, grid, mean, cov, keep, start=prior_start) -> GaussianLaw:
    """Exact output law when the denoiser keeps the eigen-directions ``keep`` (ascending order) and zeroes the rest."""
    mean, eigenvalues, U = eigen_decomposition(mean, cov)
    kept = np.where(np.asarray(keep, dtype=bool), eigenvalues, 0.0)
    law = spectral_law(sampler, grid, kept, U.T @ mean, start, start_eigenvalues=eigenvalues)
    return GaussianLaw(U @ law.mean, law.cov, U)


def rank_continuous_law(sampler, grid, mean, cov, rank: int, start=prior_start, allow_tie: bool = False) -> GaussianLaw:
    """The continuous-time law of the rank-r flow: discarded directions shrink as ``sigma / sigma_max``."""
    mean, eigenvalues, U = eigen_decomposition(mean, cov)
    cut = RankRestrictedDenoiser.cut(eigenvalues, rank)
    if not cut.unique and not allow_tie:
        raise ValueError(f"rank-{rank} optimum is not unique: eigenvalues {cut.tied} tie at the cut")
    law = spectral_continuous_law(sampler, grid, truncated(eigenvalues, cut), U.T @ mean, start,
                                  start_eigenvalues=eigenvalues)
    return GaussianLaw(U @ law.mean, law.cov, U)


class RankLaw(Result):
    """Result 6: the law generated with the rank-r optimum; discarded directions collapse onto the mean.

    >>> RankLaw().discarded_ode_gain
    sigma_end/sigma_max
    """

    def __init__(self):
        from theory.linear import ContinuousFlowLaw

        flow = ContinuousFlowLaw()
        ode = sp.limit(flow.ode_gain_expr, lam, 0)   # a discarded direction sees lambda = 0 in D
        sde = sp.simplify(sp.limit(flow.sde_var_expr, lam, 0))
        object.__setattr__(self, "discarded_ode_gain", ode)
        super().__init__(
            name="Generated law of the rank-restricted denoiser",
            statement=("With the rank-$r$ optimum the sampler runs the linear flow of $(\\mu, \\Sigma_r)$, "
                       "$\\Sigma_r = U_r \\Lambda_r U_r^\\top$, from the true target's start law: kept directions "
                       "behave as in the linear case, a discarded direction's deviation from $\\mu$ shrinks by "
                       "$\\sigma_{end}/\\sigma_{max}$ (ODE). From the Gaussian marginal the continuous flows generate "
                       "$\\mathcal{N}(\\mu, U_r \\Lambda_r U_r^\\top)$: a Gaussian on the top-$r$ principal subspace. "
                       "Every finite-step sampler's law is Result 3 with the truncated spectrum."),
            assumptions=("the rank-$r$ optimum is unique ($\\lambda_r > \\lambda_{r+1}$)",
                         "exact flows for the continuous statements; affine steps for the finite-step law"),
            formulas={"discarded ODE gain": sp.Eq(sp.Symbol("r_{\\perp}"), ode),
                      "discarded SDE variance": sp.Eq(sp.Symbol("v_{\\perp}"), sde)},
        )

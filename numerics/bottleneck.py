"""Bottleneck denoisers from their definitions: reduced-rank regression, and the fixed-encoder Bayes decoder.

Nothing here comes from ``theory/``: the rank-r optimum is the reduced-rank least-squares solution of the
denoising regression (an SVD-type problem solved numerically), and the decoder is Bayes' rule for a
Gaussian mixture written in torch.
"""
from __future__ import annotations

import numpy as np
import torch

from numerics import validation
from numerics.denoisers import WienerDenoiser, check_width, normal_equations

CHUNK = 2048  # rows per conditional-mean evaluation: bounds the (rows, K, d) intermediate
TIE_RTOL = 1e-9  # relative gap of the fitted-value spectrum under which two directions count as tied


def reduced_rank(G_ols, cov_y, rank: int, *, allow_tie: bool = False):
    """``argmin_{rank A <= r} E|A y~ - x0~|^2`` from the unrestricted solution ``G_ols`` and ``Cov(y)``.

    The loss is ``|A Cov(y)^{1/2} - G_ols Cov(y)^{1/2}|_F^2 + const``; its rank-r minimizer projects
    ``G_ols`` onto the top-r eigenvectors of the fitted values' covariance ``G_ols Cov(y) G_ols^T``
    (Eckart–Young). A tie at the cut (a positive eigenvalue repeated across it) makes the optimum not
    unique: it raises, or with ``allow_tie`` takes the eigenvectors ``numpy.linalg.eigh`` orders last.
    """
    fitted = G_ols @ cov_y @ G_ols.T                                   # Cov(G_ols y)
    values, vectors = np.linalg.eigh(0.5 * (fitted + fitted.T))        # ascending
    d = len(values)
    if rank < d:
        inside, outside, top = values[d - rank], values[d - rank - 1], max(values[-1], 1e-300)
        if inside > TIE_RTOL * top and inside - outside <= TIE_RTOL * top and not allow_tie:
            raise ValueError(f"rank-{rank} optimum is not unique: fitted-value variances {outside:.6g} and "
                             f"{inside:.6g} tie at the cut; pass allow_tie=True to take one of the optima")
    V = vectors[:, d - rank:]
    return V @ (V.T @ G_ols)


class RankDenoiser(WienerDenoiser):
    """The MSE-optimal affine denoiser of rank <= r, by reduced-rank regression at each noise level.

    ``sigmas``: noise levels to solve (and check for ties) at construction, so a tie fails before sampling.
    """

    def __init__(self, mean, cov, rank: int, allow_tie: bool = False, sigmas=()):
        super().__init__(mean, cov)
        self.rank = validation.positive_int(rank, "rank")
        if self.rank > len(self.mean):
            raise ValueError(f"rank must be <= dim = {len(self.mean)}, got {rank}")
        self.allow_tie = allow_tie
        for sigma in sigmas:
            if sigma > 0:
                self.affine(sigma)

    def solve(self, sigma):
        G_ols, _ = normal_equations(self.mean, self.cov, sigma)
        cov_y = self.cov + sigma**2 * np.eye(len(self.mean))
        G = reduced_rank(G_ols, cov_y, self.rank, allow_tie=self.allow_tie)
        return G, self.mean - G @ self.mean


class EncoderDecoderDenoiser:
    """``D(x) = g_sigma(W^T x)`` with ``g`` the Bayes decoder ``E[x0 | W^T x_sigma = u]`` of a Gaussian mixture.

    Bayes' rule per component ``k`` (weight ``pi_k``, mean ``m_k``, covariance ``C_k``): the code
    ``u = W^T (x0 + sigma n)`` is ``N(W^T m_k, W^T C_k W + sigma^2 I)``, and ``(x0, u)`` are jointly
    Gaussian, so ``E[x0 | u, k]`` is a linear regression; the posterior over ``k`` weights them.
    """

    def __init__(self, weights, means, covs, W):
        self.weights = torch.as_tensor(validation.finite_array(weights, "weights", ndim=1))
        self.means = torch.as_tensor(validation.finite_array(means, "means", ndim=2))
        self.covs = torch.as_tensor(validation.finite_array(covs, "covs", ndim=3))
        self.W = torch.as_tensor(validation.finite_array(W, "W", ndim=2))
        K, d = self.means.shape
        r = self.W.shape[1]
        if not 1 <= r <= d or torch.max(torch.abs(self.W.T @ self.W - torch.eye(r, dtype=torch.float64))) > 1e-8:
            raise ValueError(f"W must be {d} x r with 1 <= r <= {d} and orthonormal columns (W^T W = I)")
        if self.weights.shape != (K,) or self.covs.shape != (K, d, d) or self.W.shape[0] != d:
            raise ValueError(f"weights (K,), means (K, d), covs (K, d, d), W (d, r) must agree; got "
                             f"{tuple(self.weights.shape)}, {(K, d)}, {tuple(self.covs.shape)}, {tuple(self.W.shape)}")

    def decode(self, u: torch.Tensor, sigma: float) -> torch.Tensor:
        """``E[x0 | W^T x_sigma = u]`` for rows ``u`` (float64)."""
        r = self.W.shape[1]
        code_mean = self.means @ self.W                                            # (K, r)
        cross = self.covs @ self.W                                                 # Cov(x0, u | k): (K, d, r)
        code_cov = self.W.T @ cross + sigma**2 * torch.eye(r, dtype=torch.float64)  # Cov(u | k): (K, r, r)
        L = torch.linalg.cholesky(code_cov)
        residual = (u[:, None, :] - code_mean[None]).unsqueeze(-1)                 # (n, K, r, 1)
        solved = torch.cholesky_solve(residual, L[None])                           # Cov(u|k)^{-1} (u - E[u|k])
        log_likelihood = (-0.5 * (residual * solved).sum(dim=(2, 3))
                          - torch.log(torch.diagonal(L, dim1=1, dim2=2)).sum(dim=1))  # + const
        posterior = torch.softmax(torch.log(self.weights) + log_likelihood, dim=1)  # P(k | u)
        regression = self.means[None] + (cross[None] @ solved).squeeze(-1)         # E[x0 | u, k]: (n, K, d)
        return (posterior[:, :, None] * regression).sum(dim=1)

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        check_width(x, self.means.shape[1])
        sigma = validation.positive(sigma, "sigma")
        u = x.detach().to("cpu", torch.float64) @ self.W
        out = torch.cat([self.decode(u[i:i + CHUNK], sigma) for i in range(0, len(u), CHUNK)])
        return out.to(dtype=x.dtype, device=x.device)

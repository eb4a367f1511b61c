"""Bottleneck denoisers: the rank-r affine optimum and the fixed-encoder conditional-mean decoder."""
from __future__ import annotations

import numpy as np
import torch

from numerics.denoisers import AffineDenoiser
from theory.bottleneck import RankRestrictedDenoiser
from theory.mixture import GaussianMixture, encoder

CHUNK = 2048  # rows per conditional-mean evaluation: bounds the (rows, K, d) intermediate


class RankDenoiser(AffineDenoiser):
    """``mu + U_r diag(lambda / (lambda + sigma^2)) U_r^T (x - mu)`` (Result 5); refuses a tied cut."""

    def __init__(self, mean, cov, rank: int, allow_tie: bool = False):
        self.mean, self.cov, self.rank, self.allow_tie = mean, cov, rank, allow_tie
        self._result = RankRestrictedDenoiser()
        *_, self.cut = self._result.affine(mean, cov, 1.0, rank, allow_tie)  # validates and reports ties

    def affine(self, sigma):
        G, b, _ = self._result.affine(self.mean, self.cov, sigma, self.rank, self.allow_tie)
        return G, b


class EncoderDecoderDenoiser:
    """``D(x) = g_sigma(W^T x)`` with ``g`` the exact mixture conditional mean ``E[x0 | W^T x_sigma = u]``."""

    def __init__(self, mixture: GaussianMixture, W):
        self.mixture, self.W = mixture, encoder(W, mixture.dim)

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        u = x.detach().to("cpu", torch.float64).numpy() @ self.W
        out = np.concatenate([self.mixture.conditional_mean(self.W, u[i:i + CHUNK], sigma)
                              for i in range(0, len(u), CHUNK)])
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)

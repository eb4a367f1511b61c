"""Bottleneck denoisers: the rank-r affine optimum and the fixed-encoder conditional-mean decoder."""
from __future__ import annotations

import numpy as np
import torch

from numerics.denoisers import WienerDenoiser
from theory.bottleneck import RankRestrictedDenoiser
from theory.mixture import GaussianMixture, encoder

CHUNK = 2048  # rows per conditional-mean evaluation: bounds the (rows, K, d) intermediate


class RankDenoiser(WienerDenoiser):
    """``mu + U_r diag(lambda / (lambda + sigma^2)) U_r^T (x - mu)`` (Result 5); refuses a tied cut.

    The Wiener denoiser with the discarded eigen-directions' gains set to zero.
    """

    def __init__(self, mean, cov, rank: int, allow_tie: bool = False):
        super().__init__(mean, cov)
        self.cut = RankRestrictedDenoiser.cut(self.eigenvalues, rank)
        if not self.cut.unique and not allow_tie:
            raise ValueError(f"rank-{rank} optimum is not unique: eigenvalues {self.cut.tied} tie at the cut; "
                             "pass allow_tie=True to take one of the optima")

    def gain(self, sigma):
        return np.where(self.cut.keep, super().gain(sigma), 0.0)


class EncoderDecoderDenoiser:
    """``D(x) = g_sigma(W^T x)`` with ``g`` the exact mixture conditional mean ``E[x0 | W^T x_sigma = u]``."""

    def __init__(self, mixture: GaussianMixture, W):
        self.mixture, self.W = mixture, encoder(W, mixture.dim)

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        u = x.detach().to("cpu", torch.float64).numpy() @ self.W
        out = np.concatenate([self.mixture.conditional_mean(self.W, u[i:i + CHUNK], sigma)
                              for i in range(0, len(u), CHUNK)])
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)

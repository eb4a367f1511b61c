"""Affine denoisers ``D(x, sigma) -> x0_hat`` on ``(batch, dim)`` tensors.

Each exposes ``affine(sigma) -> (G, b)`` (float64 numpy, ``D(x) = G x + b``) so the theory can
compute the exact law of whatever the sampler actually ran.
"""
from __future__ import annotations

import numpy as np
import torch

from numerics.noise import randn_like
from numerics import validation
from theory.linear import OptimalAffineDenoiser, TrainingSetLaw


def check_width(x: torch.Tensor, d: int) -> None:
    """A denoiser input must be ``(batch, d)``."""
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x must have shape (batch, {d}) for this denoiser, got {tuple(x.shape)}")


def level(table: dict, sigma, what: str = "denoiser was fitted at"):
    """``table[sigma]`` for a per-noise-level denoiser; an untabulated sigma is an error naming it."""
    try:
        return table[float(sigma)]
    except KeyError:
        raise ValueError(f"sigma = {sigma!r} is not one of the {len(table)} noise levels this {what}; "
                         "fit it on the sampler's grid") from None


class AffineDenoiser:
    """``D(x) = x G^T + b`` with ``(G, b)`` looked up per noise level."""

    def affine(self, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        G, b = self.affine(sigma)
        check_width(x, len(b))
        G = torch.as_tensor(G, dtype=x.dtype, device=x.device)
        return x @ G.T + torch.as_tensor(b, dtype=x.dtype, device=x.device)


class WienerDenoiser(AffineDenoiser):
    """The closed-form optimal affine denoiser ``mu + Sigma (Sigma + sigma^2 I)^{-1} (x - mu)`` (Result 1)."""

    def __init__(self, mean, cov):
        self.mean = validation.mean_vector(mean)
        self.cov = validation.covariance(cov, dim=len(self.mean))
        eigenvalues, self.U = np.linalg.eigh(self.cov)
        self.eigenvalues = np.clip(eigenvalues, 0.0, None)
        self._result = OptimalAffineDenoiser()

    @classmethod
    def from_training_set(cls, train):
        """Optimal affine denoiser of the empirical distribution: ``mu_hat``, ``Sigma_hat`` over ``n`` (Result 4)."""
        return cls(*TrainingSetLaw.moments(train))

    def gain(self, sigma) -> np.ndarray:
        """Per-eigen-direction gains ``lambda / (lambda + sigma^2)``."""
        return self._result.gain(self.eigenvalues, sigma)

    def affine(self, sigma):
        G = (self.U * self.gain(sigma)) @ self.U.T
        return G, self.mean - G @ self.mean

    def __call__(self, x, sigma):
        """Applied in the eigenbasis: ``mu + U diag(g) U^T (x - mu)``, O(batch d^2)."""
        check_width(x, len(self.mean))
        gain = torch.as_tensor(self.gain(sigma), dtype=x.dtype, device=x.device)
        U = torch.as_tensor(self.U, dtype=x.dtype, device=x.device)
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)
        return mean + ((x - mean) @ U * gain) @ U.T


class TabulatedAffineDenoiser(AffineDenoiser):
    """Affine maps stored per noise level; asking for an untabulated sigma is an error."""

    def __init__(self, table: dict):
        self.table = {float(k): v for k, v in table.items()}

    def affine(self, sigma):
        return level(self.table, sigma)


def _check_fit_args(train, sigmas):
    train = validation.finite_array(train, "train", ndim=2)
    levels = [validation.positive(s, "sigmas") for s in np.unique(np.asarray(sigmas, dtype=np.float64))
              if s != 0.0]
    return train, levels


def fit_affine(train, sigmas, copies: int, generator=None) -> TabulatedAffineDenoiser:
    """Least squares ``min sum |G (x_i + sigma n_ij) + b - x_i|^2`` over ``copies`` noisy copies per point."""
    train, levels = _check_fit_args(train, sigmas)
    copies = validation.positive_int(copies, "copies")
    n, d = train.shape
    x0 = torch.as_tensor(train).repeat(copies, 1)
    table = {}
    for sigma in levels:
        y = x0 + sigma * randn_like(x0, generator)
        design = torch.cat([y, torch.ones(n * copies, 1, dtype=y.dtype)], dim=1).numpy()
        solution = np.linalg.lstsq(design, x0.numpy(), rcond=None)[0]  # (d + 1, d); LAPACK gelsd
        table[sigma] = (solution[:d].T.copy(), solution[d].copy())
    return TabulatedAffineDenoiser(table)


def train_linear(train, sigmas, *, iterations=2000, batch=256, lr=3e-2, generator=None) -> TabulatedAffineDenoiser:
    """A linear layer per noise level, trained with Adam on ``|D(x0 + sigma n) - x0|^2``, lr decayed linearly to 0.

    All levels train at once as one stacked ``(L, d, d)`` weight; their losses are independent, so
    this equals training each ``torch.nn.Linear(d, d)`` separately.
    """
    train, levels = _check_fit_args(train, sigmas)
    iterations, batch = validation.positive_int(iterations, "iterations"), validation.positive_int(batch, "batch")
    lr = validation.positive(lr, "lr")
    x_train, d = torch.as_tensor(train), train.shape[1]
    sigma = torch.tensor(levels, dtype=torch.float64)[:, None, None]
    weight = torch.zeros(len(levels), d, d, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(levels), 1, d, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1.0 - k / iterations)
    for _ in range(iterations):
        x0 = x_train[torch.randint(len(x_train), (len(levels), batch), generator=generator)]
        y = x0 + sigma * randn_like(x0, generator)
        loss = ((torch.baddbmm(bias, y, weight.transpose(1, 2)) - x0) ** 2).sum(dim=2).mean()
        optimizer.zero_grad()
        (loss * len(levels)).backward()
        optimizer.step()
        schedule.step()
    W, c = weight.detach().numpy(), bias.detach().numpy()[:, 0]
    return TabulatedAffineDenoiser({level: (W[k].copy(), c[k].copy()) for k, level in enumerate(levels)})

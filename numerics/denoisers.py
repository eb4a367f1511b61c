"""Affine denoisers ``D(x, sigma) -> x0_hat`` on ``(batch, dim)`` tensors.

Each exposes ``affine(sigma) -> (G, b)`` (float64 numpy, ``D(x) = G x + b``) so the theory can
compute the exact law of whatever the sampler actually ran. Every denoiser here is computed from its
definition (normal equations, least squares, gradient descent on the denoising loss): nothing is taken
from ``theory/``.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from numerics import validation
from numerics.moments import empirical_moments
from numerics.noise import randn_like
from numerics.progress import bar


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


def normal_equations(mean, cov, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The MSE-optimal affine ``D(y) = G y + b`` for ``y = x0 + sigma n``, solved from its normal equations.

    Setting the gradient of ``E|G y + b - x0|^2`` to zero: ``E[x0 - G y - b] = 0`` and
    ``Cov(x0, y) = G Cov(y)``, with ``Cov(x0, y) = Sigma`` and ``Cov(y) = Sigma + sigma^2 I``. Since
    ``Sigma = Cov(y) - sigma^2 I`` this reads ``(I - G) Cov(y) = sigma^2 I``: solved in that form, so the
    residual map ``I - G`` (what the samplers divide by ``sigma`` or ``sigma^2``) keeps full relative
    precision at small ``sigma``.
    """
    sigma = validation.positive(sigma, "sigma")
    d = len(mean)
    cov_y = cov + sigma**2 * np.eye(d)                                   # Cov(y), positive definite
    residual = sigma**2 * scipy.linalg.cho_solve(scipy.linalg.cho_factor(cov_y), np.eye(d))  # I - G
    residual = 0.5 * (residual + residual.T)                             # symmetric, like Cov(y)^{-1}
    return np.eye(d) - residual, residual @ mean                         # b = E[x0] - G E[y] = (I - G) mu


class LevelCache:
    """Per-noise-level ``(G, b)`` and their torch copies, within a memory budget (oldest level evicted)."""

    BUDGET_BYTES = 2**30

    def __init__(self, solve, d: int):
        self.solve, self.capacity = solve, max(2, self.BUDGET_BYTES // (16 * d * d))
        self.maps, self.tensors = {}, {}

    def affine(self, sigma):
        key = float(sigma)
        if key not in self.maps:
            if len(self.maps) >= self.capacity:
                oldest = next(iter(self.maps))
                self.maps.pop(oldest)
                self.tensors = {k: v for k, v in self.tensors.items() if k[0] != oldest}
            self.maps[key] = self.solve(key)
        return self.maps[key]

    def tensor(self, sigma, dtype, device):
        key = (float(sigma), dtype, str(device))
        if key not in self.tensors:
            G, b = self.affine(sigma)
            self.tensors[key] = (torch.as_tensor(G.T, dtype=dtype, device=device).contiguous(),
                                 torch.as_tensor(b, dtype=dtype, device=device))
        return self.tensors[key]


class AffineDenoiser:
    """``D(x) = x G^T + b`` with ``(G, b)`` per noise level from ``self.levels`` (a :class:`LevelCache`):
    each level's maps are made once, and a call is one ``addmm`` with that level's cached tensors."""

    levels: LevelCache

    def affine(self, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        return self.levels.affine(sigma)

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        G_T, b = self.levels.tensor(sigma, x.dtype, x.device)
        check_width(x, len(b))
        return torch.addmm(b, x, G_T)


class WienerDenoiser(AffineDenoiser):
    """The optimal affine denoiser of a target with moments ``(mean, cov)``, from the normal equations.

    One gain matrix per noise level, solved once and cached; a call is one ``(batch, d) x (d, d)`` product.
    """

    def __init__(self, mean, cov):
        self.mean = validation.mean_vector(mean)
        self.cov = validation.covariance(cov, dim=len(self.mean))
        self.levels = LevelCache(self.solve, len(self.mean))

    @classmethod
    def from_training_set(cls, train):
        """Optimal affine denoiser of the empirical distribution of ``train`` (its own moments)."""
        return cls(*empirical_moments(train))

    def solve(self, sigma) -> tuple[np.ndarray, np.ndarray]:
        return normal_equations(self.mean, self.cov, sigma)


class TabulatedAffineDenoiser(AffineDenoiser):
    """Affine maps stored per noise level; asking for an untabulated sigma is an error."""

    def __init__(self, table: dict):
        self.table = {float(k): v for k, v in table.items()}
        d = len(next(iter(self.table.values()))[1]) if self.table else 1
        self.levels = LevelCache(lambda sigma: level(self.table, sigma), d)


def _check_fit_args(train, sigmas):
    train = validation.finite_array(train, "train", ndim=2)
    levels = [validation.positive(s, "sigmas") for s in np.unique(np.asarray(sigmas, dtype=np.float64))
              if s != 0.0]
    return train, levels


def fit_affine(train, sigmas, copies: int, generator=None, progress: bool = False) -> TabulatedAffineDenoiser:
    """Least squares ``min sum |G (x_i + sigma n_ij) + b - x_i|^2`` over ``copies`` noisy copies per point."""
    train, levels = _check_fit_args(train, sigmas)
    copies = validation.positive_int(copies, "copies")
    n, d = train.shape
    x0 = torch.as_tensor(train).repeat(copies, 1)
    table, shown = {}, bar(len(levels), "least-squares fit per noise level", progress)
    for sigma in levels:
        y = x0 + sigma * randn_like(x0, generator)
        design = torch.cat([y, torch.ones(n * copies, 1, dtype=y.dtype)], dim=1).numpy()
        solution = np.linalg.lstsq(design, x0.numpy(), rcond=None)[0]  # (d + 1, d); LAPACK gelsd
        table[sigma] = (solution[:d].T.copy(), solution[d].copy())
        shown.update()
    shown.close()
    return TabulatedAffineDenoiser(table)


def train_linear(train, sigmas, *, iterations=2000, batch=256, lr=3e-2, generator=None,
                 progress: bool = False) -> TabulatedAffineDenoiser:
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
    shown = bar(iterations, f"training {len(levels)} linear layers", progress)
    for _ in range(iterations):
        x0 = x_train[torch.randint(len(x_train), (len(levels), batch), generator=generator)]
        y = x0 + sigma * randn_like(x0, generator)
        loss = ((torch.baddbmm(bias, y, weight.transpose(1, 2)) - x0) ** 2).sum(dim=2).mean()
        optimizer.zero_grad()
        (loss * len(levels)).backward()
        optimizer.step()
        schedule.step()
        shown.update()
    shown.close()
    W, c = weight.detach().numpy(), bias.detach().numpy()[:, 0]
    return TabulatedAffineDenoiser({level: (W[k].copy(), c[k].copy()) for k, level in enumerate(levels)})

"""Patch-memorizing machines: the local score (LS) and equivariant local score (ELS) denoisers.

Each output pixel is the posterior mean of its value given its noisy patch, with the training
patches as equally likely atoms (Bayes' rule: a softmax of ``-|z - t|^2 / (2 sigma^2)``):
LS over the training patches at the same position, ELS over the training patches at every position.
"""
from __future__ import annotations

import numpy as np
import torch

from numerics import validation
from numerics.denoisers import check_width
from numerics.local import BOUNDARIES, image_shape, patch_size, patches


def training_patches(train, shape, p: int, boundary: str) -> torch.Tensor:
    """``(n, h w, c p^2)`` padded patches of the ``(n, d)`` training images."""
    train = validation.finite_array(train, "train", ndim=2)
    if train.shape[1] != int(np.prod(shape)):
        raise ValueError(f"train must have {int(np.prod(shape))} columns (c h w for shape {shape}), "
                         f"got {train.shape[1]}")
    return patches(torch.as_tensor(train).reshape(len(train), *shape), p, boundary)


def unique_atoms(T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows of ``(m, k)`` patches and the log of their multiplicities (equal prior weights)."""
    atoms, counts = torch.unique(T, dim=0, return_counts=True)
    return atoms, torch.log(counts.to(T.dtype))


def posterior_mean(z: torch.Tensor, atoms: torch.Tensor, log_prior: torch.Tensor, sigma: float) -> torch.Tensor:
    """``sum_a softmax_a(log pi_a - |z - t_a|^2 / (2 sigma^2)) t_a`` for every row of ``z`` (Bayes' rule)."""
    distance = (z * z).sum(1, keepdim=True) - 2 * z @ atoms.T + (atoms * atoms).sum(1)   # |z - t|^2
    logits = log_prior - 0.5 * distance.clamp(min=0) / sigma**2
    weights = torch.softmax(logits, dim=1)                                  # max-shifted, no overflow
    return weights @ atoms


class PatchPosteriorDenoiser:
    """LS (``equivariant=False``) or ELS (``True``) machine of a training set of ``(c, h, w)`` images."""

    def __init__(self, train, shape, patch: int, boundary: str = "zeros", *, equivariant: bool = False):
        self.shape = image_shape(shape)
        self.patch = patch_size(patch, self.shape)
        self.boundary = validation.choice(boundary, "boundary", BOUNDARIES)
        T = training_patches(train, self.shape, self.patch, self.boundary)   # (n, hw, k)
        self.centre = (np.arange(self.shape[0]) * self.patch**2 + (self.patch**2 - 1) // 2).tolist()
        self.equivariant = bool(equivariant)
        pools = [T.reshape(-1, T.shape[2])] if self.equivariant else [T[:, j] for j in range(T.shape[1])]
        self.pools = [unique_atoms(pool) for pool in pools]                  # ELS: one pool; LS: one per pixel

    def __call__(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        check_width(y, int(np.prod(self.shape)))
        sigma = validation.positive(sigma, "sigma")
        z = patches(y.reshape(len(y), *self.shape).to(torch.float64), self.patch, self.boundary)  # (n, hw, k)
        n, hw, k = z.shape
        pools = [(atoms.to(z.device), log_prior.to(z.device)) for atoms, log_prior in self.pools]
        if self.equivariant:
            posterior = posterior_mean(z.reshape(n * hw, k), *pools[0], sigma).reshape(n, hw, k)
        else:
            posterior = torch.stack([posterior_mean(z[:, j], *pool, sigma) for j, pool in enumerate(pools)], 1)
        centre = posterior[:, :, self.centre].permute(0, 2, 1).reshape(n, -1)  # the centre value per channel
        return centre.to(y.dtype)

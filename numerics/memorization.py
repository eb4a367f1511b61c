"""The empirical (memorizing) denoiser in torch, streaming over the training set in chunks."""
from __future__ import annotations

import torch

from numerics import validation


class EmpiricalDenoiser:
    """``D(y; sigma) = sum_i softmax_i(-|y - x_i|^2 / (2 sigma^2)) x_i`` with an online log-sum-exp.

    The training set is visited ``chunk`` rows at a time, so memory is ``O(batch x chunk)`` whatever
    ``n``; accumulation is in ``dtype`` (float64 by default) on ``device``. Distances are formed from
    the differences (``exact_distances=True``, default) or, about 3x faster on CPU, by the
    matrix-product expansion about the training mean, whose logit error is ~``eps |y - mean|^2 / sigma^2``.
    """

    def __init__(self, train, *, chunk: int = 4096, dtype=torch.float64, device="cpu", exact_distances=True):
        train = validation.finite_array(train, "train", ndim=2)
        if train.shape[0] < 1 or train.shape[1] < 1:
            raise ValueError(f"train must have at least one row and one column, got shape {train.shape}")
        self.train = torch.as_tensor(train, dtype=dtype, device=device)
        self.chunk = validation.positive_int(chunk, "chunk")
        self.centre = self.train.mean(dim=0)
        self.centred = self.train - self.centre
        self.mode = "donot_use_mm_for_euclid_dist" if exact_distances else "use_mm_for_euclid_dist"

    def __call__(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        if y.ndim != 2 or y.shape[1] != self.train.shape[1]:
            raise ValueError(f"y must have shape (batch, {self.train.shape[1]}), got {tuple(y.shape)}")
        sigma = validation.positive(sigma, "sigma")
        z = y.to(self.train.dtype).to(self.train.device)
        nearest = torch.full((len(z),), torch.inf, dtype=z.dtype, device=z.device)  # running min distance
        total = torch.zeros(len(z), dtype=z.dtype, device=z.device)
        weighted = torch.zeros_like(z)
        for start in range(0, len(self.train), self.chunk):
            x = self.train[start:start + self.chunk]
            distance = torch.cdist(z - self.centre, self.centred[start:start + self.chunk], compute_mode=self.mode)
            new_nearest = torch.minimum(nearest, distance.min(dim=1).values)
            # logits relative to the nearest atom, -(d^2 - d_min^2) / (2 sigma^2), factored so tiny sigma
            # overflows to -inf (weight 0) instead of inf - inf
            rescale = torch.exp(-0.5 * ((nearest - new_nearest) / sigma) * ((nearest + new_nearest) / sigma))
            rescale = torch.where(torch.isinf(nearest), torch.zeros_like(rescale), rescale)
            w = torch.exp(-0.5 * ((distance - new_nearest[:, None]) / sigma) * ((distance + new_nearest[:, None]) / sigma))
            total = total * rescale + w.sum(dim=1)
            weighted = weighted * rescale[:, None] + w @ x
            nearest = new_nearest
        return (weighted / total[:, None]).to(y.dtype).to(y.device)

"""The empirical (memorizing) denoiser in torch, streaming over the training set in chunks."""
from __future__ import annotations

import torch

from theory import validation


class EmpiricalDenoiser:
    """``D(y; sigma) = sum_i softmax_i(-|y - x_i|^2 / (2 sigma^2)) x_i`` with an online log-sum-exp.

    The training set is visited ``chunk`` rows at a time, so memory is ``O(batch x chunk)`` whatever
    ``n``; accumulation is in ``dtype`` (float64 by default) on ``device``.
    """

    def __init__(self, train, *, chunk: int = 4096, dtype=torch.float64, device="cpu"):
        train = validation.finite_array(train, "train", ndim=2)
        if train.shape[0] < 1 or train.shape[1] < 1:
            raise ValueError(f"train must have at least one row and one column, got shape {train.shape}")
        self.train = torch.as_tensor(train, dtype=dtype, device=device)
        self.sq_norms = (self.train**2).sum(dim=1)
        self.chunk = validation.positive_int(chunk, "chunk")

    def __call__(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        if y.ndim != 2 or y.shape[1] != self.train.shape[1]:
            raise ValueError(f"y must have shape (batch, {self.train.shape[1]}), got {tuple(y.shape)}")
        sigma = validation.positive(sigma, "sigma")
        z = y.to(self.train.dtype).to(self.train.device)
        running_max = torch.full((len(z),), -torch.inf, dtype=z.dtype, device=z.device)
        total = torch.zeros(len(z), dtype=z.dtype, device=z.device)
        weighted = torch.zeros_like(z)
        for start in range(0, len(self.train), self.chunk):
            x, norms = self.train[start:start + self.chunk], self.sq_norms[start:start + self.chunk]
            # -|z - x|^2 / 2 sigma^2 up to a per-row constant: (2 z.x - |x|^2) / (2 sigma^2)
            logits = (2 * z @ x.T - norms) / (2 * sigma**2)
            new_max = torch.maximum(running_max, logits.max(dim=1).values)
            rescale = torch.exp(running_max - new_max)
            w = torch.exp(logits - new_max[:, None])
            total = total * rescale + w.sum(dim=1)
            weighted = weighted * rescale[:, None] + w @ x
            running_max = new_max
        return (weighted / total[:, None]).to(y.dtype).to(y.device)

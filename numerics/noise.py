"""Randomness passed in explicitly: per-sample generators so draws do not depend on batch size."""
from __future__ import annotations

import numpy as np
import torch


class StackedGenerator:
    """One CPU ``torch.Generator`` per sample (as EDM's StackedRandomGenerator).

    Sample ``k`` of a run seeded with ``seed`` always gets the same stream, whatever batch it
    is drawn in, so results do not depend on the batch size.
    """

    def __init__(self, seed: int, indices, device="cpu"):
        self.device = torch.device(device)
        self.generators = [torch.Generator().manual_seed((int(seed) << 32) + int(k)) for k in indices]

    def randn(self, shape, dtype=torch.float64) -> torch.Tensor:
        """Standard normals of shape ``(batch, *shape)``."""
        draws = [torch.randn(tuple(shape), generator=g, dtype=dtype) for g in self.generators]
        return torch.stack(draws).to(self.device)


def randn_like(x: torch.Tensor, generator=None) -> torch.Tensor:
    """Standard normals shaped like ``x`` from ``generator`` (None, a torch.Generator or a StackedGenerator)."""
    if isinstance(generator, StackedGenerator):
        return generator.randn(x.shape[1:], dtype=x.dtype).to(x.device)
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device).to(x.device)


def draw_gaussian(mean, cov, batch: int, generator, *, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """``batch`` draws of ``N(mean, cov)`` as ``mean + z L^T`` with ``L L^T = cov`` (eigen square root)."""
    eigenvalues, U = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    root = U * np.sqrt(np.clip(eigenvalues, 0.0, None))
    z = randn_like(torch.empty(batch, len(mean), dtype=torch.float64), generator)
    x = torch.as_tensor(mean, dtype=torch.float64) + z @ torch.as_tensor(root.T)
    return x.to(dtype=dtype, device=device)

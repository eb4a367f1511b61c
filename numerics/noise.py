"""Randomness passed in explicitly: per-sample generators so draws do not depend on batch size."""
from __future__ import annotations

import numpy as np
import torch


BLOCK_NUMBERS = 1024  # draws per sample per refill; fixed, so streams are batch-independent


class StackedGenerator:
    """One numpy PCG64 stream per sample, seeded by ``(seed, k)`` (as EDM's StackedRandomGenerator).

    Sample ``k`` of a run seeded with ``seed`` always gets the same stream, whatever batch it
    is drawn in, so results do not depend on the batch size.
    """

    def __init__(self, seed: int, indices, device="cpu"):
        self.device = torch.device(device)
        self.generators = [np.random.default_rng([int(seed), int(k)]) for k in indices]
        self._buffer, self._next = None, 0

    def randn(self, shape, dtype=torch.float64) -> torch.Tensor:
        """Standard normals of shape ``(batch, *shape)``, drawn in float64 and cast to ``dtype``.

        Each stream fills a block of ``BLOCK_NUMBERS // prod(shape)`` draws at a time; the block
        depends on ``shape`` only, so a sample's stream never depends on the batch.
        """
        shape = tuple(shape)
        if self._buffer is None or self._buffer.shape[2:] != shape or self._next == self._buffer.shape[1]:
            block = max(1, BLOCK_NUMBERS // max(1, int(np.prod(shape))))
            buffer = np.empty((len(self.generators), block, *shape))
            for generator, row in zip(self.generators, buffer):
                generator.standard_normal(out=row)
            self._buffer, self._next = torch.from_numpy(buffer).to(self.device), 0
        self._next += 1
        return self._buffer[:, self._next - 1].to(dtype)


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

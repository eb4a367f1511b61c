"""Randomness passed in explicitly: counter-based normals keyed by ``(seed, sample, step, coordinate)``.

``PhiloxNoise`` evaluates the Philox-4x32-10 bijection (Salmon et al. 2011, "Parallel random numbers:
as easy as 1, 2, 3") in torch integer ops on the sampler's device: every normal is a pure function
of its key, so a sample's noise never depends on the batch it is drawn in, the process that draws
it (``verify.distributed`` shards sample ranges) or the device (integer ops are exact; only the
final ``log``/``cos`` differ by a few ulp between CPU and CUDA).
"""
from __future__ import annotations

import math

import numpy as np
import torch

MASK = 0xFFFFFFFF
PHILOX_M = (0xD2511F53, 0xCD9E8D57)  # round multipliers
PHILOX_W = (0x9E3779B9, 0xBB67AE85)  # key increments (golden ratio, sqrt(3) - 1)
ROUNDS = 10


def _mulhilo(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32-bit words of ``a * m`` (int64 holding uint32; the product wraps mod 2^64, bits kept)."""
    product = a * m
    return (product >> 32).bitwise_and_(MASK), product.bitwise_and_(MASK)


def philox(counter: list, key: tuple[int, int]) -> list:
    """Philox-4x32-10 of four uint32 counter words (int64 tensors, broadcastable) under a 2-word key."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(ROUNDS):
        hi0, lo0 = _mulhilo(c0, PHILOX_M[0])
        hi1, lo1 = _mulhilo(c2, PHILOX_M[1])
        c0, c1, c2, c3 = (hi1 ^ c1).bitwise_xor_(k0), lo1, (hi0 ^ c3).bitwise_xor_(k1), lo0  # S-box, key mix
        k0, k1 = (k0 + PHILOX_W[0]) & MASK, (k1 + PHILOX_W[1]) & MASK                          # bump the key
    return [c0, c1, c2, c3]


def uniforms(words: list, dtype) -> list:
    """Each uint32 word ``w`` as ``(w + 1/2) / 2^32`` in (0, 1), never 0 (so ``log`` is finite)."""
    return [(w.to(dtype) + 0.5) * 2.0**-32 for w in words]


def box_muller(u: list) -> torch.Tensor:
    """Four uniforms to four independent normals: ``sqrt(-2 ln u1) (cos, sin)(2 pi u2)`` per pair, interleaved."""
    normals = []
    for first, second in ((u[0], u[1]), (u[2], u[3])):
        radius, angle = torch.sqrt(-2.0 * torch.log(first)), (2.0 * math.pi) * second
        normals += [radius * torch.cos(angle), radius * torch.sin(angle)]
    return torch.stack(normals, dim=-1)


class PhiloxNoise:
    """Standard normals for samples ``first, ..., first + count - 1`` of a run seeded with ``seed``.

    The ``j``-th call to ``randn`` is step ``j`` (the start draw is step 0); coordinate ``k`` of
    sample ``n`` at step ``j`` is normal ``k mod 4`` of ``philox((k // 4, j, n_lo, n_hi), seed)``.
    """

    def __init__(self, seed: int, first: int, count: int, device="cpu"):
        seed, first, count = int(seed), int(first), int(count)
        if not 0 <= seed < 2**64 or first < 0 or count < 0 or first + count > 2**64:
            raise ValueError(f"need 0 <= seed < 2^64 and sample indices in [0, 2^64), got seed = {seed}, "
                             f"samples [{first}, {first + count})")
        self.key, self.count, self.step = (seed & MASK, seed >> 32), count, 0
        self.device = torch.device(device)
        index = torch.arange(count, dtype=torch.int64, device=self.device) + (first & MASK)
        self._low = (index & MASK)[:, None]                    # low word, carry into the high word
        self._high = ((index >> 32) + (first >> 32))[:, None] & MASK

    def randn(self, shape, dtype=torch.float64) -> torch.Tensor:
        """Standard normals of shape ``(count, *shape)`` in ``dtype`` on the device; advances the step."""
        shape = tuple(int(s) for s in shape)
        width = int(np.prod(shape))
        blocks = torch.arange((width + 3) // 4, dtype=torch.int64, device=self.device)[None, :]
        step = torch.full((1, 1), self.step & MASK, dtype=torch.int64, device=self.device)
        self.step += 1
        words = philox([blocks, step, self._low, self._high], self.key)
        z = box_muller(uniforms([w.expand(self.count, blocks.shape[1]) for w in words], dtype))
        return z.reshape(self.count, -1)[:, :width].reshape(self.count, *shape)


def randn_like(x: torch.Tensor, generator=None) -> torch.Tensor:
    """Standard normals shaped like ``x`` from ``generator`` (None, a torch.Generator or a PhiloxNoise)."""
    if isinstance(generator, PhiloxNoise):
        return generator.randn(x.shape[1:], dtype=x.dtype).to(x.device)
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device).to(x.device)


def gaussian_root(cov) -> np.ndarray:
    """A square root of ``cov`` (float64): the standard deviations (a vector) when ``cov`` is diagonal,
    else ``L`` with ``L L^T = cov`` (eigen square root, clipped at 0)."""
    cov = np.asarray(cov, dtype=np.float64)
    variances = np.diag(cov)
    if np.array_equal(cov, np.diag(variances)):  # e.g. the prior: O(d) instead of an eigendecomposition
        return np.sqrt(np.clip(variances, 0.0, None))
    eigenvalues, U = np.linalg.eigh(cov)
    return U * np.sqrt(np.clip(eigenvalues, 0.0, None))


def draw_gaussian(mean, cov, batch: int, generator, *, dtype=torch.float64, device="cpu", root=None) -> torch.Tensor:
    """``batch`` draws of ``N(mean, cov)`` as ``mean + z L^T`` in ``dtype`` on ``device`` (``root`` as
    ``gaussian_root(cov)`` if known)."""
    root = torch.as_tensor(gaussian_root(cov) if root is None else root, dtype=dtype, device=device)
    z = randn_like(torch.empty(batch, len(mean), dtype=dtype, device=device), generator)
    return torch.as_tensor(mean, dtype=dtype, device=device) + (z * root if root.ndim == 1 else z @ root.T)

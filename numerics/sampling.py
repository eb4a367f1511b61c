"""Batched Monte-Carlo sampling with per-sample randomness: same seed, same samples, any batch size."""
from __future__ import annotations

import torch

from numerics.noise import StackedGenerator, draw_gaussian
from numerics.samplers import SAMPLERS
from numerics import validation

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def sample(denoiser, sampler: str, grid, start_mean, start_cov, n: int, *, seed: int,
           batch_size: int = 4096, device: str = "cpu", dtype=torch.float64) -> torch.Tensor:
    """``n`` sampler outputs from ``x_0 ~ N(start_mean, start_cov)``; sample ``k`` depends only on ``(seed, k)``.

    Returns a float64 CPU tensor of shape ``(n, d)``.
    """
    run = SAMPLERS[validation.choice(sampler, "sampler", SAMPLERS)]
    n = validation.positive_int(n, "n")
    batch_size = validation.positive_int(batch_size, "batch_size")
    mean = validation.mean_vector(start_mean, "start_mean")
    cov = validation.covariance(start_cov, "start_cov", dim=len(mean))
    out = []
    for first in range(0, n, batch_size):
        generator = StackedGenerator(seed, range(first, min(first + batch_size, n)), device)
        x = draw_gaussian(mean, cov, len(generator.generators), generator, dtype=dtype, device=device)
        out.append(run(denoiser, x, grid, generator=generator).to("cpu", torch.float64))
    result = torch.cat(out)
    if not torch.isfinite(result).all():
        raise FloatingPointError(f"sampler {sampler!r} produced non-finite values: the denoiser's vector field "
                                 "blew up (a polynomial field can), or float32 overflowed")
    return result


def affine_probe(denoiser, sampler: str, grid, d: int, *, device: str = "cpu", stochastic: bool = True):
    """Read the affine sampler map with noise switched off: ``x_N = A x_0 + c + sum_i M_i z_i``.

    Returns ``(A, c, N)`` with ``N = sum_i M_i M_i^T`` the noise response, in float64; the noise
    is read by kicking one step at a time with the basis vectors (``stochastic=False`` skips it).
    """
    run = SAMPLERS[validation.choice(sampler, "sampler", SAMPLERS)]
    basis = torch.eye(d, dtype=torch.float64, device=device)
    silent = lambda i, x: torch.zeros_like(x)  # noqa: E731
    c = run(denoiser, torch.zeros(1, d, dtype=torch.float64, device=device), grid, noise_sampler=silent)
    A = (run(denoiser, basis.clone(), grid, noise_sampler=silent) - c).T
    N = torch.zeros(d, d, dtype=torch.float64, device=device)
    for step in range(grid.steps if stochastic else 0):
        kick = lambda i, x, step=step: basis if i == step else torch.zeros_like(x)  # noqa: E731
        M = (run(denoiser, torch.zeros(d, d, dtype=torch.float64, device=device), grid, noise_sampler=kick) - c).T
        N += M @ M.T
    return A.cpu().numpy(), c[0].cpu().numpy(), N.cpu().numpy()

"""Batched Monte-Carlo sampling with counter-based randomness: same seed, same samples, any batch size or device."""
from __future__ import annotations

import torch

from numerics.noise import PhiloxNoise, draw_gaussian, gaussian_root
from numerics.samplers import SAMPLERS
from numerics import validation
from numerics.progress import bar

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def sample(denoiser, sampler: str, grid, start_mean, start_cov, n: int, *, seed: int, first: int = 0,
           batch_size: int = 4096, device: str = "cpu", dtype=torch.float64, progress: bool = False) -> torch.Tensor:
    """Samples ``first, ..., first + n - 1`` of the run seeded ``seed``, from ``x_0 ~ N(start_mean, start_cov)``.

    Sample ``k`` depends only on ``(seed, k)``: its noise is ``PhiloxNoise`` keyed by the sample index,
    drawn on ``device`` in ``dtype`` (float32 or float64). Returns a float64 CPU tensor of shape ``(n, d)``.
    ``progress``: a progress bar over samples x steps on stderr (when it is a terminal).
    """
    run = SAMPLERS[validation.choice(sampler, "sampler", SAMPLERS)]
    grid = validation.grid(grid, "grid")
    n = validation.positive_int(n, "n")
    batch_size = validation.positive_int(batch_size, "batch_size")
    dtype, device = validation.float_dtype(dtype, "dtype"), validation.device(device, "device")
    mean = validation.mean_vector(start_mean, "start_mean")
    cov = validation.covariance(start_cov, "start_cov", dim=len(mean))
    out, shown = [], bar(n * grid.steps, f"sampling {sampler}", progress)
    step_done = lambda info: shown.update(len(info["x"]))  # noqa: E731  (a callback sees each step)
    with torch.inference_mode():
        for generator, x in _start_batches(mean, cov, n, seed, first, batch_size, device, dtype):
            out.append(run(denoiser, x, grid, generator=generator, callback=step_done).to("cpu", torch.float64))
    shown.close()
    result = torch.cat(out)
    if not torch.isfinite(result).all():
        raise FloatingPointError(f"sampler {sampler!r} produced non-finite values: the denoiser's vector field "
                                 "blew up (a polynomial field can), or float32 overflowed")
    return result


def _start_batches(mean, cov, n: int, seed: int, first: int, batch_size: int, device, dtype):
    """``(generator, x_0)`` per batch: the start draws of samples ``first .. first + n - 1``, each batch's
    ``PhiloxNoise`` keyed by its first sample index (the sampler goes on drawing its step noise from it)."""
    root = gaussian_root(cov)
    for start in range(first, first + n, batch_size):
        generator = PhiloxNoise(seed, start, min(batch_size, first + n - start), device)
        yield generator, draw_gaussian(mean, cov, generator.count, generator, dtype=dtype, device=device, root=root)


def start_draws(start_mean, start_cov, n: int, *, seed: int, first: int = 0, batch_size: int = 4096,
                device: str = "cpu", dtype=torch.float64) -> torch.Tensor:
    """The starts ``x_0`` that :func:`sample` with the same arguments draws, as a float64 CPU tensor ``(n, d)``."""
    mean = validation.mean_vector(start_mean, "start_mean")
    cov = validation.covariance(start_cov, "start_cov", dim=len(mean))
    batches = _start_batches(mean, cov, validation.positive_int(n, "n"), seed, first,
                             validation.positive_int(batch_size, "batch_size"), validation.device(device, "device"),
                             validation.float_dtype(dtype, "dtype"))
    return torch.cat([x.to("cpu", torch.float64) for _, x in batches])


PROBE_ELEMENTS = 2**24  # float64 entries per batched probe run (128 MiB); more steps are split into runs


def _kicks(steps: range, d: int, device):
    """``noise_sampler`` kicking row block ``k`` with the basis vectors at step ``steps[k]``, zero elsewhere."""
    basis = torch.eye(d, dtype=torch.float64, device=device)

    def noise(i, x):
        z = torch.zeros_like(x)
        if i in steps:
            k = i - steps.start
            z[k * d:(k + 1) * d] = basis
        return z
    return noise


def affine_probe(denoiser, sampler: str, grid, d: int, *, device: str = "cpu", stochastic: bool = True):
    """Read the affine sampler map with noise switched off: ``x_N = A x_0 + c + sum_i M_i z_i``.

    Returns ``(A, c, N)`` with ``N = sum_i M_i M_i^T`` the noise response, in float64. One batched
    run reads ``c`` and ``A`` (rows ``0`` and ``e_j``, no noise); the noise is read by kicking step
    ``i``'s noise with the basis vectors in row block ``i`` of one run (several if it exceeds
    ``PROBE_ELEMENTS``); ``stochastic=False`` skips it.
    """
    run = SAMPLERS[validation.choice(sampler, "sampler", SAMPLERS)]
    silent = lambda i, x: torch.zeros_like(x)  # noqa: E731
    with torch.inference_mode():
        x0 = torch.cat([torch.zeros(1, d, dtype=torch.float64, device=device),
                        torch.eye(d, dtype=torch.float64, device=device)])
        out = run(denoiser, x0, grid, noise_sampler=silent)
        c, A = out[0], (out[1:] - out[0]).T
        N = torch.zeros(d, d, dtype=torch.float64, device=device)
        per_run = max(1, PROBE_ELEMENTS // (d * d))
        for first in range(0, grid.steps if stochastic else 0, per_run):
            steps = range(first, min(first + per_run, grid.steps))
            x = torch.zeros(len(steps) * d, d, dtype=torch.float64, device=device)
            M = (run(denoiser, x, grid, noise_sampler=_kicks(steps, d, device)) - c).reshape(len(steps), d, d)
            N += torch.einsum("kij,kil->jl", M, M)   # sum_i M_i M_i^T: row j of block k is (M_i e_j)^T
    return A.cpu().numpy(), c.cpu().numpy(), N.cpu().numpy()

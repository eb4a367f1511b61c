"""The references ``benchmarks/limits.py`` races against: hand-written loops of the same updates.

Each is the shortest loop a user would write for the update (VE grid, ``s = 1`` in the torch loops),
with the same denoiser object, so a ratio to it measures the project's own overhead.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from numerics.noise import box_muller, philox, uniforms


def torch_loop(sampler: str, denoiser, x: torch.Tensor, grid) -> torch.Tensor:
    """Heun (Euler on a last step to 0) or DDPM ancestral steps on the VE grid, noise from ``torch.randn``."""
    with torch.inference_mode():
        for sigma, sigma_next in zip(grid.sigma[:-1].tolist(), grid.sigma[1:].tolist()):
            d = (x - denoiser(x, sigma)) / sigma
            if sampler == "heun":
                x_next = x + (sigma_next - sigma) * d
                if sigma_next > 0:
                    x_next = x + (sigma_next - sigma) * 0.5 * (d + (x_next - denoiser(x_next, sigma_next)) / sigma_next)
                x = x_next
            else:
                sigma_up = sigma_next * math.sqrt(1.0 - (sigma_next / sigma) ** 2)
                x = x + (sigma_next**2 / sigma - sigma) * d + sigma_up * torch.randn_like(x)
    return x


def diffusers_loop(sampler: str, denoiser, x: torch.Tensor, steps: int) -> torch.Tensor:
    """diffusers' own loop (HeunDiscreteScheduler / DDPMScheduler, x0 prediction) around the same denoiser."""
    from diffusers import DDPMScheduler, HeunDiscreteScheduler

    if sampler == "heun":
        scheduler = HeunDiscreteScheduler(prediction_type="sample")
    else:
        scheduler = DDPMScheduler(prediction_type="sample")
    scheduler.set_timesteps(steps)
    with torch.inference_mode():
        for t in scheduler.timesteps:
            if sampler == "heun":
                x_in = scheduler.scale_model_input(x, t)
                sigma = float(scheduler.sigmas[scheduler.step_index])
                out = denoiser(x_in * math.sqrt(sigma**2 + 1), sigma) if sigma > 0 else x_in
            else:
                alpha_bar = float(scheduler.alphas_cumprod[int(t)])
                out = denoiser(x / math.sqrt(alpha_bar), math.sqrt((1 - alpha_bar) / alpha_bar))
            x = scheduler.step(out, t, x).prev_sample
    return x


def matmul_rate(n: int, d: int, dtype, device) -> float:
    """Measured flop/s of the ``(n, d) @ (d, d)`` product a dense denoiser call costs (best of 3)."""
    a, b = torch.randn(n, d, dtype=dtype, device=device), torch.randn(d, d, dtype=dtype, device=device)
    best = math.inf
    for _ in range(3):
        began = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - began)
    return 2.0 * n * d * d / best


def compiled_philox(n: int, d: int, device):
    """A ``torch.compile``-d Philox normal kernel for ``(n, d)`` float32 (the key and step passed as tensors)."""
    kernel = torch.compile(lambda b, j, lo, hi, k0, k1: box_muller(uniforms(philox([b, j, lo, hi], (k0, k1)),
                                                                            torch.float32)))
    index = torch.arange(n, device=device)[:, None]
    blocks = torch.arange(d // 4, device=device)[None, :]
    zero = torch.zeros(1, 1, dtype=torch.int64, device=device)
    return lambda: kernel(blocks, zero, index, zero, zero, zero)


def spectral_loop(sampler: str, grid, lam: np.ndarray, mu: np.ndarray):
    """Mean and variances per eigen-direction: the plain vectorized recursion from the prior ``N(0, prior_std^2)``."""
    m, v = np.zeros_like(lam), np.full_like(lam, grid.prior_std**2)
    for i in range(grid.steps):
        sigma, sigma_next, s, s_next = grid.sigma[i], grid.sigma[i + 1], grid.s[i], grid.s[i + 1]
        a = (1 - lam / (lam + sigma**2)) / sigma                       # y - D(y) = sigma a (y - mu)
        if sampler == "heun":
            h = sigma_next - sigma
            a_next = (1 - lam / (lam + sigma_next**2)) / sigma_next if sigma_next > 0 else 0.0
            B = 1 + h * a if sigma_next == 0 else 1 + 0.5 * h * (a + a_next * (1 + h * a))
            noise = 0.0
        else:
            B = 1 + (sigma_next**2 / sigma - sigma) * a
            noise = (s_next * sigma_next) ** 2 * (1.0 - (sigma_next / sigma) ** 2)
        m = s_next * (mu + B * (m / s - mu))
        v = (s_next * B / s) ** 2 * v + noise
    return m, v


def dense_loop(sampler: str, grid, affine, m: np.ndarray, C: np.ndarray):
    """Mean and covariance by ``C <- A C A^T + Q Q^T``, each level's ``(G, b)`` fetched once."""
    eye, level = np.eye(len(m)), affine(grid.sigma[0])
    for i in range(grid.steps):
        sigma, sigma_next, s, s_next = grid.sigma[i], grid.sigma[i + 1], grid.s[i], grid.s[i + 1]
        G, b = level
        P, p = (eye - G) / sigma, -b / sigma                        # y - D(y) = sigma (P y + p)
        if sampler == "heun":
            h = sigma_next - sigma
            if sigma_next > 0:
                level = affine(sigma_next)
                P_next, p_next = (eye - level[0]) / sigma_next, -level[1] / sigma_next
                A, c = eye + 0.5 * h * (P + P_next + h * P_next @ P), 0.5 * h * (p + h * P_next @ p + p_next)
            else:
                A, c = eye + h * P, h * p
            noise = 0.0
        else:
            level = affine(sigma_next) if sigma_next > 0 else None
            k = sigma_next**2 / sigma - sigma
            A, c = eye + k * P, k * p
            noise = (s_next * sigma_next) ** 2 * (1.0 - (sigma_next / sigma) ** 2)
        A, c = (s_next / s) * A, s_next * c
        m = A @ m + c
        C = A @ C @ A.T + noise * eye
    return m, C

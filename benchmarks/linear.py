"""Benchmark figures for the linear slice: Monte-Carlo throughput and the cost of the exact law.

    python benchmarks/linear.py            # prints a table; --quick for a smoke run

Throughput is samples x steps per second of ``numerics.sampling.sample`` (counter-based Philox noise
included) with a dense affine denoiser, at d = 64 and d = 1024, float32 and float64. The exact-law
timing computes Result 3 per eigen-direction for the CIFAR-10 pixel-covariance spectrum
(3072 eigenvalues, ``data/``) with 1000 steps, for every sampler on every schedule it supports.
"""
from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
import torch

from numerics.denoisers import WienerDenoiser
from numerics.sampling import default_device, sample
from numerics.schedules import SCHEDULES
from theory.linear_law import prior_start, spectral_law
from verify.targets import product_target

CIFAR = pathlib.Path(__file__).resolve().parent.parent / "data" / "cifar10_covariance_eigenvalues.npy"
COMPATIBLE = {"ve": ("euler", "heun", "ddim", "ddpm", "euler_maruyama"),
              "vp": ("euler", "heun", "ddim", "ddpm", "euler_maruyama", "exponential_vp"),
              "ddpm": ("euler", "heun", "ddim", "ddpm", "exponential_vp")}


def throughput(d: int, n: int, steps: int, sampler: str, dtype, device: str) -> float:
    """Samples x steps per second of one seeded run (after a warm-up run)."""
    target = product_target(d, seed=0)
    denoiser = WienerDenoiser(target.mean, target.cov)
    grid = SCHEDULES["ve"]().grid(steps)
    start = np.zeros(d), grid.prior_std**2 * np.eye(d)
    sample(denoiser, sampler, grid, *start, min(n, 256), seed=1, dtype=dtype, device=device)
    began = time.perf_counter()
    sample(denoiser, sampler, grid, *start, n, seed=0, dtype=dtype, device=device)
    return n * steps / (time.perf_counter() - began)


def exact_law_seconds(schedule: str, sampler: str, eigenvalues: np.ndarray, steps: int) -> float:
    """Seconds to compute the exact 1000-step law for the whole spectrum (coefficients compiled first)."""
    grid = SCHEDULES[schedule]().grid(steps)
    mean = np.zeros_like(eigenvalues)
    spectral_law(sampler, grid, eigenvalues, mean, prior_start)  # compiles the sympy step once
    began = time.perf_counter()
    spectral_law(sampler, grid, eigenvalues, mean, prior_start)
    return time.perf_counter() - began


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    device = args.device or default_device()
    n, steps = (512, 8) if args.quick else (8192, 32)
    print(f"Monte-Carlo throughput on {device} ({torch.get_num_threads()} threads), {n} samples, {steps} steps, VE")
    print(f"{'d':>6} {'sampler':>8} {'dtype':>8} {'samples*steps/s':>16}")
    for d in (64, 1024):
        for sampler in ("heun", "ddpm"):
            for dtype in (torch.float32, torch.float64):
                rate = throughput(d, n if d == 64 else n // 4, steps, sampler, dtype, device)
                print(f"{d:>6} {sampler:>8} {str(dtype)[6:]:>8} {rate:>16.3e}")
    eigenvalues = np.clip(np.load(CIFAR).astype(np.float64), 0.0, None)
    law_steps = 50 if args.quick else 1000
    print(f"\nExact law, CIFAR-10 spectrum (d = {len(eigenvalues)}), {law_steps} steps, per eigen-direction")
    print(f"{'schedule':>8} {'sampler':>15} {'seconds':>8}")
    for schedule, samplers in COMPATIBLE.items():
        for sampler in samplers:
            print(f"{schedule:>8} {sampler:>15} {exact_law_seconds(schedule, sampler, eigenvalues, law_steps):>8.3f}")


if __name__ == "__main__":
    main()

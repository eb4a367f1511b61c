"""How close the project runs to the machine: every contender timed side by side in one process, interleaved.

    python benchmarks/limits.py            # full sizes (a few minutes on one core)
    python benchmarks/limits.py --quick    # small sizes, a smoke run

Prints, per case, the best of ``--repeats`` interleaved repetitions and the ratios the targets are about:
- noise: ``PhiloxNoise`` eager (and ``torch.compile``-d with ``--compile``) against ``torch.randn``;
- sampling: ``numerics.sampling.sample`` against a hand-written torch loop with the same denoiser and
  update, and diffusers' scheduler loop on the same denoiser (target: <= 1.1x the plain loop, <= 1x
  diffusers), and the fraction of the measured matmul limit (target at d = 1024: >= 80%);
- exact laws: the per-eigen-direction and full-matrix recursions against a plain numpy loop of the
  same update (target: <= 1.2x); each plain loop is checked to give the same law.
Absolute times depend on the machine and its load; the ratios are the figures.
"""
from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks import plain  # noqa: E402
from numerics.denoisers import WienerDenoiser  # noqa: E402
from numerics.noise import PhiloxNoise  # noqa: E402
from numerics.sampling import default_device, sample  # noqa: E402
from numerics.schedules import SCHEDULES  # noqa: E402
from theory.linear_law import affine_law, prior_start, spectral_law  # noqa: E402
from verify.targets import product_target  # noqa: E402

CIFAR = pathlib.Path(__file__).resolve().parent.parent / "data" / "cifar10_covariance_eigenvalues.npy"


def race(contenders: dict, repeats: int) -> dict:
    """Best seconds of each contender over ``repeats`` rounds, run in turn within each round."""
    best = {name: math.inf for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            began = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - began)
    return best


def line(label: str, best: dict, reference: str) -> str:
    parts = [f"{name} {seconds:.4f} s ({seconds / best[reference]:.2f}x)" for name, seconds in best.items()]
    return f"{label:<34} " + ", ".join(parts)


def noise_case(n, d, device, repeats, compiled: bool) -> None:
    contenders = {"torch.randn": lambda: torch.randn(n, d, device=device),
                  "philox eager": lambda: PhiloxNoise(0, 0, n, device).randn((d,), torch.float32)}
    if compiled:
        kernel = plain.compiled_philox(n, d, device)
        began = time.perf_counter()
        kernel()
        print(f"  (torch.compile of the Philox kernel took {time.perf_counter() - began:.1f} s)")
        contenders["philox compiled"] = kernel
    print(line(f"noise ({n}, {d}) float32", race(contenders, repeats), "torch.randn"))


def sampling_case(d, n, steps, sampler, dtype, device, repeats) -> None:
    target = product_target(d, seed=0)
    denoiser = WienerDenoiser(target.mean, target.cov)
    grid = SCHEDULES["ve"]().grid(steps)
    mean, cov = np.zeros(d), grid.prior_std**2 * np.eye(d)
    x0 = lambda: grid.prior_std * torch.randn(n, d, dtype=dtype, device=device)  # noqa: E731  drawn in each run
    contenders = {
        "plain loop": lambda: plain.torch_loop(sampler, denoiser, x0(), grid),
        "sample": lambda: sample(denoiser, sampler, grid, mean, cov, n, seed=0, batch_size=n, device=device,
                                 dtype=dtype),
        "diffusers": lambda: plain.diffusers_loop(sampler, denoiser, x0(), steps),
    }
    best = race(contenders, repeats)
    calls = (2 * steps - 1) if sampler == "heun" else steps
    limit = n * d * d * 2 * calls / plain.matmul_rate(n, d, dtype, device)  # seconds at the matmul limit
    print(line(f"d={d:<5} {sampler:<5} {str(dtype)[6:]}", best, "plain loop")
          + f"; fraction of matmul limit: sample {limit / best['sample']:.0%}, plain {limit / best['plain loop']:.0%}")


def spectral_case(sampler, steps, eigenvalues, repeats) -> None:
    grid, mean = SCHEDULES["ve"]().grid(steps), np.zeros_like(eigenvalues)
    theory = spectral_law(sampler, grid, eigenvalues, mean, prior_start)  # compiles the sympy step once
    m, v = plain.spectral_loop(sampler, grid, eigenvalues, mean)
    assert np.allclose(v, theory.cov, rtol=1e-9, atol=0) and np.allclose(m, theory.mean, atol=1e-9)  # same update
    best = race({"plain numpy": lambda: plain.spectral_loop(sampler, grid, eigenvalues, mean),
                 "spectral_law": lambda: spectral_law(sampler, grid, eigenvalues, mean, prior_start)}, repeats)
    print(line(f"law per eigen-direction {sampler:<5} d={len(eigenvalues)}", best, "plain numpy"))


def dense_case(sampler, steps, d, repeats) -> None:
    target = product_target(d, seed=0)
    denoiser, grid = WienerDenoiser(target.mean, target.cov), SCHEDULES["ve"]().grid(steps)
    start = prior_start(grid, target.mean, target.cov)
    theory = affine_law(sampler, grid, denoiser.affine, start)
    m, C = plain.dense_loop(sampler, grid, denoiser.affine, start.mean, start.cov)
    assert np.allclose(C, theory.cov, rtol=1e-9, atol=1e-9 * np.abs(C).max())  # the same update
    best = race({"plain numpy": lambda: plain.dense_loop(sampler, grid, denoiser.affine, start.mean, start.cov),
                 "affine_law": lambda: affine_law(sampler, grid, denoiser.affine, start)}, repeats)
    print(line(f"law full-matrix {sampler:<5} d={d}", best, "plain numpy"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time the torch.compile-d Philox kernel")
    args = parser.parse_args(argv)
    device = args.device or default_device()
    print(f"device {device}, {torch.get_num_threads()} torch threads; best of {args.repeats} interleaved repeats")
    noise_case(1000 if args.quick else 4000, 1024, device, args.repeats, args.compile)
    sizes = {64: (512, 8), 1024: (64, 4)} if args.quick else {64: (8192, 32), 1024: (1024, 16)}
    for d, (n, steps) in sizes.items():
        for sampler in ("heun", "ddpm"):
            for dtype in (torch.float32, torch.float64):
                sampling_case(d, n, steps, sampler, dtype, device, args.repeats)
    eigenvalues = np.clip(np.load(CIFAR).astype(np.float64), 0.0, None)
    for sampler in ("heun", "ddpm"):
        spectral_case(sampler, 50 if args.quick else 1000, eigenvalues, args.repeats)
        dense_case(sampler, 10 if args.quick else 100, 64 if args.quick else 256, args.repeats)


if __name__ == "__main__":
    main()

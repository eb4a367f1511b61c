"""``python -m verify.conventions``: the exact laws of the samplers people run, as tables.

1. W2 between each VP convention's exact output law and the data ``N(0, Sigma)`` on the CIFAR-10
   pixel-covariance spectrum (``data/``): VP with beta_min 0.1, beta_max 20, T = 1, eps = 1e-3, grid
   uniform in t, start N(0, I), output at t = eps compared with the data as is; NFE = denoiser
   evaluations (Heun: 2 per step). Rows "exact PF-ODE / reverse SDE" are the continuous-time laws.
2. diffusers' default DDIM and DDPM (50 steps, ``timestep_spacing="leading"``, ``steps_offset=0``,
   final alpha 1): variance per eigen-direction of the law they generate, divided by the variance
   the project predicted before it knew the convention (its own evenly rounded grid of 50 steps).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
from tqdm import tqdm

from numerics.schedules import DDPMSchedule, VPSchedule
from theory.finite_step import Diagonal, GaussianLaw
from theory.linear_law import OPTIMAL, prior_start, spectral_continuous_law, spectral_law
from theory.multistep import multistep_law
from verify import report
from verify.targets import make_target

CIFAR = pathlib.Path(__file__).resolve().parent.parent / "data" / "cifar10_covariance_eigenvalues.npy"
VP_CONVENTIONS = {  # name -> (sampler, evaluations per step)
    "PF-ODE Euler in t on x": ("euler_t", 1), "PF-ODE Heun in t on x": ("heun_t", 2),
    "PF-ODE RK4 in t on x": ("rk4_t", 4),
    "Euler-Maruyama in t": ("euler_maruyama", 1), "DDPM, beta_i = beta(t_i) dt (score_sde)": ("ddpm_t", 1),
    "exponential integrator (frozen score)": ("exponential_vp", 1), "DDIM = PF-ODE Euler in sigma": ("ddim", 1),
    "PF-ODE Heun in sigma (EDM)": ("heun", 2), "DDPM ancestral, posterior variance": ("ddpm", 1),
    "DDPM ancestral, variance beta (fixed_large)": ("ddpm_large", 1), "DPM-Solver++(2M)": ("dpmpp_2m", 1),
}
NFES = (50, 250, 500, 1000)


def w2_to_data(law: GaussianLaw, eigenvalues) -> float:
    """``W2(N(m, diag v), N(0, diag lambda))`` in the eigenbasis: ``sqrt(|m|^2 + sum (sqrt v - sqrt lambda)^2)``."""
    return float(np.sqrt(np.sum(law.mean**2) + np.sum((np.sqrt(law.cov) - np.sqrt(eigenvalues)) ** 2)))


def convention_law(sampler: str, grid, eigenvalues) -> GaussianLaw:
    mean = np.zeros(len(eigenvalues))
    if sampler != "dpmpp_2m":
        return spectral_law(sampler, grid, eigenvalues, mean, prior_start)

    def affine(sigma):
        gain = OPTIMAL.gain(eigenvalues, sigma)
        return gain, (1.0 - gain) * mean

    return multistep_law(sampler, grid, affine, prior_start(grid, mean, eigenvalues), Diagonal)


def w2_table(eigenvalues, nfes=NFES) -> dict:
    """``{convention: {nfe: W2}}``, plus the continuous-time laws (independent of the NFE)."""
    schedule, table = VPSchedule(0.1, 20.0, 1.0, 1e-3), {}
    for name, (sampler, per_step) in tqdm(VP_CONVENTIONS.items(), file=sys.stderr, disable=not sys.stderr.isatty()):
        table[name] = {nfe: w2_to_data(convention_law(sampler, schedule.grid(nfe // per_step), eigenvalues),
                                       eigenvalues) for nfe in nfes}
    grid, zero = schedule.grid(1), np.zeros(len(eigenvalues))
    for name, sampler in (("exact PF-ODE (continuous time)", "ddim"), ("exact reverse SDE (continuous time)", "ddpm")):
        w2 = w2_to_data(spectral_continuous_law(sampler, grid, eigenvalues, zero), eigenvalues)
        table[name] = {nfe: w2 for nfe in nfes}
    return table


def default_ratios(eigenvalues, steps: int = 50) -> dict:
    """``{sampler: variance(diffusers' default grid) / variance(the project's old grid)}`` per eigen-direction."""
    schedule, zero = DDPMSchedule(), np.zeros(len(eigenvalues))
    return {sampler: spectral_law(sampler, schedule.grid(steps, "leading"), eigenvalues, zero).cov
            / spectral_law(sampler, schedule.grid(steps), eigenvalues, zero).cov for sampler in ("ddim", "ddpm")}


def format_w2(table: dict, nfes=NFES) -> str:
    width = max(map(len, table))
    lines = ["convention".ljust(width) + "".join(f"  NFE={nfe:<6}" for nfe in nfes)]
    lines += [name.ljust(width) + "".join(f"  {row[nfe]:<10.5f}" for nfe in nfes) for name, row in table.items()]
    return "\n".join(lines)


def format_ratios(ratios: dict, eigenvalues, picks) -> str:
    order = np.argsort(eigenvalues)
    lines = ["eigenvalue   " + "  ".join(f"{name:>9}" for name in ratios)]
    for k in picks:
        j = order[k]
        lines.append(f"{eigenvalues[j]:<11.4g}  " + "  ".join(f"{r[j]:9.5f}" for r in ratios.values()))
    lines.append("max |ratio - 1|  " + "  ".join(f"{np.abs(r - 1).max():.4%}" for r in ratios.values()))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m verify.conventions", description=__doc__.splitlines()[0])
    p.add_argument("--nfe", type=report.positive_int_arg, nargs="+", default=list(NFES), help="NFE columns")
    args = p.parse_args(argv)
    eigenvalues = np.clip(np.load(CIFAR).astype(np.float64), 0.0, None)  # one stored -0.0
    print(f"W2 to the data N(0, Sigma), CIFAR-10 spectrum (d = {len(eigenvalues)}), VP beta 0.1..20, T = 1, "
          "eps = 1e-3, uniform t, start N(0, I):")
    print(format_w2(w2_table(eigenvalues, args.nfe), args.nfe))
    for label, values in (("CIFAR-10 spectrum", eigenvalues), ("verify.linear's default target (mixture, d = 64)",
                                                                np.linalg.eigvalsh(make_target("mixture", 64, 0).cov))):
        zero, values = int(np.sum(values == 0)), values[values > 0]  # lambda = 0: variance 0 under both grids
        d = len(values)
        picks = sorted({0, 1, 2, d // 100, d // 10, d // 2, d - 1})
        print(f"\ndiffusers' default DDIM / DDPM, 50 steps ('leading'), variance / old-grid variance, {label}"
              f"{f' ({zero} zero eigenvalues left out: variance 0 on both grids)' if zero else ''}:")
        print(format_ratios(default_ratios(values), values, picks))
    return 0


if __name__ == "__main__":
    sys.exit(main())

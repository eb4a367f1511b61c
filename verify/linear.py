"""``python -m verify.linear``: the linear denoiser's generated law, theory against Monte Carlo.

Builds a seeded non-Gaussian target, a linear denoiser (closed-form, fitted or trained), runs the
chosen sampler, and compares the samples with the exact Gaussian law of that very sampler and
grid (Result 3): an exact noise-free probe to float64 round-off, then calibrated statistics.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from numerics.denoisers import WienerDenoiser, fit_affine, train_linear
from numerics.schedules import SCHEDULES
from theory.finite_step import GaussianLaw, check_sampler_grid
from theory.linear import TrainingSetLaw
from theory.linear_law import STARTS, affine_law, continuous_law, wiener_law
from verify import distributed, report, stats
from verify.affine import SamplingConfig, add_sampling_arguments, header, law_report, monte_carlo, probe_checks
from verify.targets import make_target

DENOISERS = ("closed-form", "fitted", "trained")
NEGATIVE_CONTROLS = ("continuous", "covariance+1%", "covariance+2%", "unbiased-covariance")


@dataclass
class Config(SamplingConfig):
    n_train: int | None = None
    denoiser: str = "closed-form"
    copies: int = 64
    iterations: int = 2000
    negative_control: str | None = None


def training_moments(cfg: Config, target):
    """``(train, mean, cov)``: the population when ``n_train`` is None, else a seeded training set."""
    n_train = cfg.n_train
    if n_train is None and cfg.denoiser != "closed-form":
        n_train = max(1000, 10 * cfg.dim)  # fitted/trained need data; default well above d
    if n_train is None:
        return None, target.mean, target.cov
    if n_train < 2:
        raise ValueError(f"n_train must be >= 2 (one point has zero covariance), got {n_train}")
    train = target.sample(n_train, np.random.default_rng([cfg.seed, 1]))
    return train, *TrainingSetLaw.moments(train)


def build(cfg: Config, grid, start: GaussianLaw, train, mean, cov):
    """The denoiser the sampler runs and the exact law it must generate."""
    if cfg.denoiser == "closed-form":
        denoiser = WienerDenoiser(mean, cov)
        return denoiser, wiener_law(cfg.sampler, grid, mean, cov, STARTS[cfg.init])
    levels = grid.sigma[grid.sigma > 0]
    generator = torch.Generator().manual_seed(cfg.seed)
    if cfg.denoiser == "fitted":
        denoiser = fit_affine(train, levels, cfg.copies, generator)
    else:
        denoiser = train_linear(train, levels, iterations=cfg.iterations, generator=generator)
    return denoiser, affine_law(cfg.sampler, grid, denoiser.affine, start)


def wrong_prediction(cfg: Config, grid, predicted: GaussianLaw, mean, cov) -> GaussianLaw:
    """Negative controls: a deliberately wrong law that the checks must reject."""
    if cfg.negative_control == "continuous":
        return continuous_law(cfg.sampler, grid, mean, cov, STARTS[cfg.init])
    if cfg.negative_control.startswith("covariance+"):
        factor = 1 + float(cfg.negative_control[len("covariance+"):-1]) / 100
        return GaussianLaw(predicted.mean, factor * predicted.covariance())
    if cfg.n_train is None or cfg.n_train < 2:
        raise ValueError("negative control 'unbiased-covariance' needs --n-train >= 2")
    unbiased = cov * cfg.n_train / (cfg.n_train - 1)
    return wiener_law(cfg.sampler, grid, mean, unbiased, STARTS[cfg.init])


def discretization(cfg: Config, grid, predicted: GaussianLaw, mean, cov) -> dict:
    """The continuous-time law the sampler discretizes and the distance to it."""
    continuous = continuous_law(cfg.sampler, grid, mean, cov, STARTS[cfg.init])
    C = predicted.covariance()
    along = np.einsum("ij,ik,kj->j", continuous.basis, C, continuous.basis)  # u_j^T C u_j
    kept = continuous.cov > 1e-12 * max(continuous.cov.max(), 1e-300)
    ratio = along[kept] / continuous.cov[kept]
    w2 = stats.bures_wasserstein(predicted.mean, C, continuous.mean, continuous.covariance())
    return {"continuous_eigenvalues": continuous.eigenvalues(), "w2_to_continuous": w2,
            "variance_ratio_min": float(ratio.min()), "variance_ratio_max": float(ratio.max())}


def run(cfg: Config) -> dict:
    """Everything ``python -m verify.linear`` does, as a report dictionary."""
    started = time.perf_counter()
    target = make_target(cfg.target, cfg.dim, cfg.seed)
    grid = SCHEDULES[cfg.schedule]().grid(cfg.steps)
    check_sampler_grid(cfg.sampler, grid)
    train, mean, cov = training_moments(cfg, target)
    start = STARTS[cfg.init](grid, mean, cov)
    denoiser, predicted = build(cfg, grid, start, train, mean, cov)
    discretization_error = discretization(cfg, grid, predicted, mean, cov)
    if cfg.negative_control is not None:
        predicted = wrong_prediction(cfg, grid, predicted, mean, cov)
    checks = probe_checks(denoiser, cfg.sampler, grid, start, predicted, cfg.device) if cfg.probe else []
    statistical, x = monte_carlo(denoiser, cfg, grid, start, predicted)
    checks += statistical
    return {"passed": report.verdict(checks), "checks": checks, "config": asdict(cfg),
            **law_report(x, predicted), "discretization": discretization_error,
            "seconds": time.perf_counter() - started}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify.linear", description=__doc__.splitlines()[0])
    add_sampling_arguments(p)
    p.add_argument("--n-train", type=report.positive_int_arg, default=None,
                   help="train on n points drawn from the target (default: the population moments)")
    p.add_argument("--denoiser", choices=DENOISERS, default="closed-form")
    p.add_argument("--copies", type=report.positive_int_arg, default=64, help="noisy copies per point (fitted)")
    p.add_argument("--iterations", type=report.positive_int_arg, default=2000, help="Adam steps (trained)")
    p.add_argument("--negative-control", choices=NEGATIVE_CONTROLS, default=None,
                   help="replace the prediction by a deliberately wrong one; the run must FAIL")
    return p


def summary(result: dict) -> str:
    """The human-readable report: configuration, checks table, effect sizes, discretization."""
    cfg, disc, eff = result["config"], result["discretization"], result["effect_sizes"]
    lines = [header("verify.linear", cfg, ("dim", "sampler", "schedule", "steps", "samples", "target",
                                             "denoiser", "init", "n_train", "dtype", "seed")),
             report.table(result["checks"]), "",
             "effect sizes (measured vs predicted): " + ", ".join(f"{k} = {v:.3g}" for k, v in eff.items()),
             f"discretization vs the continuous-time law: W2 = {disc['w2_to_continuous']:.4g}, "
             f"variance ratio per eigen-direction in [{disc['variance_ratio_min']:.4f}, "
             f"{disc['variance_ratio_max']:.4f}]",
             f"{'PASS' if result['passed'] else 'FAIL'} in {result['seconds']:.1f} s"]
    return "\n".join(lines)


def plot(path: str, result: dict, args) -> None:
    """Predicted, measured and continuous-time covariance spectra."""
    report.plot_spectra(path, {"predicted": result["predicted"]["cov_eigenvalues"],
                               "measured": result["measured"]["cov_eigenvalues"],
                               "continuous-time": result["discretization"]["continuous_eigenvalues"]},
                        f"{args.sampler}, {args.steps} steps, d = {args.dim}")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    with distributed.session(args):  # under torchrun: shard the samples over the processes
        return report.cli_main(args, Config, run, summary, plot=plot)


if __name__ == "__main__":
    sys.exit(main())

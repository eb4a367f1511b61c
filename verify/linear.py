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
from numerics.samplers import SAMPLERS, STOCHASTIC
from numerics.sampling import DTYPES, affine_probe, default_device, sample
from numerics.schedules import SCHEDULES
from theory.finite_step import GaussianLaw, check_sampler_grid, probe_law
from theory.linear import TrainingSetLaw
from theory.linear_law import STARTS, affine_law, continuous_law, wiener_law
from verify import report, stats
from verify.check import Check
from verify.targets import TARGETS, make_target

DENOISERS = ("closed-form", "fitted", "trained")
NEGATIVE_CONTROLS = ("continuous", "covariance+1%", "covariance+2%", "unbiased-covariance")
PROBE_RTOL = 1e-10  # float64 round-off over a few hundred affine steps


@dataclass
class Config:
    dim: int = 64
    sampler: str = "heun"
    schedule: str = "ve"
    steps: int = 32
    samples: int = 10000
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float64"
    target: str = "mixture"
    n_train: int | None = None
    denoiser: str = "closed-form"
    init: str = "prior"
    alpha: float = 1e-3
    probe: bool = True
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


def probe_checks(denoiser, cfg: Config, grid, start: GaussianLaw, predicted: GaussianLaw) -> list[Check]:
    """Noise-free probe of the affine sampler map, compared with the predicted law to round-off."""
    A, c, N = affine_probe(denoiser, cfg.sampler, grid, cfg.dim, device=cfg.device,
                           stochastic=cfg.sampler in STOCHASTIC)
    probed = probe_law(A, c, N, start)
    C = predicted.covariance()
    scale = max(np.max(np.abs(C)), 1e-300)
    mean_err = np.max(np.abs(probed.mean - predicted.mean)) / np.sqrt(scale)
    cov_err = np.max(np.abs(probed.cov - C)) / scale
    return [Check("exact probe: mean", mean_err, None, bool(mean_err <= PROBE_RTOL), "0",
                  f"{mean_err:.2e}", f"<= {PROBE_RTOL:g} x sqrt(max|C|)"),
            Check("exact probe: covariance", cov_err, None, bool(cov_err <= PROBE_RTOL), "0",
                  f"{cov_err:.2e}", f"<= {PROBE_RTOL:g} x max|C|")]


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
    checks = probe_checks(denoiser, cfg, grid, start, predicted) if cfg.probe else []
    x = sample(denoiser, cfg.sampler, grid, start.mean, start.covariance(), cfg.samples, seed=cfg.seed,
               device=cfg.device, dtype=DTYPES[cfg.dtype]).numpy()
    C = predicted.covariance()
    null_atol = (1e-6 if cfg.dtype == "float64" else 1e-2) * np.sqrt(max(np.abs(C).max(), 1e-300))
    checks += stats.gaussian_checks(x, predicted.mean, C, alpha=cfg.alpha, null_atol=null_atol)
    return {"passed": report.verdict(checks), "checks": checks, "config": asdict(cfg),
            "predicted": {"mean": predicted.mean, "cov_eigenvalues": predicted.eigenvalues()},
            "measured": {"mean": x.mean(axis=0), "cov_eigenvalues": np.linalg.eigvalsh(np.atleast_2d(np.cov(x.T)))},
            "effect_sizes": stats.effect_sizes(x, predicted.mean, C),
            "discretization": discretization_error,
            "seconds": time.perf_counter() - started}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify.linear", description=__doc__.splitlines()[0])
    p.add_argument("--dim", type=report.positive_int_arg, default=64, help="dimension d")
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default="heun")
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="ve")
    p.add_argument("--steps", type=report.positive_int_arg, default=32, help="sampler steps")
    p.add_argument("--samples", type=report.positive_int_arg, default=10000, help="Monte-Carlo samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float64")
    p.add_argument("--target", choices=TARGETS, default="mixture")
    p.add_argument("--n-train", type=report.positive_int_arg, default=None,
                   help="train on n points drawn from the target (default: the population moments)")
    p.add_argument("--denoiser", choices=DENOISERS, default="closed-form")
    p.add_argument("--init", choices=sorted(STARTS), default="prior",
                   help="standard prior or the exact Gaussian marginal at t_0")
    p.add_argument("--alpha", type=report.alpha_arg, default=1e-3, help="family-wise false-alarm rate")
    p.add_argument("--no-probe", dest="probe", action="store_false", help="skip the exact noise-free probe")
    p.add_argument("--copies", type=report.positive_int_arg, default=64, help="noisy copies per point (fitted)")
    p.add_argument("--iterations", type=report.positive_int_arg, default=2000, help="Adam steps (trained)")
    p.add_argument("--negative-control", choices=NEGATIVE_CONTROLS, default=None,
                   help="replace the prediction by a deliberately wrong one; the run must FAIL")
    p.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    p.add_argument("--plot", metavar="PATH", help="write predicted vs measured spectra as an image")
    return p


def summary(result: dict) -> str:
    """The human-readable report: configuration, checks table, effect sizes, discretization."""
    cfg, disc, eff = result["config"], result["discretization"], result["effect_sizes"]
    lines = [f"verify.linear: d={cfg['dim']} sampler={cfg['sampler']} schedule={cfg['schedule']} "
             f"steps={cfg['steps']} samples={cfg['samples']} target={cfg['target']} denoiser={cfg['denoiser']} "
             f"init={cfg['init']} n_train={cfg['n_train']} dtype={cfg['dtype']} seed={cfg['seed']}",
             f"family-wise false-alarm rate of the Monte-Carlo checks: {cfg['alpha']:g}", "",
             report.table(result["checks"]), "",
             "effect sizes (measured vs predicted): " + ", ".join(f"{k} = {v:.3g}" for k, v in eff.items()),
             f"discretization vs the continuous-time law: W2 = {disc['w2_to_continuous']:.4g}, "
             f"variance ratio per eigen-direction in [{disc['variance_ratio_min']:.4f}, "
             f"{disc['variance_ratio_max']:.4f}]",
             f"{'PASS' if result['passed'] else 'FAIL'} in {result['seconds']:.1f} s"]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k not in ("json", "plot")}
    options["device"] = args.device or default_device()
    try:
        result = run(Config(**options))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(result))
    if args.json:
        report.write_json(args.json, result)
    if args.plot:
        report.plot_spectra(args.plot, {"predicted": result["predicted"]["cov_eigenvalues"],
                                        "measured": result["measured"]["cov_eigenvalues"],
                                        "continuous-time": result["discretization"]["continuous_eigenvalues"]},
                            f"{args.sampler}, {args.steps} steps, d = {args.dim}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

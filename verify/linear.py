"""``python -m verify.linear``: the linear denoiser's generated law, theory against Monte Carlo.

Builds a seeded non-Gaussian target, a linear denoiser (closed-form from the normal equations,
fitted or trained: all computed in ``numerics`` from their definitions), runs the chosen sampler,
and compares the samples with the exact Gaussian law of that very sampler and grid (Result 3): an
exact noise-free probe to float64 round-off, then calibrated statistics. Each result it names is
checked against something computed without it: Result 1's formula against the normal equations and
against a least-squares fit on noisy samples, Result 2 against the refined finite-step laws, Result 4
against a training set's law with the moments taken by ``numerics``.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from numerics.denoisers import WienerDenoiser, fit_affine, train_linear
from numerics.interop import CHURN_SCHEDULER  # a name only: diffusers itself stays optional
from numerics.registry import SPECS
from numerics.schedules import SCHEDULES, churned
from theory.finite_step import GaussianLaw, check_sampler_grid
from theory.linear import TrainingSetLaw
from theory.linear_law import OPTIMAL, STARTS, affine_law, continuous_law, wiener_law
from theory.steps import step_map
from theory.symbols import eta
from verify import arguments, distributed, report, stats
from verify.affine import SamplingConfig, add_sampling_arguments, header, law_report, monte_carlo, probe_checks
from verify.convergence import continuous_limit_check, refinable
from verify.denoiser_checks import fit_check, formula_check
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
    eta: float | None = None
    s_churn: float | None = None
    s_tmin: float = 0.0
    s_tmax: float = float("inf")
    s_noise: float = 1.0
    diffusers: str | None = None
    scheduler_config: str | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.n_train is not None and self.n_train < 2:
            raise ValueError(f"n_train must be >= 2 (one point has zero covariance), got {self.n_train}")
        churns = SPECS[self.sampler].churn is not None if self.diffusers is None else self.diffusers == CHURN_SCHEDULER
        if self.s_churn is not None and not churns:
            raise ValueError("--s-churn goes with --sampler edm_churn (EDM Algorithm 2) or euler_churn_*, or with "
                             f"--diffusers {CHURN_SCHEDULER}")
        if churns and self.diffusers is None and self.s_churn is None:
            raise ValueError(f"--sampler {self.sampler} needs --s-churn")
        if self.s_churn is None and (self.s_tmin, self.s_tmax, self.s_noise) != (0.0, float("inf"), 1.0):
            raise ValueError("--s-tmin, --s-tmax and --s-noise are the churn's: they need --s-churn")
        if self.s_churn is not None and not (self.s_churn >= 0 and 0 <= self.s_tmin <= self.s_tmax and self.s_noise >= 0):
            raise ValueError("need --s-churn >= 0, 0 <= --s-tmin <= --s-tmax and --s-noise >= 0")
        if self.negative_control == "unbiased-covariance" and self.n_train is None:
            raise ValueError("negative control 'unbiased-covariance' needs --n-train >= 2")


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


def closed_form(target, train) -> WienerDenoiser:
    """The numerics' optimal affine denoiser: the population's moments, or the training set's own."""
    return WienerDenoiser(target.mean, target.cov) if train is None else WienerDenoiser.from_training_set(train)


def build(cfg: Config, grid, start: GaussianLaw, reference: WienerDenoiser, train, mean, cov):
    """The denoiser the sampler runs (numerics) and the exact law it must generate (theory).

    ``reference``: the numerics' closed-form denoiser (``closed_form``), run as it is by ``--denoiser closed-form``.
    """
    if cfg.denoiser == "closed-form":
        return reference, wiener_law(cfg.sampler, grid, mean, cov, STARTS[cfg.init])
    levels = grid.sigma[grid.sigma > 0]
    generator = torch.Generator().manual_seed(cfg.seed)
    if cfg.denoiser == "fitted":
        denoiser = fit_affine(train, levels, cfg.copies, generator, progress=not cfg.quiet)
    else:
        denoiser = train_linear(train, levels, iterations=cfg.iterations, generator=generator, progress=not cfg.quiet)
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
    """The continuous-time law the sampler discretizes and the distance to it (empty when it has none)."""
    if SPECS[cfg.sampler].continuous_limit is None:
        return {}
    continuous = continuous_law(cfg.sampler, grid, mean, cov, STARTS[cfg.init])
    C = predicted.covariance()
    along = np.einsum("ij,ik,kj->j", continuous.basis, C, continuous.basis)  # u_j^T C u_j
    kept = continuous.cov > 1e-12 * max(continuous.cov.max(), 1e-300)
    ratio = along[kept] / continuous.cov[kept]
    w2 = stats.bures_wasserstein(predicted.mean, C, continuous.mean, continuous.covariance())
    return {"continuous_eigenvalues": continuous.eigenvalues(), "w2_to_continuous": w2,
            "variance_ratio_min": float(ratio.min()), "variance_ratio_max": float(ratio.max())}


def training_set_probe(cfg: Config, grid, target) -> list:
    """Result 4 at default settings: a small training set's law (theory's moments) against the sampler
    running the numerics' denoiser of that set (its own moments), by the exact probe."""
    train = target.sample(2 * cfg.dim, np.random.default_rng([cfg.seed, 31]))
    mean, cov = TrainingSetLaw.moments(train)
    start = STARTS[cfg.init](grid, mean, cov)
    predicted = wiener_law(cfg.sampler, grid, mean, cov, STARTS[cfg.init])
    return probe_checks(WienerDenoiser.from_training_set(train), cfg.sampler, grid, start, predicted, cfg.device,
                        label=f"Result 4 (n = {2 * cfg.dim}) probe")


def independent_checks(cfg: Config, grid, target, train, reference: WienerDenoiser, mean, cov, alpha: float) -> list:
    """Results 1, 2 and 4 against computations that do not use them (``reference``: the numerics' closed form)."""
    levels = grid.sigma[grid.sigma > 0]
    formula = lambda sigma: OPTIMAL.affine(mean, cov, sigma)  # noqa: E731  (Result 1 with Result 4's moments)
    if train is None:
        draw = target.sample
    else:  # the empirical distribution of the training set
        draw = lambda n, rng: train[rng.integers(len(train), size=n)]  # noqa: E731
    checks = [formula_check("Result 1: formula = normal equations", formula, reference.affine, levels),
              fit_check("Result 1: formula vs least-squares fit", formula, draw, levels, alpha=alpha, seed=cfg.seed)]
    if refinable(cfg.schedule) and SPECS[cfg.sampler].continuous_limit is not None:
        checks.append(continuous_limit_check(cfg.sampler, cfg.schedule, mean, cov, STARTS[cfg.init]))
    if train is None and cfg.probe:
        checks += training_set_probe(cfg, grid, target)
    return checks


def run(cfg: Config) -> dict:
    """Everything ``python -m verify.linear`` does, as a report dictionary."""
    if cfg.diffusers is not None:  # the scheduler's own loop (verify.diffusers_check)
        from verify import diffusers_check
        return diffusers_check.run(cfg)
    if cfg.scheduler_config is not None:
        raise ValueError("--scheduler-config needs --diffusers NAME")
    started = time.perf_counter()
    target = make_target(cfg.target, cfg.dim, cfg.seed)
    grid = SCHEDULES[cfg.schedule]().grid(cfg.steps)
    if cfg.eta is not None and not step_map(cfg.sampler).expression.has(eta):
        raise ValueError(f"--eta sets the noise of ancestral and ddpm_large; sampler {cfg.sampler!r} has none")
    grid = grid if cfg.eta is None else replace(grid, eta=cfg.eta)
    if cfg.s_churn is not None:  # EDM Algorithm 2's churn levels on the grid
        grid = churned(grid, cfg.s_churn, cfg.s_tmin, cfg.s_tmax, cfg.s_noise)
    check_sampler_grid(cfg.sampler, grid)
    train, mean, cov = training_moments(cfg, target)
    start = STARTS[cfg.init](grid, mean, cov)
    reference = closed_form(target, train)  # solved once per level, shared by the sampler and the Result 1 check
    denoiser, predicted = build(cfg, grid, start, reference, train, mean, cov)
    discretization_error = discretization(cfg, grid, predicted, mean, cov)
    if cfg.negative_control is not None:
        predicted = wrong_prediction(cfg, grid, predicted, mean, cov)
    tests = len(stats.STOCHASTIC_TESTS) + 1  # the Gaussian-law tests and the least-squares fit test
    checks = independent_checks(cfg, grid, target, train, reference, mean, cov, cfg.alpha / tests)
    if cfg.probe:
        checks += probe_checks(denoiser, cfg.sampler, grid, start, predicted, cfg.device)
    statistical, x = monte_carlo(denoiser, cfg, grid, start, predicted, alpha=cfg.alpha * (tests - 1) / tests)
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
    p.add_argument("--eta", type=report.unit_interval_arg, default=None,
                   help="noise multiplier per step in [0, 1]: ancestral / ddpm_large (default 1), DDIM's eta with --diffusers")
    p.add_argument("--s-churn", type=float, default=None,
                   help="S_churn: EDM Algorithm 2 (--sampler edm_churn), diffusers' Euler (euler_churn_*, "
                        "--diffusers EulerDiscreteScheduler)")
    p.add_argument("--s-tmin", type=float, default=0.0, help="EDM Algorithm 2: churn only where sigma >= S_tmin")
    p.add_argument("--s-tmax", type=float, default=float("inf"), help="EDM Algorithm 2: churn only where sigma <= S_tmax")
    p.add_argument("--s-noise", type=float, default=1.0, help="EDM Algorithm 2: S_noise, scales the churn noise")
    p.add_argument("--diffusers", metavar="NAME", default=None,
                   help="check a real diffusers scheduler's own loop (DDIMScheduler, DDPMScheduler, ...)")
    p.add_argument("--scheduler-config", metavar="PATH.json", default=None, help="that scheduler's config")
    return p


HEADER_KEYS = ("dim", "sampler", "schedule", "steps", "samples", "target", "denoiser", "init", "n_train", "dtype", "seed")


def summary(result: dict) -> str:
    """The human-readable report after the header: checks table, effect sizes, discretization."""
    disc, eff = result["discretization"], result["effect_sizes"]
    lines = [report.table(result["checks"]), "",
             "effect sizes (measured vs predicted): " + ", ".join(f"{k} = {v:.3g}" for k, v in eff.items())]
    if disc:
        lines.append(f"discretization vs the continuous-time law: W2 = {disc['w2_to_continuous']:.4g}, "
                     f"variance ratio per eigen-direction in [{disc['variance_ratio_min']:.4f}, "
                     f"{disc['variance_ratio_max']:.4f}]")
    return "\n".join(lines)


def plot(path: str, result: dict, args) -> None:
    """Predicted, measured and continuous-time covariance spectra."""
    cfg = result["config"]
    curves = {"predicted (Result 3)": result["predicted"]["cov_eigenvalues"],
              "measured (Monte Carlo)": result["measured"]["cov_eigenvalues"]}
    if result["discretization"]:
        curves["continuous-time (Result 2)"] = result["discretization"]["continuous_eigenvalues"]
    report.plot_spectra(path, curves,
                        f"verify.linear: {cfg['sampler']}, {cfg['schedule']}, {cfg['steps']} steps, d = {cfg['dim']}, "
                        f"{cfg['samples']} samples, {cfg['denoiser']} denoiser")


def precheck(args) -> None:
    """Flags that only some denoisers use are refused elsewhere, not ignored."""
    if args.denoiser != "fitted" and args.copies != 64:
        raise ValueError("--copies is used by --denoiser fitted only")
    if args.denoiser != "trained" and args.iterations != 2000:
        raise ValueError("--iterations is used by --denoiser trained only")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--diffusers" in argv and {"--sampler", "--schedule", "--device"} & set(argv):
        print("error: --diffusers sets the sampler and the grid itself and runs on the CPU; "
              "drop --sampler/--schedule/--device", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
    with distributed.session(args):  # under torchrun: shard the samples over the processes
        return report.cli_main(args, Config, run, summary, plot=plot, precheck=precheck,
                               header=lambda cfg: header("verify.linear", cfg, HEADER_KEYS),
                               memory=lambda cfg: (arguments.affine_memory(cfg), "--dim, --samples or --steps"))


if __name__ == "__main__":
    sys.exit(main())

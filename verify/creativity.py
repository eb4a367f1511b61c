"""``python -m verify.creativity``: every architecture on one training set, side by side.

Draws a training set from a known Gaussian-mixture target, builds the unrestricted (memorizing),
linear and rank-r bottleneck denoisers on it, samples each with the same sampler, and prints copy
rate, normalized nearest-neighbour distance, log-likelihood under the true target, and whether each
architecture's theory holds: the memorizing one copies (every sample within the copy threshold of
a training point), the linear one generates the exact law of ``N(mu_hat, Sigma_hat)``'s flow, the
bottleneck one the rank-r law. The polynomial (random-feature) class has no closed-form law here:
its row is measured, not tested.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from numerics.bottleneck import RankDenoiser
from numerics.denoisers import WienerDenoiser
from numerics.memorization import EmpiricalDenoiser
from numerics.moments import empirical_moments
from numerics.polynomial import fit_random_features
from numerics.sampling import DTYPES, sample, start_draws
from numerics.schedules import SCHEDULES
from theory.bottleneck import rank_law
from theory.finite_step import check_sampler_grid
from theory.linear import TrainingSetLaw
from theory.linear_law import prior_start, wiener_law
from theory.memorization import EmpiricalDenoiser as MemorizingResult
from theory.step_stability import METHODS
from scipy import stats as scipy_stats

from verify import arguments, metrics, polynomial_stability, report, step_stability
from verify.affine import SamplingConfig, add_sampling_arguments, monte_carlo, probe_checks
from verify.check import Check
from verify.denoiser_checks import TheoryDenoiser
from verify.targets import mixture_model

NEGATIVE_CONTROLS = ("swap-predictions",)
FORMULA_RUN_SAMPLES = 200  # samples redrawn with Result 8's formula as the denoiser
FORMULA_RUN_RTOL = {"float64": 1e-8, "float32": 1e-3}  # round-off of two posterior means, amplified by the flow
PREDICTED_DRAWS = 20000  # draws of the exact law that estimate its copy rate
RANDOM_FEATURE_DEGREE = 3  # features (R u)^j, j = 1..3, m = 4 d projections, read-out on 16 noisy copies per point


@dataclass
class Config(SamplingConfig):
    dim: int = 64
    samples: int = 2000
    n_train: int = 200
    rank: int | None = None  # default min(8, dim)
    negative_control: str | None = None

    def __post_init__(self):
        """Refused before any work: each message names the flag."""
        if self.rank is not None and not 1 <= self.rank <= self.dim:
            raise ValueError(f"--rank must be in [1, --dim = {self.dim}], got {self.rank}")
        if self.n_train < 2:
            raise ValueError(f"--n-train must be >= 2 (copies are measured against the training spacing), "
                             f"got {self.n_train}")
        if self.steps < 2:
            raise ValueError("--steps must be >= 2: the memorization claim is a limit of fine steps down to "
                             "sigma_min; one step returns D(y; sigma_max), about the training mean")


def copies_check(x, train) -> Check:
    """The memorization prediction: every sample is a copy of a training point."""
    rate = metrics.creativity(x, train)["copy_rate"]
    return Check("copies", rate, None, rate == 1.0, "copy rate 1", f"{rate:.3f}",
                 f"normalized NN distance < {metrics.COPY_THRESHOLD:g}")


def formula_run_check(cfg, grid, train, x, start_law) -> Check:
    """Result 8's formula run through the same sampler from the same noise (theory-as-denoiser adapter).

    The first ``FORMULA_RUN_SAMPLES`` samples are redrawn with the theory's posterior-mean formula in
    place of the numerics' streaming Bayes denoiser; they must agree to round-off.
    """
    n = min(FORMULA_RUN_SAMPLES, len(x))
    formula = TheoryDenoiser(lambda y, sigma: MemorizingResult.denoise(y, train, sigma))
    x_formula = sample(formula, cfg.sampler, grid, *start_law, n, seed=cfg.seed, device="cpu",
                       dtype=torch.float64).numpy()
    spacing = metrics.training_spacing(train)
    worst = float(np.max(np.linalg.norm(x_formula - x[:n], axis=1)) / spacing)
    tolerance = FORMULA_RUN_RTOL[cfg.dtype]
    return Check("Result 8: formula run through the sampler", worst, None, worst <= tolerance, "same samples",
                 f"max distance {worst:.2e} x spacing ({n} samples)", f"<= {tolerance:g} x spacing")


def novelty_check(x, train, law, alpha: float, seed: int) -> Check:
    """Measured copy rate against the rate the exact Gaussian law predicts (binomial test, two-sided).

    The predicted rate is estimated from ``PREDICTED_DRAWS`` draws of the law itself: copies are rare
    but not impossible for a law on the span of a few training points.
    """
    rng = np.random.default_rng([seed, 12])
    draws = rng.multivariate_normal(law.mean, law.covariance(), PREDICTED_DRAWS, method="eigh")
    predicted = (metrics.creativity(draws, train)["copy_rate"] * PREDICTED_DRAWS + 1) / (PREDICTED_DRAWS + 2)
    copies = int(round(metrics.creativity(x, train)["copy_rate"] * len(x)))
    p_value = float(scipy_stats.binomtest(copies, len(x), predicted).pvalue)
    return Check("novelty (copy rate as predicted)", copies / len(x), p_value, p_value >= alpha,
                 f"copy rate {predicted:.4f}", f"{copies / len(x):.4f}", f"binomial p >= {alpha:g}")


def gaussian_prediction(cfg, grid, denoiser, law, start):
    """Probe and calibrated checks of an affine architecture against its exact law."""
    checks = probe_checks(denoiser, cfg.sampler, grid, start, law, cfg.device) if cfg.probe else []
    statistical, x = monte_carlo(denoiser, cfg, grid, start, law)
    return checks + statistical, x


def architectures(cfg, grid, train):
    """``(name, denoiser, law or None, expects copies)`` per architecture; ``None``: no prediction, measured only."""
    mean, cov = TrainingSetLaw.moments(train)
    features = fit_random_features(train, grid.sigma[grid.sigma > 0], RANDOM_FEATURE_DEGREE, 4 * cfg.dim,
                                   copies=16, generator=torch.Generator().manual_seed(cfg.seed), all_powers=True)
    return [("memorizing", EmpiricalDenoiser(train), None, True),
            ("linear", WienerDenoiser.from_training_set(train), wiener_law(cfg.sampler, grid, mean, cov, prior_start), False),
            (f"bottleneck (rank {cfg.rank})", RankDenoiser(*empirical_moments(train), cfg.rank, sigmas=grid.sigma),
             rank_law(cfg.sampler, grid, mean, cov, cfg.rank, prior_start), False),
            (f"polynomial (random features, k = {RANDOM_FEATURE_DEGREE})", features, None, None)]


def evaluate(cfg, grid, train, name, denoiser, law, copies, mean, cov):
    """Sample one architecture and check its prediction (swapped under the negative control)."""
    start = prior_start(grid, mean, cov)
    start_law = (start.mean, start.covariance())
    swap = cfg.negative_control == "swap-predictions"
    if copies is None:  # no closed-form prediction: sample and measure
        x = sample(denoiser, cfg.sampler, grid, *start_law, cfg.samples, seed=cfg.seed, device=cfg.device,
                   dtype=DTYPES[cfg.dtype], progress=not cfg.quiet).numpy()
        return [], x
    if copies != swap:  # claim: it memorizes
        x = sample(denoiser, cfg.sampler, grid, *start_law, cfg.samples, seed=cfg.seed, device=cfg.device,
                   dtype=DTYPES[cfg.dtype], progress=not cfg.quiet).numpy()
        checks = [copies_check(x, train)]
        return checks + ([formula_run_check(cfg, grid, train, x, start_law)] if copies else []), x
    if law is None:  # claim: the memorizing denoiser is the linear one
        law = wiener_law(cfg.sampler, grid, mean, cov, prior_start)
        cfg_no_probe = Config(**{**asdict(cfg), "probe": False})
        return gaussian_prediction(cfg_no_probe, grid, denoiser, law, start)
    checks, x = gaussian_prediction(cfg, grid, denoiser, law, start)
    return checks + [novelty_check(x, train, law, cfg.alpha, cfg.seed)], x


def step_report(cfg, grid, denoiser, train, start_law) -> str:
    """Result 18's prediction (flow vs step escapes) against the sampler's own starts; '' where it has none."""
    if not hasattr(denoiser, "R") or cfg.sampler not in METHODS or np.any(grid.s != 1):
        return ""
    starts = start_draws(*start_law, cfg.samples, seed=cfg.seed, device=cfg.device, dtype=DTYPES[cfg.dtype])
    scale = float(np.sqrt(np.trace(np.cov(train.T))))
    return step_stability.summary(step_stability.step_prediction(denoiser, cfg.sampler, grid, starts, scale),
                                  cfg.sampler)


def run(cfg: Config) -> dict:
    """Everything ``python -m verify.creativity`` does, as a report dictionary."""
    started = time.perf_counter()
    cfg = Config(**{**asdict(cfg), "rank": min(8, cfg.dim) if cfg.rank is None else cfg.rank})
    mixture = mixture_model(cfg.dim, cfg.seed)
    train = mixture.sample(cfg.n_train, np.random.default_rng([cfg.seed, 2]))
    grid = SCHEDULES[cfg.schedule]().grid(cfg.steps)
    check_sampler_grid(cfg.sampler, grid)
    mean, cov = TrainingSetLaw.moments(train)
    rows, samples = [], {}
    for name, denoiser, law, copies in architectures(cfg, grid, train):
        try:
            checks, x = evaluate(cfg, grid, train, name, denoiser, law, copies, mean, cov)
        except FloatingPointError as error:  # a polynomial field can blow up: report, never NaN; say if Result 17
            start = prior_start(grid, mean, cov)  # predicts it (fresh draws of the same start law)
            z = np.random.default_rng([cfg.seed, 17]).multivariate_normal(start.mean, start.covariance(), cfg.samples)
            why = polynomial_stability.feature_prediction(denoiser, grid.sigma, z) if hasattr(denoiser, "R") else ""
            rows.append({"architecture": name, "diverged": str(error), "stability": why,
                         "step stability": step_report(cfg, grid, denoiser, train, (start.mean, start.covariance())),
                         "checks": []})
            continue
        prediction = {True: "copies training points", False: "exact Gaussian law", None: "none (measured)"}[copies]
        rows.append({"architecture": name, **metrics.creativity(x, train, mixture.log_density),
                     "prediction": prediction, "checks": checks,
                     **({"passed": report.verdict(checks)} if checks else {})})
        samples[name] = x
    fresh = mixture.sample(cfg.samples, np.random.default_rng([cfg.seed, 4]))
    reference = {"architecture": "fresh target draws", **metrics.creativity(fresh, train, mixture.log_density)}
    return {"passed": all(r.get("passed", True) for r in rows), "rows": rows, "reference": reference,
            "config": asdict(cfg), "samples": samples, "train": train,
            "seconds": time.perf_counter() - started}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify.creativity", description=__doc__.splitlines()[0])
    add_sampling_arguments(p, dim=64, steps=32, samples=2000, target=False)  # target: a known mixture
    p.add_argument("--n-train", type=report.positive_int_arg, default=200, help="training-set size n")
    p.add_argument("--rank", type=report.positive_int_arg, default=None, help="bottleneck width r (default min(8, d))")
    p.add_argument("--negative-control", choices=NEGATIVE_CONTROLS, default=None,
                   help="claim the memorizing denoiser is creative and the others copy: the run must FAIL")
    return p


def header(cfg) -> str:
    return (f"verify.creativity: dim={cfg.dim} n_train={cfg.n_train} rank={cfg.rank or min(8, cfg.dim)} "
            f"sampler={cfg.sampler} schedule={cfg.schedule} steps={cfg.steps} samples={cfg.samples} seed={cfg.seed}; "
            f"NN distance normalized by the median training spacing; copy: < {metrics.COPY_THRESHOLD:g}\n"
            f"family-wise false-alarm rate of the Monte-Carlo checks, per architecture: {cfg.alpha:g}")


def summary(result: dict) -> str:
    head = ("architecture", "copy rate", "NN dist (median)", "log-lik (true p)", "theory prediction", "verdict")
    rows = [head]
    for r in result["rows"] + [result["reference"]]:
        if "diverged" in r:
            rows.append((r["architecture"], "-", "-", "-", "sampler diverged", "measured"))
            continue
        verdict = ("PASS" if r["passed"] else "FAIL") if "passed" in r else ("measured" if "prediction" in r else "reference")
        rows.append((r["architecture"], f"{r['copy_rate']:.3f}", f"{r['nn_distance_median']:.3g}",
                     f"{r['log_likelihood']:.4g}", r.get("prediction", "-"), verdict))
    widths = [max(len(row[k]) for row in rows) for k in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    for r in result["rows"]:
        if r["checks"]:
            lines += ["", f"{r['architecture']}:", report.table(r["checks"])]
        if r.get("stability"):
            lines.append(f"{r['architecture']}: sampler diverged; {r['stability']}")
        if r.get("step stability"):
            lines.append(f"{r['architecture']}: {r['step stability']}")
        failed = [f"{c.name} ({c.measured})" for c in r["checks"] if not c.passed]
        if failed:
            lines.append(f"{r['architecture']}: failed " + "; ".join(failed))
    return "\n".join(lines)


def plot(path: str, result: dict) -> None:
    """One scatter per architecture (first two coordinates): training set and generated samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["samples"])
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), sharex=True, sharey=True)
    train = result["train"]
    for ax, name in zip(np.atleast_1d(axes), names):
        x = result["samples"][name]
        ax.scatter(x[:, 0], x[:, 1], s=20, alpha=0.5, facecolors="none", edgecolors="tab:blue", label="generated")
        ax.scatter(train[:, 0], train[:, 1], s=12, marker="x", color="k", label="training set")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("x[0]")
    np.atleast_1d(axes)[0].set_ylabel("x[1]")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    cfg = result["config"]
    fig.suptitle(f"verify.creativity: d = {cfg['dim']}, n = {cfg['n_train']} training points, {cfg['sampler']}, "
                 f"{cfg['steps']} steps (first two coordinates)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    return report.cli_main(parser().parse_args(argv), Config, run, summary, plot=lambda path, result, args: plot(path, result),
                           header=header, json_exclude=("samples", "train"),
                           memory=lambda cfg: (arguments.affine_memory(cfg) + 8.0 * cfg.samples * cfg.n_train * 4,
                                               "--dim, --samples, --n-train or --steps"))


if __name__ == "__main__":
    sys.exit(main())

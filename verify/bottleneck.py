"""``python -m verify.bottleneck``: bottleneck denoisers' generated laws, theory against Monte Carlo.

``--mode linear`` (default): the rank-r affine optimum (Results 5–6), exact probe and calibrated
statistics as in ``verify.linear``, plus the collapse of the discarded directions and the kept
subspace. ``--mode decoder``: a fixed linear encoder with the exact mixture conditional-mean decoder
(Result 7) in low dimension; with ``--n-train`` the target is a training set and the flow must copy it.
``--mode trained``: the 2-D toy network ``2 -> 64 -> 1 -> 64 -> 2`` trained per noise level.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from numerics.bottleneck import EncoderDecoderDenoiser, RankDenoiser
from numerics.schedules import SCHEDULES
from theory.bottleneck import RankRestrictedDenoiser, masked_law, rank_law
from theory.finite_step import check_sampler_grid
from theory.linear_law import STARTS, eigen_decomposition
from theory.mixture import GaussianMixture
from verify import arguments, regression, report, stats
from verify.denoiser_checks import fit_check, formula_check
from verify.affine import SamplingConfig, add_sampling_arguments, header, law_report, monte_carlo, probe_checks
from verify.check import Check
from verify.targets import make_target, mixture_model, random_encoder
from verify.trained_bottleneck import plot as plot_trained
from verify.trained_bottleneck import run_trained

MODES = {"linear": dict(dim=64, rank=8, steps=32, samples=10000, sampler="heun", init="prior"),
         "decoder": dict(dim=3, rank=1, steps=64, samples=4000, sampler="heun", init="marginal"),
         "trained": dict(dim=2, rank=1, steps=24, samples=2000, sampler="euler", init="prior")}
NEGATIVE_CONTROLS = {"linear": ("wrong-rank", "wrong-subspace"), "decoder": ("no-regression", "wrong-encoder"),
                     "trained": ("target-samples",)}
SUBSPACE_TOL = 1e-6  # sine of the largest principal angle when discarded directions collapse exactly
DISCARDED_RTOL = {"float64": 1e-20, "float32": 1e-10}  # squared round-off: ~1e-25 (f64), ~4e-16 (f32) measured


@dataclass
class Config(SamplingConfig):
    mode: str = "linear"
    rank: int = 8
    n_train: int | None = None
    iterations: int = 1500
    negative_control: str | None = None

    def __post_init__(self):
        """Every combination of flags is checked here, before any work."""
        super().__post_init__()
        if self.negative_control is not None and self.negative_control not in NEGATIVE_CONTROLS[self.mode]:
            raise ValueError(f"negative control {self.negative_control!r} does not apply to mode {self.mode!r}; "
                             f"allowed: {', '.join(NEGATIVE_CONTROLS[self.mode]) or 'none'}")
        if not 1 <= self.rank <= self.dim:
            raise ValueError(f"rank must be in [1, dim = {self.dim}], got {self.rank}")
        if self.negative_control == "wrong-subspace" and self.rank == self.dim:
            raise ValueError("negative control 'wrong-subspace' needs rank < dim (at rank = dim every subspace is the same)")
        if self.mode == "decoder" and self.dtype != "float64":
            raise ValueError("decoder mode runs in float64 (Result 7's exact decoder): pass --dtype float64")
        if self.mode == "decoder" and self.n_train is not None and self.n_train < 2:
            raise ValueError(f"--n-train must be >= 2 in --mode decoder (copies are measured against the spacing "
                             f"of the training points), got {self.n_train}")
        if self.mode == "trained" and self.rank != 1:
            raise ValueError(f"trained mode checks that samples lie on the decoder's curve: rank must be 1, got {self.rank}")


def wrong_keep(cfg: Config, eigenvalues) -> np.ndarray:
    """Kept-direction mask of a deliberately wrong prediction: one rank off, or the bottom-r directions."""
    d = len(eigenvalues)
    if cfg.negative_control == "wrong-rank":
        rank = cfg.rank - 1 if cfg.rank > 1 else cfg.rank + 1
        return RankRestrictedDenoiser.cut(eigenvalues, rank).keep
    keep = np.zeros(d, dtype=bool)
    keep[:cfg.rank] = True  # bottom-r instead of top-r
    return keep


def subspace_checks(x, predicted, cut_keep, U, dtype: str = "float64") -> list[Check]:
    """Discarded directions: measured variance vs predicted; kept subspace: principal angle (when exact)."""
    discarded = U[:, ~cut_keep]
    if discarded.shape[1] == 0:
        return []
    C = predicted.covariance()
    scale = max(np.abs(C).max(), 1e-300)
    if predicted.basis is None or np.any(predicted.cov[~cut_keep] != 0):
        return []  # not exactly collapsed (stochastic last step, sigma_end > 0): the Gaussian checks cover it
    measured_var = np.max(np.var(x @ discarded, axis=0))
    tol = DISCARDED_RTOL[dtype]
    S = np.cov(x.T)
    top = np.linalg.eigh(S)[1][:, -int(cut_keep.sum()):]
    sine = float(np.linalg.norm(discarded.T @ top, 2))
    return [Check("discarded-direction variance", measured_var / scale, None, measured_var <= tol * scale,
                  "0", f"{measured_var / scale:.2e}", f"<= {tol:g} x max|C| ({dtype} round-off)"),
            Check("kept subspace = top-r", sine, None, sine <= SUBSPACE_TOL, "0",
                  f"sin(angle) {sine:.2e}", f"<= {SUBSPACE_TOL:g}")]


def top_subspace_check(U, keep, cov) -> Check:
    """Result 5's kept directions against the top-r eigenvectors of the covariance, computed here by eigh."""
    values, vectors = np.linalg.eigh(cov)
    rank = int(keep.sum())
    if rank == len(keep):
        return Check("Result 5: kept = top-r eigenvectors (eigh)", 0.0, None, True, "0", "rank = d: all kept", "-")
    sine = float(np.linalg.norm(U[:, ~keep].T @ vectors[:, -rank:], 2))
    return Check("Result 5: kept = top-r eigenvectors (eigh)", sine, None, sine <= SUBSPACE_TOL, "0",
                 f"sin(angle) {sine:.2e}", f"<= {SUBSPACE_TOL:g}")


def rank_formula_checks(cfg: Config, target, grid, denoiser, alpha: float) -> list[Check]:
    """Result 5's formula against reduced-rank regression (numerics) and a reduced-rank fit on noisy samples."""
    levels = grid.sigma[grid.sigma > 0]
    result = RankRestrictedDenoiser()
    formula = lambda sigma: result.affine(target.mean, target.cov, sigma, cfg.rank)  # noqa: E731
    return [formula_check("Result 5: formula = reduced-rank regression", formula, denoiser.affine, levels),
            fit_check("Result 5: formula vs reduced-rank least-squares fit", formula, target.sample, levels,
                      alpha=alpha, seed=cfg.seed, rank=cfg.rank)]


def run_linear(cfg: Config) -> dict:
    """Rank-r affine optimum on a seeded target: exact law, probe, statistics, subspace checks."""
    target = make_target(cfg.target, cfg.dim, cfg.seed)
    grid = SCHEDULES[cfg.schedule]().grid(cfg.steps)
    check_sampler_grid(cfg.sampler, grid)
    _, eigenvalues, U = eigen_decomposition(target.mean, target.cov)  # the theory's eigenbasis
    cut = RankRestrictedDenoiser.cut(eigenvalues, cfg.rank)
    if not cut.unique:
        raise ValueError(f"rank-{cfg.rank} optimum is not unique: eigenvalues {cut.tied} tie at the cut")
    denoiser = RankDenoiser(target.mean, target.cov, cfg.rank, sigmas=grid.sigma)  # reduced-rank regression
    start = STARTS[cfg.init](grid, target.mean, target.cov)
    predicted = rank_law(cfg.sampler, grid, target.mean, target.cov, cfg.rank, STARTS[cfg.init])
    keep = cut.keep
    if cfg.negative_control is not None:
        keep = wrong_keep(cfg, eigenvalues)
        predicted = masked_law(cfg.sampler, grid, target.mean, target.cov, keep, STARTS[cfg.init])
    tests = len(stats.STOCHASTIC_TESTS) + 1  # the Gaussian-law tests and the reduced-rank fit test
    checks = rank_formula_checks(cfg, target, grid, denoiser, cfg.alpha / tests) + [top_subspace_check(U, keep, target.cov)]
    if cfg.probe:
        checks += probe_checks(denoiser, cfg.sampler, grid, start, predicted, cfg.device)
    statistical, x = monte_carlo(denoiser, cfg, grid, start, predicted, alpha=cfg.alpha * (tests - 1) / tests)
    checks += statistical + subspace_checks(x, predicted, keep, U, cfg.dtype)
    return {"checks": checks, **law_report(x, predicted), "cut_unique": cut.unique}


def decoder_setup(cfg: Config):
    """The mixture target (or a training set drawn from it) and the encoder."""
    mixture = mixture_model(cfg.dim, cfg.seed)
    train = None
    if cfg.n_train is not None:
        train = mixture.sample(cfg.n_train, np.random.default_rng([cfg.seed, 5]))
        mixture = GaussianMixture.training_set(train)
    return mixture, train, random_encoder(cfg.dim, cfg.rank, cfg.seed)


def run_decoder(cfg: Config) -> dict:
    """Fixed encoder + exact decoder from the true marginal (or the prior): residual, projected law, or memorization."""
    mixture, train, W = decoder_setup(cfg)
    grid = SCHEDULES[cfg.schedule]().grid(cfg.steps)
    check_sampler_grid(cfg.sampler, grid)
    decoder = EncoderDecoderDenoiser(mixture.weights, mixture.means, mixture.covs, W)  # Bayes' rule, numerics
    x = regression.run_from_marginal(decoder, cfg.sampler, grid, mixture, cfg.samples, cfg.seed,
                                     prior=cfg.init == "prior")
    if train is not None:
        return {"checks": regression.memorization_checks(x, train, cfg.alpha), "samples": x, "train": train}
    W_claimed = random_encoder(cfg.dim, cfg.rank, cfg.seed + 1) if cfg.negative_control == "wrong-encoder" else W
    mapping = (regression.projection_map if cfg.negative_control == "no-regression"
               else regression.regression_map)(mixture, W_claimed)
    scale = np.sqrt(np.trace(mixture.moments()[1]))
    checks = [regression.residual_check(x, W_claimed, mapping, scale),
              regression.projected_law_check(x, W_claimed, mixture, cfg.alpha)]
    codes = x @ W
    u = np.linspace(codes.min(axis=0), codes.max(axis=0), 400) if W.shape[1] == 1 else None
    return {"checks": checks, "samples": x, **({"curve": mapping(u)} if u is not None else {})}


RUNNERS = {"linear": run_linear, "decoder": run_decoder, "trained": run_trained}


def run(cfg: Config) -> dict:
    """Everything ``python -m verify.bottleneck`` does, as a report dictionary."""
    started = time.perf_counter()
    result = RUNNERS[cfg.mode](cfg)
    return {"passed": report.verdict(result["checks"]), "config": asdict(cfg), **result,
            "seconds": time.perf_counter() - started}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify.bottleneck", description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=sorted(RUNNERS), default="linear")
    add_sampling_arguments(p, dim=None, steps=None, samples=None, sampler=None, init=None)
    p.add_argument("--rank", type=report.positive_int_arg, default=None, help="bottleneck width r")
    p.add_argument("--n-train", type=report.positive_int_arg, default=None,
                   help="decoder mode: the target is a training set of n points (the flow must copy them)")
    p.add_argument("--iterations", type=report.positive_int_arg, default=1500, help="Adam steps (trained)")
    p.add_argument("--negative-control", choices=sorted({c for cs in NEGATIVE_CONTROLS.values() for c in cs}),
                   default=None, help="replace the prediction by a deliberately wrong one; the run must FAIL")
    return p


HEADER_KEYS = ("mode", "dim", "rank", "sampler", "schedule", "steps", "samples", "n_train", "init", "dtype", "seed")
UNUSED = {"linear": ("n_train", "iterations"),                 # flags a mode does not read: refused, not ignored
          "decoder": ("iterations", "target", "probe", "device", "dtype"),
          "trained": ("target", "probe", "device", "dtype", "init", "alpha")}


def summary(result: dict) -> str:
    lines = [report.table(result["checks"]), ""]
    for key, value in result.get("measurements", {}).items():
        lines.append(f"measured (not tested): {key} = {value:.4g}")
    if "effect_sizes" in result:
        lines.append("effect sizes (measured vs predicted): "
                     + ", ".join(f"{k} = {v:.3g}" for k, v in result["effect_sizes"].items()))
    return "\n".join(lines)


def plot_decoder(path: str, result: dict) -> None:
    """Decoder mode: generated samples (first two coordinates) over the predicted regression image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, x = result["config"], result["samples"]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.scatter(x[:, 0], x[:, 1], s=4, alpha=0.4, label="generated")
    if "curve" in result:
        ax.plot(result["curve"][:, 0], result["curve"][:, 1], "k-", lw=1, label="predicted image E[x0 | W^T x0 = u]")
    if result.get("train") is not None:
        ax.scatter(result["train"][:, 0], result["train"][:, 1], marker="x", color="k", s=20, label="training set")
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")
    ax.set_title(f"verify.bottleneck decoder: d = {cfg['dim']}, r = {cfg['rank']}, {cfg['sampler']}, "
                 f"{cfg['steps']} steps, init {cfg['init']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(path: str, result: dict, args) -> None:
    """The trained toy's scatter, the decoder's samples over its curve, or predicted vs measured spectra."""
    cfg = result["config"]
    if cfg["mode"] == "trained":
        plot_trained(path, result)
    elif cfg["mode"] == "decoder":
        plot_decoder(path, result)
    else:
        report.plot_spectra(path, {"predicted (Result 6)": result["predicted"]["cov_eigenvalues"],
                                   "measured (Monte Carlo)": result["measured"]["cov_eigenvalues"]},
                            f"verify.bottleneck: rank {cfg['rank']} of d = {cfg['dim']}, {cfg['sampler']}, "
                            f"{cfg['schedule']}, {cfg['steps']} steps, {cfg['samples']} samples")


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    return report.cli_main(args, Config, run, summary, plot=plot, defaults=MODES[args.mode],
                           header=lambda cfg: header("verify.bottleneck", cfg, HEADER_KEYS),
                           precheck=lambda a: arguments.unused_flags(a, p, set(vars(a)) - set(UNUSED[a.mode]),
                                                                     f"in --mode {a.mode}"),
                           memory=lambda cfg: (arguments.affine_memory(cfg), "--dim, --samples or --steps"),
                           json_exclude=("samples", "target_samples", "rank_r_samples", "encoder_law_samples", "curve",
                                         "train"))


if __name__ == "__main__":
    sys.exit(main())

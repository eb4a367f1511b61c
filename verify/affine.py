"""Checking an affine sampler against its exact Gaussian law: exact probe, then Monte-Carlo statistics.

Shared by ``verify.linear`` and ``verify.bottleneck`` (and any denoiser class that is affine).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from numerics.samplers import SAMPLERS, STOCHASTIC
from numerics.sampling import DTYPES, affine_probe, sample
from numerics.schedules import SCHEDULES
from theory.finite_step import GaussianLaw, check_sampler_grid, probe_law
from theory.linear_law import STARTS
from verify import arguments, distributed, report, stats
from verify.check import Check
from verify.targets import TARGETS

PROBE_RTOL = 1e-10  # float64 round-off over a few hundred affine steps


@dataclass
class SamplingConfig:
    """Settings every affine verification shares (the flags of ``add_sampling_arguments``)."""

    dim: int = 64
    sampler: str = "heun"
    schedule: str = "ve"
    steps: int = 32
    samples: int = 10000
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float64"
    target: str = "mixture"
    init: str = "prior"
    alpha: float = 1e-3
    probe: bool = True
    quiet: bool = False

    def __post_init__(self):
        """The sampler must accept the schedule (checked before any work)."""
        if self.sampler in SAMPLERS and self.schedule in SCHEDULES and isinstance(self.steps, int):
            check_sampler_grid(self.sampler, SCHEDULES[self.schedule]().grid(self.steps))


def probe_checks(denoiser, sampler, grid, start: GaussianLaw, predicted: GaussianLaw, device="cpu",
                 label: str = "exact probe") -> list[Check]:
    """Noise-free probe of the affine sampler map, compared with the predicted law to round-off."""
    A, c, N = affine_probe(denoiser, sampler, grid, len(start.mean), device=device,
                           stochastic=sampler in STOCHASTIC)
    probed = probe_law(A, c, N, start)
    C = predicted.covariance()
    scale = max(np.max(np.abs(C)), 1e-300)
    mean_err = np.max(np.abs(probed.mean - predicted.mean)) / np.sqrt(scale)
    cov_err = np.max(np.abs(probed.cov - C)) / scale
    return [Check(f"{label}: mean", mean_err, None, bool(mean_err <= PROBE_RTOL), "0",
                  f"{mean_err:.2e}", f"<= {PROBE_RTOL:g} x sqrt(max|C|)"),
            Check(f"{label}: covariance", cov_err, None, bool(cov_err <= PROBE_RTOL), "0",
                  f"{cov_err:.2e}", f"<= {PROBE_RTOL:g} x max|C|")]


def monte_carlo(denoiser, cfg, grid, start: GaussianLaw, predicted: GaussianLaw,
                alpha: float | None = None) -> tuple[list[Check], np.ndarray]:
    """Sample ``cfg.samples`` outputs and run the calibrated Gaussian-law checks against ``predicted``.

    ``alpha``: the share of the family-wise level these tests get (default all of ``cfg.alpha``).
    Under ``torchrun`` each rank samples its own index range and the moments of all are merged.
    """
    C = predicted.covariance()
    if distributed.active():  # under torchrun: this rank's samples, merged into the moments of all
        x = distributed.merged_moments(denoiser, cfg, grid, start, predicted.mean, C)
    else:
        x = sample(denoiser, cfg.sampler, grid, start.mean, start.covariance(), cfg.samples, seed=cfg.seed,
                   device=cfg.device, dtype=DTYPES[cfg.dtype], progress=not cfg.quiet).numpy()
    null_atol = (1e-6 if cfg.dtype == "float64" else 1e-2) * np.sqrt(max(np.abs(C).max(), 1e-300))
    alpha = cfg.alpha if alpha is None else alpha
    return stats.gaussian_checks(x, predicted.mean, C, alpha=alpha, null_atol=null_atol), x


def law_report(x: np.ndarray, predicted: GaussianLaw) -> dict:
    """Predicted and measured means and covariance spectra, and the effect sizes."""
    C = predicted.covariance()
    moments = x if isinstance(x, stats.SampleMoments) else stats.SampleMoments.of(x, predicted.mean, C)
    return {"predicted": {"mean": predicted.mean, "cov_eigenvalues": predicted.eigenvalues()},
            "measured": {"mean": moments.sample_mean(predicted.mean),
                         "cov_eigenvalues": np.linalg.eigvalsh(moments.sample_cov())},
            "effect_sizes": stats.effect_sizes(moments, predicted.mean, C)}


def add_sampling_arguments(p, *, dim=64, steps=32, samples=10000, sampler="heun", target=True, init="prior") -> None:
    """The flags every affine verification shares."""
    p.add_argument("--dim", type=report.positive_int_arg, default=dim, help="dimension d")
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default=sampler)
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="ve")
    p.add_argument("--steps", type=report.positive_int_arg, default=steps, help="sampler steps")
    p.add_argument("--samples", type=report.positive_int_arg, default=samples, help="Monte-Carlo samples")
    p.add_argument("--seed", type=arguments.seed_arg, default=0, help="random seed, an integer >= 0")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when visible)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float64")
    if target:  # the target family and the start law; a CLI with its own target leaves them out
        p.add_argument("--target", choices=TARGETS, default="mixture")
        p.add_argument("--init", choices=sorted(STARTS), default=init,
                       help="standard prior, or the Gaussian marginal N(s mu, s^2 (Sigma + sigma^2 I)) at t_0 (decoder mode: the true marginal p_sigma)")
    p.add_argument("--alpha", type=report.alpha_arg, default=1e-3, help="family-wise false-alarm rate")
    p.add_argument("--no-probe", dest="probe", action="store_false", help="skip the exact noise-free probe")
    add_output_arguments(p, "predicted vs measured covariance spectra")


def add_output_arguments(p, figure: str) -> None:
    """``--json``, ``--plot`` and ``--quiet``: what every CLI writes besides its table."""
    p.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    p.add_argument("--plot", metavar="PATH", help=f"write a figure ({figure}); png, pdf, svg, ...")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def header(name: str, cfg, keys) -> str:
    """First lines of a report: the configuration and the family-wise false-alarm rate."""
    cfg = cfg if isinstance(cfg, dict) else asdict(cfg)
    settings = " ".join(f"{k}={cfg[k]}" for k in keys)
    return f"{name}: {settings}\nfamily-wise false-alarm rate of the Monte-Carlo checks: {cfg['alpha']:g}\n"

"""``python -m verify.local``: local and translation-equivariant denoisers, theory against Monte Carlo.

Targets: scikit-learn's 8x8 digits (pixel values / 16) and a generated stationary Gaussian texture.
Blocks: the optimal patch-linear denoiser on the digits (Result L1, full-matrix law); the optimal
circular equivariant (FFT) denoiser on the digits (Result L2, law per Fourier mode: a stationary
Gaussian with the digits' shift-averaged spectrum); the optimal 3x3 kernel on the texture with
circular padding (stationary output) and zero padding (not stationary); the LS/ELS machines and the
global memorizer on a digit training set (Result L3). Each affine block gets an exact noise-free
probe and calibrated Gaussian-law checks.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from numerics.local import BOUNDARIES
from numerics.local_equivariant import FourierWienerDenoiser, KernelDenoiser
from numerics.local import PatchLinearDenoiser
from numerics.progress import bar
from numerics.samplers import SAMPLERS
from numerics.sampling import DTYPES
from numerics.schedules import SCHEDULES
from theory.finite_step import check_sampler_grid
from theory.linear import TrainingSetLaw
from theory.linear_law import prior_start, wiener_law
from theory.local import patch_law
from theory.local_fourier import equivariant_law, padded_kernel_law
from verify import arguments, report
from verify.affine import add_output_arguments, header, monte_carlo, probe_checks
from verify.local_mosaic import mosaic_checks
from verify.local_polynomial import polynomial_checks
from verify.local_stationarity import stationarity_check, texture

NEGATIVE_CONTROLS = ("global-wiener", "circular-for-zeros", "memorizer-novelty")
PIXEL_VARIANCE_FLOOR = 1e-6  # 3 border pixels are 0 in all 1797 digits: keep the laws' spectra off the null-space check's edge
HEADER_KEYS = ("sampler", "schedule", "steps", "samples", "patch", "boundary", "texture_size", "n_train", "degree",
               "dtype", "seed")
STATISTICAL_FAMILIES = 6  # four Gaussian-law families, two stationarity tests; mosaic power checks apart


@dataclass
class Config:
    sampler: str = "heun"
    schedule: str = "ve"
    steps: int = 32
    samples: int = 4000
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float64"
    alpha: float = 1e-3
    probe: bool = True
    patch: int = 3
    boundary: str = "zeros"
    texture_size: int = 12
    n_train: int = 50
    mosaic_samples: int = 16
    mosaic_steps: int = 16
    degree: int = 2
    negative_control: str | None = None
    quiet: bool = False

    def __post_init__(self):
        validate(self)                                   # bad input is refused before any work
        check_sampler_grid(self.sampler, SCHEDULES[self.schedule]().grid(self.steps))

    @property
    def shape(self):
        return (1, 8, 8)


def digits() -> np.ndarray:
    """The 1797 scikit-learn digits as ``(n, 64)`` rows in [0, 1]."""
    from sklearn.datasets import load_digits

    return load_digits().data / 16.0


def affine_block(name, cfg, grid, denoiser, predicted, dim, block: int):
    """Probe and Monte-Carlo checks of one affine denoiser against its predicted law, rows prefixed by ``name``.

    Block ``k`` draws its noise with seed ``seed + k``, so the blocks' samples are independent.
    """
    start = prior_start(grid, np.zeros(dim), np.eye(dim))
    checks = probe_checks(denoiser, cfg.sampler, grid, start, predicted, cfg.device) if cfg.probe else []
    statistical, x = monte_carlo(denoiser, replace(cfg, seed=cfg.seed + block), grid, start, predicted,
                                 alpha=cfg.alpha / STATISTICAL_FAMILIES)
    return [replace(c, name=f"{name}: {c.name}") for c in checks + statistical], x


def linear_blocks(cfg, grid, mean, cov):
    """Results L1 and L2 on the digits: patch-linear (full-matrix law) and circular FFT (per-mode law)."""
    shape, start = cfg.shape, prior_start(grid, np.zeros(64), np.eye(64))
    patch = PatchLinearDenoiser(mean, cov, shape, cfg.patch, cfg.boundary)
    predicted = patch_law(cfg.sampler, grid, mean, cov, shape, cfg.patch, cfg.boundary, start)
    if cfg.negative_control == "global-wiener":
        predicted = wiener_law(cfg.sampler, grid, mean, cov, prior_start)
    rows, x_patch = affine_block(f"patch {cfg.patch}x{cfg.patch} {cfg.boundary}", cfg, grid, patch, predicted, 64, 0)
    fourier = equivariant_law(cfg.sampler, grid, mean, cov, shape).gaussian()
    more, x_fft = affine_block("circular FFT", cfg, grid, FourierWienerDenoiser(mean, cov, shape), fourier, 64, 1)
    return rows + more, {"patch-linear": x_patch, "circular FFT": x_fft}


def texture_blocks(cfg, grid):
    """Result L2 with a 3x3 kernel on the texture: circular (stationary law) and zero padding (dense law)."""
    shape = (1, cfg.texture_size, cfg.texture_size)
    mean, cov = texture(cfg.texture_size)
    d = len(mean)
    start = prior_start(grid, np.zeros(d), np.eye(d))
    circular_law = equivariant_law(cfg.sampler, grid, mean, cov, shape, patch=3).gaussian()
    rows, x_circ = affine_block("kernel circular", cfg, grid, KernelDenoiser(mean, cov, shape, 3, "circular"),
                                circular_law, d, 2)
    zeros_law = padded_kernel_law(cfg.sampler, grid, mean, cov, shape, 3, "zeros", start)
    claimed = circular_law if cfg.negative_control == "circular-for-zeros" else zeros_law
    more, x_zero = affine_block("kernel zeros", cfg, grid, KernelDenoiser(mean, cov, shape, 3, "zeros"), claimed, d, 3)
    level = cfg.alpha / STATISTICAL_FAMILIES
    rows += more + [stationarity_check("kernel circular", x_circ, circular_law, shape, level, stationary=True),
                    stationarity_check("kernel zeros", x_zero, claimed, shape, level, stationary=False)]
    return rows, {"texture circular": x_circ, "texture zeros": x_zero}


def validate(cfg: Config) -> None:
    """Bad input, before any work: each flag against what the blocks need."""
    largest = max(64, cfg.texture_size**2)
    if cfg.samples < largest + 2:
        raise ValueError(f"samples must be >= {largest + 2} (the covariance LRT needs d + 2 for d = {largest}), "
                         f"got {cfg.samples}")
    if cfg.mosaic_samples > cfg.samples:
        raise ValueError(f"mosaic_samples must be <= samples (the Gaussian baseline), got {cfg.mosaic_samples} > "
                         f"{cfg.samples}")
    if cfg.mosaic_steps < 2:
        raise ValueError(f"mosaic_steps must be >= 2 (the last step is D at sigma_min), got {cfg.mosaic_steps}")
    if not 2 <= cfg.n_train <= 1797:
        raise ValueError(f"n_train must be in 2..1797 (scikit-learn ships 1797 digits), got {cfg.n_train}")
    if cfg.patch % 2 == 0 or cfg.patch > 8:
        raise ValueError(f"patch must be odd and at most 8 (the digits are 8 x 8), got {cfg.patch}")
    if math.comb(2 * cfg.mosaic_samples, cfg.mosaic_samples) * cfg.alpha <= 1:
        raise ValueError(f"mosaic_samples {cfg.mosaic_samples} is too few: the image-level Fisher test cannot reach "
                         f"p < alpha = {cfg.alpha:g} even for 0 copies against {cfg.mosaic_samples} (use >= 8 at 1e-3)")
    if cfg.degree > 3:
        raise ValueError(f"degree must be <= 3 (the 3x3 patch has {math.comb(9 + cfg.degree, 9)} monomials at degree "
                         f"{cfg.degree}; 220 at 3), got {cfg.degree}")
    if cfg.texture_size < 3:
        raise ValueError(f"texture_size must be >= 3 (a 3 x 3 kernel), got {cfg.texture_size}")


def run(cfg: Config) -> dict:
    """Everything ``python -m verify.local`` does, as a report dictionary."""
    started = time.perf_counter()
    grid = SCHEDULES[cfg.schedule]().grid(cfg.steps)
    data = digits()
    mean, cov = TrainingSetLaw.moments(data)
    cov = cov + PIXEL_VARIANCE_FLOOR * np.eye(len(mean))
    progress = bar(4, "verify.local blocks", enabled=not cfg.quiet)        # digits, texture, LS/ELS, polynomial
    checks, images = linear_blocks(cfg, grid, mean, cov)
    progress.update()
    more, texture_images = texture_blocks(cfg, grid)
    progress.update()
    train = data[np.random.default_rng([cfg.seed, 3]).choice(len(data), cfg.n_train, replace=False)]
    mosaic, found = mosaic_checks(cfg, train, images["patch-linear"][:cfg.mosaic_samples], cfg.alpha)
    progress.update()
    checks += more + mosaic + polynomial_checks(cfg, train, images["patch-linear"][:4], cfg.seed)
    progress.close()
    return {"passed": report.verdict(checks), "checks": checks, "config": asdict(cfg),
            "mosaic_fractions": found["fractions"], "seconds": time.perf_counter() - started,
            "images": {"training": train[:8], **{k: v[:8] for k, v in {**images, **texture_images,
                                                                        **found["images"]}.items()}}}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify.local", description=__doc__.splitlines()[0])
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default="heun")
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="ve")
    p.add_argument("--steps", type=report.positive_int_arg, default=32, help="sampler steps (affine blocks)")
    p.add_argument("--samples", type=report.positive_int_arg, default=4000, help="Monte-Carlo samples per block")
    p.add_argument("--seed", type=arguments.seed_arg, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float64")
    p.add_argument("--alpha", type=report.alpha_arg, default=1e-3, help="family-wise false-alarm rate")
    p.add_argument("--no-probe", dest="probe", action="store_false", help="skip the exact noise-free probes")
    p.add_argument("--patch", type=report.positive_int_arg, default=3, help="odd patch size p (digits, LS/ELS)")
    p.add_argument("--boundary", choices=BOUNDARIES, default="zeros", help="padding of the patch-linear and LS/ELS")
    p.add_argument("--texture-size", type=report.positive_int_arg, default=12, help="texture height = width")
    p.add_argument("--n-train", type=report.positive_int_arg, default=50, help="digits in the LS/ELS training set")
    p.add_argument("--mosaic-samples", type=report.positive_int_arg, default=16)
    p.add_argument("--mosaic-steps", type=report.positive_int_arg, default=16, help="Euler steps on VE (LS/ELS)")
    p.add_argument("--degree", type=report.positive_int_arg, default=2, help="patch polynomial degree k (<= 3)")
    p.add_argument("--negative-control", choices=NEGATIVE_CONTROLS, default=None,
                   help="replace a prediction by a deliberately wrong one; the run must FAIL")
    add_output_arguments(p, "a grid of sample images beside training digits")
    return p


def summary(result: dict) -> str:
    """After the header: the checks table and the measured patch-copy fractions."""
    fractions = ", ".join(f"{k} {v['mosaic_fraction']:.3f} (Gaussian baseline {v['baseline_fraction']:.3f})"
                          for k, v in result["mosaic_fractions"].items())
    return "\n".join([report.table(result["checks"]), "",
                      f"fraction of output patches that are training patches (measured, not claimed): {fractions}"])


def plot(path: str, result: dict, args) -> None:
    """One row of images per source: training digits, each denoiser's samples, the texture samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["images"]
    fig, axes = plt.subplots(len(rows), 8, figsize=(8, 1.1 * len(rows)))
    for axis_row, (label, images) in zip(axes, rows.items()):
        side = int(round(np.sqrt(images.shape[1])))
        for k, ax in enumerate(axis_row):
            ax.set_xticks([]), ax.set_yticks([])
            if k < len(images):
                ax.imshow(images[k].reshape(side, side), cmap="gray")
        axis_row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    return report.cli_main(parser().parse_args(argv), Config, run, summary, plot=plot, json_exclude=("images",),
                           header=lambda cfg: header("verify.local", cfg, HEADER_KEYS)
                           + f"(split over {STATISTICAL_FAMILIES} families; the mosaic and novelty rows are power checks)\n")


if __name__ == "__main__":
    sys.exit(main())

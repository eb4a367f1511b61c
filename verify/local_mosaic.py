"""Checks of the patch-memorizing machines (Result L3) and of the global memorizer on the same set.

The machines run the Euler sampler on the VE grid, whose last step to sigma = 0 returns ``D(y)`` at
``sigma_min``: the state ``y`` before that step is what the theory's brute-force posterior sees.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats as scipy_stats

from numerics.local_memorizing import PatchPosteriorDenoiser
from numerics.memorization import EmpiricalDenoiser
from numerics.sampling import sample
from numerics.schedules import VESchedule
from theory.local_mosaic import patch_distances, posterior_pixels
from verify import metrics
from verify.check import Check

MOSAIC_SAMPLER = "euler"
POSTERIOR_RTOL = 1e-9   # torch (matrix-product distances) vs numpy (differences) softmax, float64
BOUND_ATOL = 1e-12      # the bound is exact; slack for round-off on values of order 1
MID_SIGMA = 0.3         # a second noise level for the posterior-mean check (patch values are in [0, 1])
PATCH_EPS = 1e-6        # an output patch "is" a training patch: within float round-off and sigma_min blur


def last_state(denoiser, cfg, dim: int):
    """``(y, x)``: the state at ``sigma_min`` and the output ``D(y; sigma_min)`` of the Euler sampler."""
    schedule = VESchedule()
    before = schedule.grid(cfg.mosaic_steps - 1, final_zero=False)   # the same points without the step to 0
    start = np.zeros(dim), before.prior_std**2 * np.eye(dim)
    y = sample(denoiser, MOSAIC_SAMPLER, before, *start, cfg.mosaic_samples, seed=cfg.seed).numpy()
    return y, before.sigma[-1]


def posterior_checks(name, denoiser, y, sigma_min, train, cfg, equivariant) -> tuple[list[Check], np.ndarray]:
    """The machine's output against the brute-force posterior mean, and inside the local copy bound."""
    x = denoiser(torch.as_tensor(y), sigma_min).numpy()
    brute, bound, nearest = posterior_pixels(y, train, cfg.shape, cfg.patch, cfg.boundary, sigma_min,
                                             equivariant=equivariant)
    blurred = denoiser(torch.as_tensor(y), MID_SIGMA).numpy()       # where the posterior is not yet a copy
    brute_mid, _, _ = posterior_pixels(y, train, cfg.shape, cfg.patch, cfg.boundary, MID_SIGMA, equivariant=equivariant)
    error = float(max(np.max(np.abs(x - brute)), np.max(np.abs(blurred - brute_mid))) / max(np.max(np.abs(brute)), 1e-300))
    excess = float(np.max(np.abs(x - nearest) - bound))
    copies = float(np.mean(bound <= PATCH_EPS))
    return [Check(f"{name}: output = posterior mean", error, None, error <= POSTERIOR_RTOL, "0",
                  f"{error:.2e}", f"<= {POSTERIOR_RTOL:g} relative, at sigma_min and {MID_SIGMA:g} (brute force)"),
            Check(f"{name}: local copy bound", excess, None, excess <= BOUND_ATOL,
                  "|x_i - t*[i]| <= sum_a w_a |t_a[i] - t*[i]|", f"max excess {excess:.2e}; "
                  f"{copies:.3f} of pixels exact copies", f"<= {BOUND_ATOL:g}")], x


def mosaic_check(name, x, baseline, train, cfg, equivariant, alpha) -> tuple[Check, dict]:
    """Exact training-patch matches in the output vs in Gaussian (patch-linear) samples: Fisher, one-sided."""
    hits = int((patch_distances(x, train, cfg.shape, cfg.patch, cfg.boundary, equivariant=equivariant) <= PATCH_EPS).sum())
    base = int((patch_distances(baseline, train, cfg.shape, cfg.patch, cfg.boundary,
                                equivariant=equivariant) <= PATCH_EPS).sum())
    total = x.shape[0] * cfg.shape[1] * cfg.shape[2]
    base_total = baseline.shape[0] * cfg.shape[1] * cfg.shape[2]
    p_value = float(scipy_stats.fisher_exact([[hits, total - hits], [base, base_total - base]],
                                             alternative="greater").pvalue)
    fraction = {"mosaic_fraction": hits / total, "baseline_fraction": base / base_total}
    return Check(f"{name}: patch copies beyond the Gaussian baseline", p_value, p_value, p_value < alpha,
                 "more exact patch matches than patch-linear samples",
                 f"{hits / total:.3f} vs {base / base_total:.3f} of patches",
                 f"Fisher one-sided p < {alpha:.3g} (power check)"), fraction


def copy_count(x, train) -> int:
    """Outputs within ``metrics.COPY_THRESHOLD`` training spacings of a training image."""
    return int(round(metrics.creativity(x, train)["copy_rate"] * len(x)))


def novelty_check(name, x, train, reference: int, alpha: float) -> Check:
    """Image level: fewer copies than the global memorizer made (``reference`` of as many), Fisher one-sided."""
    n, found = len(x), copy_count(x, train)
    p_value = float(scipy_stats.fisher_exact([[found, n - found], [reference, n - reference]],
                                             alternative="less").pvalue)
    return Check(f"{name}: image level", p_value, p_value, p_value < alpha, "fewer copies than the global memorizer",
                 f"copy rate {found / n:.3f} vs {reference / n:.3f}", f"Fisher one-sided p < {alpha:.3g} (power check)")


def copies_check(name, x, train, claim_copies: bool) -> Check:
    """The global memorizer copies (Result 8, limit sigma_min -> 0): copy rate 1; the negative control claims 0."""
    rate = copy_count(x, train) / len(x)
    wanted, claim = (1.0, "copies: copy rate 1") if claim_copies else (0.0, "new images: copy rate 0")
    return Check(f"{name}: image level", rate, None, rate == wanted, claim, f"copy rate {rate:.3f}",
                 f"copy: within {metrics.COPY_THRESHOLD:g} x the training spacing")


def mosaic_checks(cfg, train, baseline, alpha) -> tuple[list[Check], dict]:
    """The global memorizer (copies), then the LS and ELS machines (posterior, bound, patch copies, novelty)."""
    d = train.shape[1]
    memorizer = EmpiricalDenoiser(train)
    y, sigma_min = last_state(memorizer, cfg, d)
    images, fractions = {"memorizer": memorizer(torch.as_tensor(y), sigma_min).numpy()}, {}
    novel_claim = cfg.negative_control == "memorizer-novelty"       # a novelty claim for it must fail
    checks = [copies_check("global memorizer", images["memorizer"], train, claim_copies=not novel_claim)]
    reference = copy_count(images["memorizer"], train)
    for name, equivariant in (("LS", False), ("ELS", True)):
        machine = PatchPosteriorDenoiser(train, cfg.shape, cfg.patch, cfg.boundary, equivariant=equivariant)
        y, sigma_min = last_state(machine, cfg, d)
        rows, x = posterior_checks(name, machine, y, sigma_min, train, cfg, equivariant)
        mosaic, fractions[name] = mosaic_check(name, x, baseline, train, cfg, equivariant, alpha)
        checks += rows + [mosaic, novelty_check(name, x, train, reference, alpha)]
        images[name] = x
    return checks, {"images": images, "fractions": fractions}

"""``verify.bottleneck --mode trained``: narrow networks ``d -> 64 -> r -> 64 -> d`` trained per noise level.

What is checked (can fail): the samples lie on the image of the last decoder, a set of dimension
``<= r`` (for r = 1 a curve: distance to it ~ 0), and fresh target samples do not (negative
control). What is measured, not tested: how far the samples are from the target, from the rank-r
affine prediction (Results 5–6) and, for a fixed linear encoder, from Result 7's law.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import wasserstein_distance

from numerics.networks import distance_to_image, train_narrow
from numerics.samplers import SAMPLERS
from numerics.schedules import SCHEDULES
from theory.bottleneck import rank_continuous_law
from theory.encoder_decoder import FixedEncoderLaw
from theory.finite_step import check_sampler_grid
from theory.linear_law import marginal_start
from verify.check import Check
from verify.targets import mixture_model

CURVE_RTOL = 1e-3  # float32 network; the 4096-knot polyline cuts the ReLU decoder's kinks (~1e-4 seen)


def sliced_w1(a: np.ndarray, b: np.ndarray, directions: int = 64, seed: int = 0) -> float:
    """Sliced 1-Wasserstein distance: mean over random unit directions of the 1-D W1 of the projections."""
    rng = np.random.default_rng(seed)
    units = rng.standard_normal((directions, a.shape[1]))
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    return float(np.mean([wasserstein_distance(a @ u, b @ u) for u in units]))


def sample_with_codes(denoiser, sampler, grid, n, seed):
    """Run from the prior; also return the last step's input codes (they span the decoder curve used)."""
    generator = torch.Generator().manual_seed(seed)
    x = grid.prior_std * torch.randn(n, denoiser.dim, generator=generator, dtype=torch.float64)
    inputs = {}
    last = grid.steps - 1

    def keep_input(info):
        if info["i"] == last - 1:
            inputs["x"] = info["x"] / float(grid.s[last])
    out = SAMPLERS[sampler](denoiser, x, grid, generator=generator, callback=keep_input)
    x_last = inputs.get("x", x / float(grid.s[0]))
    return out.numpy(), denoiser.bottleneck(x_last, float(grid.sigma[last])).numpy()


def curve_check(points, denoiser, sigma, codes, scale, name) -> Check:
    """All points within CURVE_RTOL x scale of the decoder image over the codes' range."""
    span = codes.max() - codes.min()
    distance = distance_to_image(points, denoiser, sigma, lo=codes.min() - 0.05 * span, hi=codes.max() + 0.05 * span)
    worst = float(distance.max() / scale)
    return Check(name, worst, None, worst <= CURVE_RTOL, "0 (dimension <= r)", f"max distance {worst:.2e} x scale",
                 f"<= {CURVE_RTOL:g} x scale")


def run_trained(cfg) -> dict:
    """Train the toy, sample it, check the curve, and measure distances to the predictions."""
    mixture = mixture_model(cfg.dim, cfg.seed)
    rng = np.random.default_rng([cfg.seed, 9])
    train = mixture.sample(cfg.n_train or 2000, rng)
    grid = SCHEDULES[cfg.schedule]().grid(cfg.steps)
    check_sampler_grid(cfg.sampler, grid)
    generator = torch.Generator().manual_seed(cfg.seed)
    denoiser = train_narrow(train, grid.sigma[grid.sigma > 0], rank=cfg.rank, iterations=cfg.iterations,
                            generator=generator, progress=not cfg.quiet)
    x, codes = sample_with_codes(denoiser, cfg.sampler, grid, cfg.samples, cfg.seed)
    mean, cov = mixture.moments()
    scale = np.sqrt(np.trace(cov))
    sigma_last = float(grid.sigma[grid.steps - 1])
    checks = [curve_check(x, denoiser, sigma_last, codes, scale, "samples on the decoder image")]
    if cfg.negative_control == "target-samples":
        checks = [curve_check(mixture.sample(cfg.samples, rng), denoiser, sigma_last, codes, scale,
                              "target samples on the decoder image")]
    linear = rank_continuous_law(cfg.sampler, grid, mean, cov, cfg.rank, marginal_start)
    linear_samples = rng.multivariate_normal(linear.mean, linear.covariance(), cfg.samples)
    measurements = {"sliced_w1_to_target": sliced_w1(x, mixture.sample(cfg.samples, rng)),
                "sliced_w1_to_rank_r_affine_law": sliced_w1(x, linear_samples),
                "sliced_w1_target_to_rank_r_affine_law": sliced_w1(mixture.sample(cfg.samples, rng), linear_samples),
                "final_loss_at_sigma_min": float(denoiser.losses[-100:, denoiser.levels[sigma_last]].mean())}
    W = np.linalg.eigh(cov)[1][:, -cfg.rank:]  # top-r principal directions as a fixed linear encoder
    predicted_encoder_law = FixedEncoderLaw.sample(mixture, W, cfg.samples, rng)
    measurements["sliced_w1_to_pca_encoder_law"] = sliced_w1(x, predicted_encoder_law)
    return {"checks": checks, "measurements": measurements, "samples": x, "target_samples": train,
            "rank_r_samples": linear_samples, "encoder_law_samples": predicted_encoder_law,
            "curve": denoiser.decode(torch.linspace(codes.min(), codes.max(), 512, dtype=torch.float64)[:, None],
                                     sigma_last).numpy()}


def plot(path: str, result: dict) -> None:
    """Target, trained-bottleneck samples, the decoder curve, and the rank-r affine prediction (2-D)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    t, x, lin, curve = result["target_samples"], result["samples"], result["rank_r_samples"], result["curve"]
    pca = result["encoder_law_samples"]
    ax.scatter(t[:, 0], t[:, 1], s=2, alpha=0.25, color="0.6", label="target (training set)")
    ax.scatter(lin[:, 0], lin[:, 1], s=2, alpha=0.3, color="tab:orange", label="rank-1 affine law (Result 6)")
    ax.scatter(pca[:, 0], pca[:, 1], s=2, alpha=0.3, color="tab:green", label="PCA encoder, optimal decoder (Result 7)")
    ax.scatter(x[:, 0], x[:, 1], s=3, color="tab:blue", label="trained 2-64-1-64-2 samples")
    ax.plot(curve[:, 0], curve[:, 1], color="k", lw=0.8, label="last decoder image")
    ax.set_aspect("equal")
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")
    cfg = result["config"]
    ax.set_title(f"verify.bottleneck --mode trained: {cfg['sampler']}, {cfg['steps']} steps, "
                 f"{cfg['iterations']} Adam steps per level", fontsize=9)
    ax.legend(loc="best", fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)

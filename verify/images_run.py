"""The pieces of ``verify.images``: data, machines, networks, and sampling every denoiser from the same noise."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from numerics.bottleneck import RankDenoiser
from numerics.datasets import load
from numerics.denoisers import train_linear
from numerics.image_machines import PatchPosteriorDenoiser, ScheduledPatchDenoiser
from numerics.image_networks import VARIANTS
from numerics.image_training import train_network
from numerics.memorization import EmpiricalDenoiser
from numerics.samplers import SAMPLERS
from theory.linear import OptimalAffineDenoiser



class ResultOneMachine:
    """Result 1 (theory) on the training set's moments: ``mu + U diag(gain(lambda, sigma)) U^T (y - mu)``.

    The gain is theory's formula, so this is where theory meets the trained networks: a planted
    error in ``OptimalAffineDenoiser.gain`` moves this machine and fails the linear-network row.
    """

    def __init__(self, train: np.ndarray):
        self.mean, self.cov = train.mean(axis=0), np.cov(train.T, bias=True)   # moments over n (Result 4)
        eigenvalues, self.U = np.linalg.eigh(self.cov)
        self.eigenvalues, self.result = np.clip(eigenvalues, 0.0, None), OptimalAffineDenoiser()

    def affine(self, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        G = (self.U * self.result.gain(self.eigenvalues, sigma)) @ self.U.T
        return G, self.mean - G @ self.mean

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        G, b = (torch.as_tensor(v, dtype=x.dtype) for v in self.affine(sigma))
        return x @ G.T + b


def data(cfg) -> dict:
    """Flat train/test images in [-1, 1], labels and the image side."""
    train, train_labels, source = load(cfg.dataset, "train", size=cfg.size, n=cfg.n_train, seed=cfg.seed)
    test, test_labels, _ = load(cfg.dataset, "test", size=cfg.size)
    side = train.shape[1]
    return {"train": train.reshape(len(train), -1), "train_labels": train_labels, "side": side,
            "test": test.reshape(len(test), -1), "test_labels": test_labels, "source": source}


def machines(cfg, train: np.ndarray, side: int) -> dict:
    """The theoretical machines, closed-form or exact from the training set (no training)."""
    wiener = ResultOneMachine(train)
    images = train[:cfg.patch_images].reshape(-1, side, side)  # bank size: a time bound
    out = {"wiener": wiener,
           f"rank-{cfg.rank}": RankDenoiser(wiener.mean, wiener.cov, cfg.rank, allow_tie=True),
           "memorizing": EmpiricalDenoiser(train)}
    for p in cfg.patches:
        out[f"ls-{p}"] = PatchPosteriorDenoiser(images, p, "zeros", equivariant=False)
        out[f"els-{p}"] = PatchPosteriorDenoiser(images, p, "zeros", equivariant=True)
    return out


CALIBRATION_IMAGES = 16  # held-out test images, with their own noise, that choose the patch size per level
CALIBRATION_PATCHES = (3, 5, 7)  # candidate ELS patch sizes (larger ones cost p^2 per distance: a time bound)


def els_bank(cfg, train: np.ndarray, side: int) -> dict:
    """ELS machines for the candidate patch sizes that fit the image (the calibration's candidates)."""
    images = train[:cfg.patch_images].reshape(-1, side, side)
    return {p: PatchPosteriorDenoiser(images, p, "zeros", equivariant=True) for p in CALIBRATION_PATCHES if p <= side}


def calibrate(net, bank: dict, levels, held_out: np.ndarray, seed: int) -> ScheduledPatchDenoiser:
    """Per noise level, the ELS patch size whose output is nearest (MSE) to the network's on held-out noisy images."""
    generator = torch.Generator().manual_seed(seed + 3)
    x0 = torch.as_tensor(held_out[:CALIBRATION_IMAGES])
    schedule = {}
    for sigma in levels:
        y = x0 + float(sigma) * torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        target = net(y, float(sigma))
        errors = {p: float(((machine(y, float(sigma)) - target) ** 2).mean()) for p, machine in bank.items()}
        schedule[float(sigma)] = min(errors, key=errors.get)
    return ScheduledPatchDenoiser(bank, schedule)


def calibrated(cfg, nets: dict, train, test, side: int, grid, x_start) -> tuple[dict, dict]:
    """Per UNET variant, the ELS machine with a patch size per level calibrated to it; its samples and schedule."""
    bank = els_bank(cfg, train, side)
    levels = grid.sigma[grid.sigma > 0]
    samples, schedules = {}, {}
    for name in (n for n in cfg.variants if VARIANTS[n].kind == "unet"):
        machine = calibrate(nets[name], bank, levels, test, cfg.seed)
        schedules[name] = machine.schedule
        samples[f"els-cal:{name}"] = run_all({name: machine}, cfg, grid, x_start)[name]
    return samples, schedules


def networks(cfg, train: np.ndarray, side: int, grid) -> tuple[dict, dict]:
    """Train the linear network (one layer per grid level) and each variant; also their training losses."""
    generator = torch.Generator().manual_seed(cfg.seed)
    levels = grid.sigma[grid.sigma > 0]
    nets = {"linear-net": train_linear(train, levels, iterations=cfg.linear_steps, generator=generator)}
    losses = {}
    images = train.reshape(-1, 1, side, side)
    for name in cfg.variants:
        variant = replace(VARIANTS[name], width=cfg.width, depth=cfg.depth) if VARIANTS[name].kind == "unet" \
            else VARIANTS[name]
        checkpoint = Path(cfg.out) / "checkpoints" / f"{name}.pt" if cfg.out else None
        nets[name], losses[name] = train_network(variant, images, steps=cfg.train_steps, seed=cfg.seed,
                                                 device=cfg.device, checkpoint=checkpoint, name=name,
                                                 progress=not cfg.quiet)
    return nets, losses


def initial_noise(cfg, grid, d: int) -> torch.Tensor:
    """The one initial state every denoiser starts from: ``sigma_max z``, ``z`` seeded."""
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    return float(grid.sigma[0]) * torch.randn(cfg.samples, d, generator=generator, dtype=torch.float64)


def run_all(denoisers: dict, cfg, grid, x_start: torch.Tensor) -> dict:
    """Each denoiser's samples from the same start, same sampler, same grid (and, if stochastic, same noise)."""
    out = {}
    for name, denoiser in denoisers.items():
        generator = torch.Generator().manual_seed(cfg.seed + 2)
        x = SAMPLERS[cfg.sampler](denoiser, x_start.clone(), grid, generator=generator)
        out[name] = x.numpy()
    return out


def affine_loss(G: np.ndarray, b: np.ndarray, train: np.ndarray, sigma: float) -> float:
    """Exact denoising loss ``E |G (x + sigma n) + b - x|^2`` of an affine map over the training set."""
    residual = train @ (G - np.eye(len(b))).T + b
    return float((residual**2).sum(axis=1).mean() + sigma**2 * (G**2).sum())


def loss_gap(linear_net, wiener, train: np.ndarray) -> dict:
    """Relative excess loss of the trained linear network over the closed-form optimum, per level."""
    gaps = {}
    for sigma in linear_net.table:
        trained, optimum = affine_loss(*linear_net.affine(sigma), train, sigma), affine_loss(*wiener.affine(sigma), train, sigma)
        gaps[sigma] = (trained - optimum) / optimum
    return gaps

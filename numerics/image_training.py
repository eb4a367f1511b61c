"""Training loop for the noise-conditioned image denoisers: EDM loss, seeds, checkpoints, resume, progress bar.

Loss (Karras et al. 2022, eq. 8 with their ``lambda``): ``ln sigma ~ N(P_mean, P_std^2)``,
``E (sigma^2 + s^2) / (sigma s)^2 |D(x0 + sigma n; sigma) - x0|^2``. Adam with the learning rate
decayed linearly to 0. A checkpoint (model, optimizer, generator state, losses, step) is written
every ``every`` steps and at the end; calling again with the same ``checkpoint`` resumes from it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from numerics.image_networks import ImageDenoiser, Preconditioned, Variant
from numerics.validation import positive, positive_int

P_MEAN, P_STD = -1.2, 1.2  # EDM's log-normal noise-level distribution


def edm_loss(model: Preconditioned, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One Monte-Carlo estimate of the weighted denoising loss on the batch ``x0``."""
    sigma = torch.exp(P_MEAN + P_STD * torch.randn(len(x0), generator=generator)).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    s = model.sigma_data
    weight = (sigma**2 + s**2) / (sigma * s) ** 2
    error = ((model(x0 + sigma[:, None, None, None] * noise, sigma) - x0) ** 2).flatten(1).sum(dim=1)
    return (weight * error).mean()


def build(variant: Variant, shape, sigma_data: float, seed: int) -> Preconditioned:
    """The preconditioned network, its weights initialised from ``seed`` (the global RNG is left untouched)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Preconditioned(variant.build(shape), sigma_data)


def train_network(variant: Variant, images, *, steps: int, batch: int = 64, lr: float = 2e-3, seed: int = 0,
                  device: str = "cpu", checkpoint=None, every: int = 200, name: str = "",
                  progress: bool = True) -> tuple[ImageDenoiser, np.ndarray]:
    """Train ``variant`` on ``images`` ``(n, c, h, w)`` in [-1, 1]; returns the denoiser and the per-step losses."""
    steps, batch, lr = positive_int(steps, "steps"), positive_int(batch, "batch"), positive(lr, "lr")
    x_train = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if x_train.ndim != 4:
        raise ValueError(f"images must have shape (n, channels, height, width), got {tuple(x_train.shape)}")
    model = build(variant, x_train.shape[1:], float(x_train.std()), seed).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: max(0.0, 1.0 - k / steps))
    generator, losses, start = torch.Generator().manual_seed(seed), np.full(steps, np.nan), 0
    path = Path(checkpoint) if checkpoint else None
    if path is not None and path.exists():
        start = _resume(path, model, optimizer, schedule, generator, losses)
    model.train()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=name or variant.kind, file=sys.stderr,
               disable=not (progress and sys.stderr.isatty()))
    for step in bar:
        x0 = x_train[torch.randint(len(x_train), (batch,), generator=generator)].to(device)
        loss = edm_loss(model, x0, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses[step] = loss.item()
        bar.set_postfix(loss=f"{losses[max(0, step - 49):step + 1].mean():.4f}", refresh=False)
        if path is not None and ((step + 1) % every == 0 or step + 1 == steps):
            _save(path, model, optimizer, schedule, generator, losses, step + 1)
    return ImageDenoiser(model, x_train.shape[1:], device), losses


def _save(path: Path, model, optimizer, schedule, generator, losses, step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
             "generator": generator.get_state(), "losses": losses, "step": step}
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)                  # atomic: a killed run leaves the last good one


def _resume(path: Path, model, optimizer, schedule, generator, losses) -> int:
    state = torch.load(path, weights_only=False)
    if len(state["losses"]) != len(losses):
        raise ValueError(f"checkpoint {path} was trained for {len(state['losses'])} steps, not {len(losses)}: "
                         "use another --out or the same --train-steps")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    generator.set_state(state["generator"])
    losses[:] = state["losses"]
    return int(state["step"])

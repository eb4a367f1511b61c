"""Bottleneck network denoisers ``D(x, sigma) = decode(bottleneck(x))`` with an ``r``-number code."""
# One small LeakyReLU network per noise level, all levels stacked as (L, ...) weights and trained
# at once (their losses are independent). No skip connection and nothing after the narrow layer:
# at a fixed sigma the output is a function of r numbers, so the last Euler step to sigma = 0 puts
# every sample on the r-dimensional image {decode(h, sigma)}.
from __future__ import annotations

import numpy as np
import torch

from numerics.denoisers import level
from numerics.noise import randn_like
from numerics.progress import bar
from numerics import validation

NEGATIVE_SLOPE = 0.01  # LeakyReLU, torch's default
CHUNK_ENTRIES = 2**21  # point-segment pairs per chunk in distance_to_image (~32 MB per temporary)


def _levels(sigmas) -> list[float]:
    """The distinct nonzero noise levels, sorted; each must be finite and > 0."""
    values = np.unique(np.asarray(sigmas, dtype=np.float64).ravel())
    levels = [validation.positive(s, "sigmas") for s in values if s != 0.0]
    if not levels:
        raise ValueError("sigmas must contain at least one nonzero noise level")
    return levels


def check_encoder(encoder, dim: int, rank: int) -> np.ndarray:
    """Return ``encoder`` as a float64 ``(dim, rank)`` matrix with orthonormal columns, or raise."""
    W = validation.finite_array(encoder, "encoder", ndim=2)
    if W.shape != (dim, rank):
        raise ValueError(f"encoder must have shape (d, r) = ({dim}, {rank}), got {W.shape}")
    error = np.max(np.abs(W.T @ W - np.eye(rank)))
    if error > 1e-8:
        raise ValueError(f"encoder must have orthonormal columns (W^T W = I to 1e-8), off by {error:.3e}")
    return W


class _Stack(torch.nn.Module):
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` per level, LeakyReLU between them, none after the last."""

    def __init__(self, sizes, levels: int, generator=None):
        super().__init__()
        self.weights, self.biases = torch.nn.ParameterList(), torch.nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = fan_in**-0.5  # torch.nn.Linear's default uniform init
            for shape, params in (((levels, fan_in, fan_out), self.weights), ((levels, 1, fan_out), self.biases)):
                params.append(torch.nn.Parameter(bound * (2 * torch.rand(shape, generator=generator) - 1)))

    def forward(self, x, index=slice(None)):
        for k, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(bias[index], x, weight[index])
            if k < len(self.weights) - 1:
                x = torch.nn.functional.leaky_relu(x, NEGATIVE_SLOPE)
        return x


class NarrowMLP(torch.nn.Module):
    """Per level ``d -> width -> rank -> width -> d`` on ``c_in x``; ``W^T x -> width -> width -> d`` if ``encoder=W``."""
    # c_in = 1 / sqrt(sigma^2 + sigma_data^2) (EDM) scales the input of the first trained layer; a
    # fixed encoder (d x r, orthonormal columns) is a buffer, not trained. Levels are the sorted
    # distinct nonzero sigmas; `index` (a slice) picks levels; tensors are (levels, batch, features).

    def __init__(self, sigmas, dim=2, width=64, rank=1, *, encoder=None, sigma_data=1.0, generator=None):
        super().__init__()
        levels = _levels(sigmas)
        self.dim, self.width = validation.positive_int(dim, "dim"), validation.positive_int(width, "width")
        self.rank = validation.positive_int(rank, "rank")
        sigma = torch.tensor(levels, dtype=torch.float64)
        c_in = (sigma**2 + validation.positive(sigma_data, "sigma_data") ** 2) ** -0.5
        self.register_buffer("sigma", sigma)
        self.register_buffer("c_in", c_in.to(torch.float32)[:, None, None])
        fixed = None if encoder is None else torch.as_tensor(check_encoder(encoder, self.dim, self.rank))
        self.register_buffer("fixed", fixed)
        encoder_sizes = [] if fixed is not None else [self.dim, self.width, self.rank]
        decoder_sizes = [self.rank, self.width] + ([self.width] if fixed is not None else []) + [self.dim]
        self.encoder = _Stack(encoder_sizes, len(levels), generator)
        self.decoder = _Stack(decoder_sizes, len(levels), generator)

    def encode(self, x, index=slice(None)):
        """The narrow-layer code ``(levels, batch, rank)``; ``x @ W`` in ``x``'s dtype for a fixed encoder."""
        if self.fixed is not None:
            return x @ self.fixed.to(x)
        return self.encoder(x.to(self.c_in) * self.c_in[index], index)

    def decode(self, h, index=slice(None)):
        """The decoder alone, ``(levels, batch, rank) -> (levels, batch, d)`` in float32."""
        h = h.to(self.c_in)
        if self.fixed is not None:
            h = h * self.c_in[index]  # c_in W^T x = W^T (c_in x): the scaling keeps the code x @ W
        return self.decoder(h, index)

    def forward(self, x, index=slice(None)):
        return self.decode(self.encode(x, index), index)


class NetworkDenoiser:
    """``D(x, sigma) = decode(bottleneck(x, sigma), sigma)`` at the exact trained levels, without gradients."""
    # Inputs may be float32 or float64 on any device (computed in float32 on the model's device);
    # outputs follow the input's dtype and device. `losses` is (iterations, levels) from train_narrow.

    def __init__(self, model: NarrowMLP, losses=None):
        self.model = model.eval()
        self.levels = {float(s): k for k, s in enumerate(model.sigma.tolist())}
        self.losses = losses

    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def rank(self) -> int:
        return self.model.rank

    def _index(self, sigma) -> slice:
        k = level(self.levels, sigma, "network was trained at")
        return slice(k, k + 1)

    def _batch(self, value, name: str, width: int) -> torch.Tensor:
        if value.ndim != 2 or value.shape[1] != width:
            raise ValueError(f"{name} must have shape (batch, {width}), got {tuple(value.shape)}")
        return value.to(self.model.c_in.device)[None]

    def bottleneck(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """The narrow-layer code ``(batch, rank)`` of ``x`` at level ``sigma``."""
        index = self._index(sigma)
        with torch.no_grad():
            return self.model.encode(self._batch(x, "x", self.dim), index)[0].to(x.dtype).to(x.device)

    def decode(self, h: torch.Tensor, sigma: float) -> torch.Tensor:
        """The decoder alone at level ``sigma``: codes ``(batch, rank)`` to points ``(batch, d)``."""
        index = self._index(sigma)
        with torch.no_grad():
            return self.model.decode(self._batch(h, "h", self.rank), index)[0].to(h.dtype).to(h.device)

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return self.decode(self.bottleneck(x, sigma), sigma)


def train_narrow(train, sigmas, *, width=64, rank=1, encoder=None, iterations=3000, batch=512, lr=3e-3,
                 sigma_data=1.0, generator=None, progress: bool = False) -> NetworkDenoiser:
    """A :class:`NarrowMLP` per level trained with Adam on ``|D(x0 + sigma n) - x0|^2``, lr decayed linearly to 0."""
    train = validation.finite_array(train, "train", ndim=2)
    if train.shape[0] == 0:
        raise ValueError("train must have at least one row (one training point)")
    iterations = validation.positive_int(iterations, "iterations")
    batch, lr = validation.positive_int(batch, "batch"), validation.positive(lr, "lr")
    model = NarrowMLP(sigmas, train.shape[1], width, rank, encoder=encoder, sigma_data=sigma_data,
                      generator=generator)
    x_train, levels = torch.as_tensor(train, dtype=torch.float32), len(model.sigma)
    sigma = model.sigma.to(torch.float32)[:, None, None]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1.0 - k / iterations)
    losses = torch.empty(iterations, levels, dtype=torch.float64)
    shown = bar(iterations, f"training {levels} narrow networks", progress)
    for step in range(iterations):
        x0 = x_train[torch.randint(len(x_train), (levels, batch), generator=generator)]
        y = x0 + sigma * randn_like(x0, generator)
        per_level = ((model(y) - x0) ** 2).sum(dim=2).mean(dim=1)
        optimizer.zero_grad()
        per_level.sum().backward()  # independent levels: each gets the gradient of its own mean loss
        optimizer.step()
        schedule.step()
        losses[step] = per_level.detach()
        shown.update()
        if step % 100 == 0:
            shown.set_postfix_str(f"loss {float(per_level.detach().sum()):.4g}")
    shown.close()
    return NetworkDenoiser(model, losses.numpy())


def _segment_distances(points: torch.Tensor, start: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """Distance from each point ``(n, d)`` to the nearest segment ``start + t step``, ``t in [0, 1]``."""
    offset = points[:, None, :] - start[None]                                   # (n, segments, d)
    length2 = (step**2).sum(dim=1)
    t = (offset * step).sum(dim=2) / torch.where(length2 > 0, length2, 1.0)    # zero-length: t = 0
    t = t.clamp(0.0, 1.0)
    return ((offset - t[..., None] * step) ** 2).sum(dim=2).min(dim=1).values.sqrt()


def distance_to_image(points, denoiser: NetworkDenoiser, sigma: float, *, lo: float, hi: float,
                      num: int = 4096) -> np.ndarray:
    """Distance ``(n,)`` from each point to the polyline ``decode(linspace(lo, hi, num), sigma)`` (rank 1)."""
    if denoiser.rank != 1:
        raise ValueError(f"denoiser must have rank 1 (its image is a curve), got rank {denoiser.rank}")
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu()
    points = torch.as_tensor(validation.finite_array(points, "points", ndim=2))
    if points.shape[1] != denoiser.dim:
        raise ValueError(f"points must have {denoiser.dim} columns, got shape {tuple(points.shape)}")
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"lo and hi must be finite with lo < hi, got lo = {lo!r}, hi = {hi!r}")
    num = validation.positive_int(num, "num")
    if num < 2:
        raise ValueError(f"num must be >= 2 (a polyline needs two knots), got {num}")
    knots = denoiser.decode(torch.linspace(lo, hi, num, dtype=torch.float64)[:, None], sigma)
    start, step = knots[:-1], knots[1:] - knots[:-1]
    chunk = max(1, CHUNK_ENTRIES // (num - 1))
    parts = [_segment_distances(points[i:i + chunk], start, step) for i in range(0, len(points), chunk)]
    return torch.cat(parts).numpy()

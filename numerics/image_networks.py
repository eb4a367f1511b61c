"""Noise-conditioned image denoisers: EDM preconditioning around a UNET or an MLP, and the named variants.

One network serves every noise level (noise-conditioned, EDM style), not one network per level:
``D(y; sigma) = c_skip y + c_out F(c_in y, c_noise)`` with ``c_skip = s^2 / (sigma^2 + s^2)``,
``c_out = sigma s / sqrt(sigma^2 + s^2)``, ``c_in = 1 / sqrt(sigma^2 + s^2)``, ``c_noise = log(sigma) / 4``
and ``s = sigma_data`` (Karras et al. 2022, Table 1). The trained *linear* network is the exception:
it is one linear layer per noise level of the sampler's grid (``numerics.denoisers.train_linear``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from numerics.unet import UNet
from numerics.validation import positive


class MLP(nn.Module):
    """``F(x, c_noise)``: flatten, append ``c_noise``, ``d+1 -> width -> rank -> width -> d`` with ReLU (``rank=None``: no narrow layer)."""

    def __init__(self, shape, width: int = 256, rank: int | None = None):
        super().__init__()
        self.shape, d = tuple(shape), int(torch.tensor(shape).prod())
        middle = [nn.Linear(width, rank), nn.Linear(rank, width), nn.ReLU()] if rank else [nn.Linear(width, width), nn.ReLU()]
        self.net = nn.Sequential(nn.Linear(d + 1, width), nn.ReLU(), *middle, nn.Linear(width, d))

    def forward(self, x, c_noise):
        return self.net(torch.cat([x.flatten(1), c_noise[:, None]], dim=1)).view(len(x), *self.shape)


class Preconditioned(nn.Module):
    """EDM preconditioning of a raw network ``F``: ``D(y, sigma)`` on images ``(b, c, h, w)``, ``sigma`` ``(b,)``."""

    def __init__(self, net: nn.Module, sigma_data: float):
        super().__init__()
        self.net, self.sigma_data = net, positive(sigma_data, "sigma_data")

    def forward(self, y, sigma):
        s, sigma = self.sigma_data, sigma.to(y.dtype)[:, None, None, None]
        c_skip = s**2 / (sigma**2 + s**2)                    # keep the input where it is reliable (small sigma)
        c_out = sigma * s / torch.sqrt(sigma**2 + s**2)      # unit-variance target for F
        c_in = 1 / torch.sqrt(sigma**2 + s**2)               # unit-variance input for F
        return c_skip * y + c_out * self.net(c_in * y, torch.log(sigma.flatten()) / 4)


class ImageDenoiser:
    """The sampler interface ``D(x, sigma)`` on flat ``(batch, c h w)`` tensors around a trained :class:`Preconditioned`."""

    def __init__(self, model: Preconditioned, shape, device="cpu"):
        self.model, self.shape, self.device = model.eval(), tuple(shape), device

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        y = x.to(self.device, torch.float32).view(len(x), *self.shape)
        out = self.model(y, torch.full((len(x),), float(sigma), device=self.device))
        return out.flatten(1).to(x.device, x.dtype)


@dataclass(frozen=True)
class Variant:
    """One network architecture: a UNET with its switches, or an MLP (``rank`` = narrow-layer width)."""

    kind: str = "unet"
    width: int = 16
    depth: int = 2
    skip: bool = True
    padding: str = "zeros"
    norm: str = "batch"
    bias: bool = True
    rank: int | None = None

    def build(self, shape) -> nn.Module:
        if self.kind == "mlp":
            return MLP(shape, self.width, self.rank)
        return UNet(shape[0], self.width, self.depth, skip=self.skip, padding=self.padding, norm=self.norm,
                    bias=self.bias)


VARIANTS = {
    "unet": Variant(),
    "unet-noskip": Variant(skip=False),
    "unet-circular": Variant(padding="circular"),
    "unet-reflect": Variant(padding="reflect"),
    "unet-biasfree": Variant(norm="biasfree", bias=False),
    "unet-nonorm": Variant(norm="none"),
    "unet-nobias": Variant(bias=False),
    "mlp-wide": Variant(kind="mlp", width=256),
    "mlp-narrow": Variant(kind="mlp", width=256, rank=8),
}

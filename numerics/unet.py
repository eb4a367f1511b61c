"""A small UNET with switches for the inductive biases under study.

Switches: skip connections on/off, padding mode ``zeros``/``circular``/``reflect`` (every 3x3
convolution), normalization ``batch`` (BatchNorm2d) / ``biasfree`` (divide by the batch RMS: no
mean subtraction, no shift, Mohan et al. 2020) / ``none``, convolution bias on/off, depth (number
of resolutions, 2x average-pool down, nearest-neighbour up) and base width (doubling per level).
The network is noise-conditioned by one extra input channel filled with ``c_noise``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from numerics.validation import choice, positive_int

PADDINGS = ("zeros", "circular", "reflect")
NORMS = ("batch", "biasfree", "none")


class BiasFreeBatchNorm(nn.Module):
    """``gamma x / sqrt(E[x^2] + eps)`` per channel: batch second moment in training, its running mean in eval."""

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.register_buffer("running_square", torch.ones(channels))
        self.momentum, self.eps = momentum, eps

    def forward(self, x):
        if self.training:
            square = (x**2).mean(dim=(0, 2, 3))                     # batch second moment per channel
            with torch.no_grad():
                self.running_square.lerp_(square.detach(), self.momentum)
        else:
            square = self.running_square
        return x * (self.weight / torch.sqrt(square + self.eps))[None, :, None, None]


def normalization(kind: str, channels: int) -> nn.Module:
    """The layer a norm switch names."""
    kind = choice(kind, "norm", NORMS)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return BiasFreeBatchNorm(channels) if kind == "biasfree" else nn.Identity()


class Block(nn.Sequential):
    """Two (3x3 convolution, normalization, ReLU) layers."""

    def __init__(self, c_in: int, c_out: int, padding: str, norm: str, bias: bool):
        layers = []
        for a, b in ((c_in, c_out), (c_out, c_out)):
            layers += [nn.Conv2d(a, b, 3, padding=1, padding_mode=padding, bias=bias), normalization(norm, b), nn.ReLU()]
        super().__init__(*layers)


class UNet(nn.Module):
    """``F(x, c_noise)``: image ``(b, c, h, w)`` and per-sample ``c_noise`` ``(b,)`` to an image of the same shape."""

    def __init__(self, channels: int = 1, width: int = 16, depth: int = 2, *, skip: bool = True,
                 padding: str = "zeros", norm: str = "batch", bias: bool = True):
        super().__init__()
        channels, width, self.depth = (positive_int(v, n) for v, n in ((channels, "channels"), (width, "width"),
                                                                        (depth, "depth")))
        padding, self.skip = choice(padding, "padding", PADDINGS), bool(skip)
        widths = [width * 2**k for k in range(self.depth)]
        self.down = nn.ModuleList([Block(channels + 1 if k == 0 else widths[k - 1], widths[k], padding, norm, bias)
                                   for k in range(self.depth)])
        self.up = nn.ModuleList([Block(widths[k + 1] + (widths[k] if self.skip else 0), widths[k], padding, norm, bias)
                                 for k in reversed(range(self.depth - 1))])
        self.out = nn.Conv2d(widths[0], channels, 1, bias=bias)

    def forward(self, x, c_noise):
        h = torch.cat([x, c_noise[:, None, None, None].expand(-1, 1, *x.shape[2:])], dim=1)
        skips = []
        for k, block in enumerate(self.down):
            h = block(F.avg_pool2d(h, 2) if k else h)                # halve the resolution below the top
            skips.append(h)
        for k, block in zip(reversed(range(self.depth - 1)), self.up):
            h = F.interpolate(h, size=skips[k].shape[2:], mode="nearest")  # back to level k's size
            h = block(torch.cat([h, skips[k]], dim=1) if self.skip else h)
        return self.out(h)

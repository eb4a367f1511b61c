"""Local and translation-equivariant linear denoisers on images, computed from their definitions.

Images are ``(channels, height, width)`` arrays, flattened to ``d = c h w`` (C order) for the
samplers. A patch is the ``p x p`` neighbourhood of a pixel (all channels), padded by a boundary
rule with torch's ``padding_mode`` names: ``zeros`` (padded entries are the constant 0),
``circular`` (wrap around), ``reflect`` (mirror without repeating the edge).

* :class:`PatchLinearDenoiser` -- output pixel ``i`` is affine in its noisy patch; the weights solve
  the normal equations of the patch per pixel, ``Cov(x_i, z_i) = W_i Cov(z_i)``, ``z_i = P_i y``.
* :class:`LocalLinearDenoiser` -- the shared application ``D(y) = m + W . patch(y - m)``; the
  translation-equivariant ones (one kernel everywhere, FFT) are in ``numerics/local_equivariant.py``.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from numerics import validation
from numerics.denoisers import check_width

BOUNDARIES = ("zeros", "circular", "reflect")
OUTSIDE = -1  # index of a zero-padded patch entry


def image_shape(shape) -> tuple[int, int, int]:
    """``(c, h, w)`` as three integers >= 1."""
    if len(tuple(shape)) != 3:
        raise ValueError(f"shape must be (channels, height, width), got {shape!r}")
    return tuple(validation.positive_int(n, "shape") for n in shape)


def patch_size(patch, shape) -> int:
    """An odd patch size ``p`` no larger than the image's height and width."""
    p = validation.positive_int(patch, "patch")
    _, h, w = image_shape(shape)
    if p % 2 == 0:
        raise ValueError(f"patch must be odd (a pixel's centred neighbourhood), got {p}")
    if p > min(h, w):
        raise ValueError(f"patch {p} is larger than the {h} x {w} image")
    return p


def pad(images: torch.Tensor, p: int, boundary: str, fill: float = 0.0) -> torch.Tensor:
    """``(n, c, h, w)`` images padded by ``(p - 1) / 2`` on every side (``zeros`` pads with ``fill``)."""
    validation.choice(boundary, "boundary", BOUNDARIES)
    r = (p - 1) // 2
    if boundary == "zeros":
        return F.pad(images, (r, r, r, r), value=fill)
    return F.pad(images, (r, r, r, r), mode=boundary)


def patches(images: torch.Tensor, p: int, boundary: str, fill: float = 0.0) -> torch.Tensor:
    """``(n, h w, c p^2)``: the padded patch of every pixel, channel-major then row-major offsets."""
    n, c, h, w = images.shape
    return F.unfold(pad(images, p, boundary, fill), p).reshape(n, c * p * p, h * w).transpose(1, 2)


@cache
def patch_indices(shape: tuple, p: int, boundary: str) -> np.ndarray:
    """``(h w, c p^2)`` flat image indices of each pixel's patch entries; ``OUTSIDE`` where zero-padded."""
    index = torch.arange(int(np.prod(shape)), dtype=torch.float64).reshape(1, *shape)
    return patches(index, p, boundary, fill=OUTSIDE)[0].numpy().astype(np.int64)


def normal_equations(cross: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """``W`` with ``W gram = cross`` (batched): least squares, so rank-deficient ``gram`` is allowed.

    A zero-padded entry gives a zero row and column, a reflected duplicate a repeated one; the
    minimum-norm solution puts weight 0 on the former and splits it over the latter (same map).
    """
    solution = torch.linalg.lstsq(torch.as_tensor(gram), torch.as_tensor(cross).transpose(-1, -2),
                                  rcond=1e-13, driver="gelsd").solution  # gram is symmetric PSD
    return solution.transpose(-1, -2).numpy()


def patch_moments(cov, indices: np.ndarray, sigma: float):
    """Per pixel ``j``: ``Cov(z_j) = P_j (Sigma + sigma^2 I) P_j^T`` and ``Cov(x_j, z_j)`` per output channel."""
    inside = (indices != OUTSIDE).astype(np.float64)                     # (hw, k)
    safe = np.where(indices == OUTSIDE, 0, indices)
    noisy = cov + sigma**2 * np.eye(len(cov))
    gram = noisy[safe[:, :, None], safe[:, None, :]] * inside[:, :, None] * inside[:, None, :]
    hw, d = indices.shape[0], len(cov)
    centre = np.arange(d).reshape(d // hw, hw).T                          # (hw, c) output indices
    cross = cov[centre[:, :, None], safe[:, None, :]] * inside[:, None, :]
    return gram, cross


class LocalLinearDenoiser:
    """``D(y)_{ch, j} = m_{ch, j} + W_j[ch] . z_j`` with ``z_j`` the padded patch of ``y - m`` at pixel ``j``.

    Subclasses set the centre image ``m`` (flat, ``(d,)``) and the weights ``W`` per noise level.
    """

    centre: np.ndarray

    def __init__(self, shape, patch: int, boundary: str):
        self.shape = image_shape(shape)
        self.patch = patch_size(patch, self.shape)
        self.boundary = validation.choice(boundary, "boundary", BOUNDARIES)
        self._weights = {}

    def weights(self, sigma: float) -> np.ndarray:
        """Weights at noise level ``sigma``: ``(h w, c, c p^2)``, one row block per pixel (or one shared kernel)."""
        raise NotImplementedError

    def __call__(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        check_width(y, int(np.prod(self.shape)))
        sigma = validation.positive(sigma, "sigma")
        if sigma not in self._weights:
            self._weights[sigma] = self.weights(sigma)
        W = torch.as_tensor(self._weights[sigma], dtype=y.dtype, device=y.device)
        m = torch.as_tensor(self.centre, dtype=y.dtype, device=y.device)
        return m + self.apply(W, (y - m).reshape(len(y), *self.shape)).reshape(len(y), -1)

    def apply(self, W: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """``(n, c, h, w)`` output of the weights on the padded patches of ``images``."""
        z = patches(images, self.patch, self.boundary).transpose(0, 1)           # (hw, n, k)
        out = torch.bmm(z, W.transpose(1, 2))                                     # (hw, n, c)
        return out.permute(1, 2, 0)


class PatchLinearDenoiser(LocalLinearDenoiser):
    """The MSE-optimal patch-linear denoiser of a target with moments ``(mean, cov)``, one solve per pixel."""

    def __init__(self, mean, cov, shape, patch: int, boundary: str = "zeros"):
        super().__init__(shape, patch, boundary)
        self.centre = validation.mean_vector(mean, dim=int(np.prod(self.shape)))
        self.cov = validation.covariance(cov, dim=len(self.centre))

    def weights(self, sigma):
        gram, cross = patch_moments(self.cov, patch_indices(self.shape, self.patch, self.boundary), sigma)
        return normal_equations(cross, gram)                                 # (hw, c, k)

"""Translation-equivariant (convolutional) linear denoisers from the shift-averaged covariance.

Shift-averaging ``x -> roll(x, s)`` over all ``h w`` circular shifts ``s`` turns the target into a
stationary one (the mixture of the shifted copies) with constant per-channel mean ``mu_bar`` and
autocovariance ``r(o)[c1, c2] = mean_q E (x[c1, q + o] - mu_bar) (x[c2, q] - mu_bar)`` (indices mod ``(h, w)``). The optimal equivariant denoiser is optimal for it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from numerics import validation
from numerics.denoisers import check_width
from numerics.local import LocalLinearDenoiser, image_shape, normal_equations, pad


def shift_average(mean, cov, shape) -> tuple[np.ndarray, np.ndarray]:
    """``(mu_bar (c,), r (h, w, c, c))``: per-channel mean and circular autocovariance of the shift-averaged target.

    The shift average is a mixture of shifted copies: its covariance is the shift average of the second
    moment about ``mu_bar``, ``Sigma + (mu - mu_bar)(mu - mu_bar)^T``.
    """
    c, h, w = image_shape(shape)
    mean = validation.mean_vector(mean, dim=c * h * w)
    cov = validation.covariance(cov, dim=len(mean))
    mu_bar = mean.reshape(c, h * w).mean(axis=1)
    spread = mean - np.repeat(mu_bar, h * w)                               # a non-constant mean varies over shifts
    cov = cov + np.outer(spread, spread)                                   # second moment about mu_bar
    T = cov.reshape(c, h, w, c, h, w).transpose(1, 2, 4, 5, 0, 3)        # (p1, p2, q1, q2, c1, c2)
    a, b, u, v = np.meshgrid(np.arange(h), np.arange(w), np.arange(h), np.arange(w), indexing="ij")
    r = T[(u + a) % h, (v + b) % w, u, v].mean(axis=(2, 3))             # average over positions q
    return mu_bar, r


def spectrum(r: np.ndarray) -> np.ndarray:
    """``S(omega) = sum_o r(o) exp(-i omega . o)`` per frequency: ``(h, w, c, c)`` Hermitian blocks."""
    return np.fft.fft2(r, axes=(0, 1))


class FourierWienerDenoiser:
    """The optimal translation-equivariant linear denoiser (circular): ``x_hat(omega) = S (S + sigma^2)^{-1} y_hat``."""

    def __init__(self, mean, cov, shape):
        self.shape = image_shape(shape)
        self.mean, r = shift_average(mean, cov, self.shape)
        self.S = torch.as_tensor(spectrum(r))

    def gain(self, sigma: float) -> torch.Tensor:
        """Per-frequency ``(h, w, c, c)`` gain ``S (S + sigma^2 I)^{-1}``."""
        c = self.shape[0]
        noisy = self.S + sigma**2 * torch.eye(c, dtype=self.S.dtype)
        return torch.linalg.solve(noisy, self.S, left=False)            # X noisy = S

    def __call__(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        check_width(y, int(np.prod(self.shape)))
        sigma = validation.positive(sigma, "sigma")
        mean = torch.as_tensor(self.mean, dtype=y.dtype, device=y.device)[:, None, None]
        centred = y.reshape(len(y), *self.shape) - mean
        y_hat = torch.fft.fft2(centred).permute(0, 2, 3, 1)                 # (n, h, w, c)
        G = self.gain(sigma).to(device=y.device, dtype=y_hat.dtype)
        x_hat = torch.einsum("hwab,nhwb->nahw", G, y_hat)
        return (torch.fft.ifft2(x_hat).real + mean).reshape(len(y), -1)


def stationary_patch_moments(r: np.ndarray, p: int, sigma: float):
    """Gram ``r(o - o') + sigma^2 I`` and cross ``r(-o)`` of a ``p x p`` patch under the stationary law."""
    h, w, c, _ = r.shape
    offsets = np.arange(p) - (p - 1) // 2
    oa, ob = (g.ravel() for g in np.meshgrid(offsets, offsets, indexing="ij"))  # row-major offsets
    block = r[(oa[:, None] - oa[None]) % h, (ob[:, None] - ob[None]) % w]       # (p2, p2, c, c)
    gram = block.transpose(2, 0, 3, 1).reshape(c * p * p, c * p * p)          # channel-major entries
    gram = gram + sigma**2 * np.eye(c * p * p)
    cross = r[(-oa) % h, (-ob) % w].transpose(1, 2, 0).reshape(c, c * p * p)  # Cov(x[c1, q], y[c2, q + o])
    return gram, cross


class KernelDenoiser(LocalLinearDenoiser):
    """The optimal ``p x p`` convolution kernel for the shift-averaged target, applied with a boundary rule.

    ``D(y) = mu_bar + W * pad(y - mu_bar)``: one kernel ``W`` (``c x c p^2``) at every pixel, so zero
    padding pads the centred image (with the mean).
    """

    def __init__(self, mean, cov, shape, patch: int, boundary: str = "circular"):
        super().__init__(shape, patch, boundary)
        mu_bar, self.r = shift_average(mean, cov, self.shape)
        self.centre = np.repeat(mu_bar, self.shape[1] * self.shape[2])

    def kernel(self, sigma: float) -> np.ndarray:
        """The ``(c, c p^2)`` kernel from the normal equations on the stationary autocovariance."""
        gram, cross = stationary_patch_moments(self.r, self.patch, sigma)
        return normal_equations(cross, gram)

    def weights(self, sigma):
        return self.kernel(sigma)

    def apply(self, W, images):
        """One kernel everywhere: a convolution (cross-correlation) of the padded image."""
        c, p = self.shape[0], self.patch
        return F.conv2d(pad(images, p, self.boundary), W.reshape(c, c, p, p))

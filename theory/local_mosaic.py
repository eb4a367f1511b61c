"""Result: the patch-memorizing machines (LS, ELS) and the local copies they generate.

For training images ``x^1..x^n`` and a noisy image ``y``, the local score (LS) machine sets output
pixel ``i`` to the posterior mean of ``x_i`` given ``y_{N(i)}`` when the atoms are the training
patches at position ``i``; the equivariant local score (ELS) machine pools the training patches at
every position. Bayes' rule makes each a softmax over patches, evaluated here by brute force.
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from scipy.special import logsumexp

from numerics import validation
from theory.local import check_geometry
from theory.result import Result

NUMPY_PAD = {"zeros": "constant", "circular": "wrap", "reflect": "reflect"}


def image_patches(images, shape, patch: int, boundary: str) -> np.ndarray:
    """``(n, h w, c p^2)`` padded patches of ``(n, d)`` images, channel-major, by explicit index loops."""
    (c, h, w), p = check_geometry(shape, patch, boundary)
    images = validation.finite_array(images, "images", ndim=2)
    if images.shape[1] != c * h * w:
        raise ValueError(f"images must have c h w = {c * h * w} columns for shape {shape}, got {images.shape[1]}")
    r = (p - 1) // 2
    padded = np.pad(images.reshape(-1, c, h, w), ((0, 0), (0, 0), (r, r), (r, r)), mode=NUMPY_PAD[boundary])
    out = np.empty((len(images), h * w, c * p * p))
    for a in range(h):
        for b in range(w):
            out[:, a * w + b] = padded[:, :, a:a + p, b:b + p].reshape(len(images), -1)
    return out


def _posterior(z, atoms, sigma_value):
    """Posterior weights over ``atoms`` (m, k) for each noisy patch in ``z`` (q, k)."""
    logits = -((z[:, None, :] - atoms[None]) ** 2).sum(axis=2) / (2 * sigma_value**2)
    return np.exp(logits - logsumexp(logits, axis=1, keepdims=True))


def _pools(train, shape, patch, boundary, equivariant):
    T = image_patches(train, shape, patch, boundary)
    return [T.reshape(-1, T.shape[2])] * T.shape[1] if equivariant else [T[:, j] for j in range(T.shape[1])]


def posterior_pixels(y, train, shape, patch: int, boundary: str, sigma_value: float, *, equivariant: bool):
    """Brute-force LS/ELS output and the local copy bound, both ``(n, d)``; also the most likely patch's centre.

    Per pixel: ``D_i(y) = sum_a w_a t_a[centre]``; it lies within ``sum_a w_a |t_a - t_{a*}|[centre]``
    of the centre of the most likely patch ``a*`` (per channel).
    """
    (c, h, w), p = check_geometry(shape, patch, boundary)
    sigma_value = validation.positive(sigma_value, "sigma")
    Z = image_patches(y, shape, p, boundary)
    centre = np.arange(c) * p * p + (p * p - 1) // 2
    out, bound, nearest = (np.empty((len(Z), c, h * w)) for _ in range(3))
    for j, atoms in enumerate(_pools(train, shape, p, boundary, equivariant)):
        weights = _posterior(Z[:, j], atoms, sigma_value)                    # (n, m)
        values = atoms[:, centre]                                            # (m, c)
        best = values[weights.argmax(axis=1)]                                # (n, c)
        out[:, :, j] = weights @ values
        bound[:, :, j] = np.einsum("nm,nmc->nc", weights, np.abs(values[None] - best[:, None]))
        nearest[:, :, j] = best
    return out.reshape(len(Z), -1), bound.reshape(len(Z), -1), nearest.reshape(len(Z), -1)


def patch_distances(images, train, shape, patch: int, boundary: str, *, equivariant: bool) -> np.ndarray:
    """``(n, h w)``: distance of each image patch to the nearest training patch (same position for LS)."""
    Z = image_patches(images, shape, patch, boundary)
    pools = _pools(train, shape, patch, boundary, equivariant)
    return np.stack([np.sqrt(((Z[:, j, None] - pool[None]) ** 2).sum(axis=2).min(axis=1))
                     for j, pool in enumerate(pools)], axis=1)


class PatchMemorizingMachines(Result):
    """Result L3: LS and ELS machines; as sigma -> 0 every output pixel is a local copy.

    .. math:: D_i(y) = \\frac{\\sum_a e^{-\\|y_{N(i)} - t_a\\|^2 / 2\\sigma^2} t_a[i]}{\\sum_a e^{-\\|y_{N(i)} - t_a\\|^2 / 2\\sigma^2}}

    >>> PatchMemorizingMachines().exact
    False
    """

    def __init__(self):
        a, m = sp.symbols("a m", integer=True, positive=True)
        y, sig = sp.Symbol("y_{N(i)}"), sp.Symbol("sigma", positive=True)
        t = sp.IndexedBase("t")
        weight = sp.exp(-(y - t[a]) ** 2 / (2 * sig**2))
        super().__init__(
            name="Patch-memorizing machines (LS and ELS)",
            statement=("The LS machine sets output pixel $i$ to the posterior mean of its value given the noisy "
                       "patch $y_{N(i)}$, the atoms $t_a$ being the $n$ training patches at position $i$; the ELS "
                       "machine pools the training patches at all $hw$ positions (below; $(y - t_a)^2$ stands for "
                       "$\\|y_{N(i)} - t_a\\|^2$, $t_a[i]$ for the centre value). (i) Exact, computable: at a "
                       "finite $\\sigma$ the output pixel lies within $\\sum_a w_a |t_a[i] - t_{a^*}[i]|$ of the "
                       "centre of the most likely patch $a^*$. (ii) Limit $\\sigma \\to 0$: each output pixel is the "
                       "centre of the training patch nearest to its noisy patch (a local copy), so the output is "
                       "assembled from training-patch centres chosen pixel by pixel; for patches small against the "
                       "image it is in general a new image, while a covering circular patch makes LS the global "
                       "memorizer of Result 8 (copies). (iii) Not implied: that every output patch is itself a training patch; the pixels "
                       "of a patch may copy the centres of different training patches (the measured fraction of "
                       "exact patch matches is reported, not claimed)."),
            assumptions=("equal weights on the training patches; Gaussian noise $y = x_0 + \\sigma n$",
                         "odd patch $p \\le \\min(h, w)$, boundary rule applied to noisy and training images alike",
                         "(ii) a limit: the sampler's last denoiser call at $\\sigma_{min} \\to 0$"),
            formulas={"denoiser": sp.Eq(sp.Function("D_i")(y, sig),
                                        sp.Sum(weight * t[a], (a, 1, m)) / sp.Sum(weight, (a, 1, m)))},
            exact=False,
        )

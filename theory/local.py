"""Result: the optimal patch-linear (local affine) denoiser and its exact generated law.

Output pixel ``i`` (all ``c`` channels) may depend only on the noisy values in its neighbourhood
``N(i)``; the MSE problem then splits into one small least-squares problem per pixel, whose normal
equations involve only the blocks ``Sigma_{i, N(i)}`` and ``Sigma_{N(i), N(i)}``. The resulting
``d x d`` map does not commute with ``Sigma``, so its law uses the full-matrix recursion (Result 3).
"""
from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp

from numerics import validation
from theory.linear_law import affine_law
from theory.result import Result
from theory.symbols import sigma

BOUNDARIES = ("zeros", "circular", "reflect")


def check_geometry(shape, patch: int, boundary: str) -> tuple[tuple[int, int, int], int]:
    """``(c, h, w)`` and an odd patch size no larger than the image; a named error otherwise."""
    if len(tuple(shape)) != 3:
        raise ValueError(f"shape must be (channels, height, width), got {shape!r}")
    shape = tuple(validation.positive_int(n, "shape") for n in shape)
    patch = validation.positive_int(patch, "patch")
    validation.choice(boundary, "boundary", BOUNDARIES)
    if patch % 2 == 0 or patch > min(shape[1:]):
        raise ValueError(f"patch must be odd and at most min(h, w) = {min(shape[1:])}, got {patch}")
    return shape, patch


@cache
def neighbourhoods(shape: tuple, patch: int, boundary: str) -> tuple[np.ndarray, ...]:
    """Per pixel, the distinct flat indices (all channels) its padded patch reads.

    ``circular`` wraps the window; ``zeros`` drops the padded entries (constants carry no
    information) and ``reflect`` mirrors them back inside the window, so both read the in-image window.
    """
    (c, h, w), p = check_geometry(shape, patch, boundary)
    r = (p - 1) // 2
    out = []
    for a in range(h):
        for b in range(w):
            if boundary == "circular":
                rows, cols = np.arange(a - r, a + r + 1) % h, np.arange(b - r, b + r + 1) % w
            else:
                rows, cols = np.arange(max(0, a - r), min(h, a + r + 1)), np.arange(max(0, b - r), min(w, b + r + 1))
            pixels = (rows[:, None] * w + cols[None, :]).ravel()
            out.append(np.sort(np.unique((np.arange(c)[:, None] * h * w + pixels[None, :]).ravel())))
    return tuple(out)


def patch_gain(cov_iN: np.ndarray, cov_NN: np.ndarray, sigma_value: float) -> np.ndarray:
    """``G_{i, N(i)} = Sigma_{i, N} (Sigma_{N, N} + sigma^2 I)^{-1}``."""
    return np.linalg.solve(cov_NN + sigma_value**2 * np.eye(len(cov_NN)), cov_iN.T).T


def patch_affine(mean, cov, shape, patch: int, boundary: str, sigma_value: float):
    """``(G, b)`` of the optimal patch-linear denoiser, ``D(y) = G y + b``, as a dense ``d x d`` map."""
    (c, h, w), patch = check_geometry(shape, patch, boundary)
    mean = validation.mean_vector(mean, dim=c * h * w)
    cov = validation.covariance(cov, dim=len(mean))
    sigma_value = validation.positive(sigma_value, "sigma")
    G = np.zeros_like(cov)
    for j, N in enumerate(neighbourhoods((c, h, w), patch, boundary)):
        outputs = j + h * w * np.arange(c)                       # pixel j in every channel
        G[np.ix_(outputs, N)] = patch_gain(cov[np.ix_(outputs, N)], cov[np.ix_(N, N)], sigma_value)
    return G, mean - G @ mean


def patch_law(sampler, grid, mean, cov, shape, patch: int, boundary: str, start):
    """Exact output law of ``sampler`` on ``grid`` with the optimal patch-linear denoiser (full-matrix recursion)."""
    return affine_law(sampler, grid, lambda s: patch_affine(mean, cov, shape, patch, boundary, s), start)


def _derive(k: int = 2) -> tuple[sp.Matrix, sp.Matrix]:
    """Normal equations of ``min E(g^T (x_N + sigma n) + c - x_i)^2`` for a ``k``-entry patch, and the claimed gain."""
    s_iN = sp.Matrix(1, k, lambda _, j: sp.Symbol(f"s_{j}", real=True))
    S_NN = sp.Matrix(k, k, lambda a, b: sp.Symbol(f"S_{min(a, b)}{max(a, b)}", real=True))
    g = sp.Matrix(1, k, lambda _, j: sp.Symbol(f"g_{j}", real=True))
    # E(g^T (x_N - mu_N + sigma n) - (x_i - mu_i))^2 with the offset at its optimum c = mu_i - g^T mu_N
    loss = (g * (S_NN + sigma**2 * sp.eye(k)) * g.T)[0] - 2 * (g * s_iN.T)[0]
    solution = sp.solve([sp.diff(loss, gj) for gj in g], list(g), dict=True)[0]
    return g.subs(solution), s_iN * (S_NN + sigma**2 * sp.eye(k)).inv()


class OptimalPatchDenoiser(Result):
    """Result L1: the MSE-optimal patch-linear denoiser, one normal-equation system per pixel.

    .. math:: G_{i, N(i)} = \\Sigma_{i, N(i)} (\\Sigma_{N(i), N(i)} + \\sigma^2 I)^{-1}, \\quad b_i = \\mu_i - G_{i, N(i)} \\mu_{N(i)}

    >>> OptimalPatchDenoiser().shrinkage
    Sigma_ii/(Sigma_ii + sigma**2)
    """

    def __init__(self):
        solved, claimed = _derive(2)
        assert sp.simplify(solved - claimed) == sp.zeros(1, 2), "normal equations disagree with the block formula"
        one, _ = _derive(1)                                        # N(i) = {i}: s_0 = S_00 = Sigma_ii
        variance = sp.Symbol("Sigma_ii", positive=True)
        object.__setattr__(self, "shrinkage", sp.simplify(one[0].subs({sp.Symbol("s_0", real=True): variance, sp.Symbol("S_00", real=True): variance})))
        k = sp.Symbol("k", integer=True, positive=True)
        s_iN, S_NN = sp.MatrixSymbol("\\Sigma_{i,N(i)}", 1, k), sp.MatrixSymbol("\\Sigma_{N(i),N(i)}", k, k)
        super().__init__(
            name="Optimal patch-linear denoiser",
            statement=("Among affine denoisers whose output pixel $i$ (all channels) depends only on the noisy "
                       "patch $y_{N(i)}$, the MSE optimum solves one normal-equation system per pixel (below). "
                       "$N(i)$ is the set of distinct pixels the padded patch reads: the wrapped window for "
                       "circular padding, the in-image window for zero padding (padded constants carry no "
                       "information) and for reflect padding (mirrored entries repeat pixels of that window), so "
                       "zero and reflect padding give the same optimal map. Its generated law is exactly Gaussian "
                       "and follows the full-matrix recursion of Result 3 (the map does not commute with "
                       "$\\Sigma$). Limits: a patch covering the image (circular, $p = h = w$) gives the global "
                       "Wiener filter of Result 1; a $1 \\times 1$ patch gives per-pixel shrinkage "
                       "$\\Sigma_{ii} / (\\Sigma_{ii} + \\sigma^2)$ (one channel)."),
            assumptions=("$p$ has finite second moments; $\\Sigma_{N(i),N(i)} + \\sigma^2 I \\succ 0$ ($\\sigma > 0$)",
                         "noise $n \\sim \\mathcal{N}(0, I)$ independent of $x_0$; odd patch $p \\le \\min(h, w)$",
                         "boundary rule zeros, circular or reflect, as torch's padding modes"),
            formulas={"gain": sp.Eq(sp.MatrixSymbol("G_{i,N(i)}", 1, k), s_iN * (S_NN + sigma**2 * sp.Identity(k)).I,
                                    evaluate=False),
                      "1x1 patch": sp.Eq(sp.Symbol("G_{ii}"), self.shrinkage)},
        )

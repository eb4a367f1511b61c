"""Result: the translation-equivariant (circular convolution) linear denoiser and its law per Fourier mode.

A denoiser that commutes with every circular shift ``P_s`` has ``E|D(y) - x|^2 = E|D(P_s y) - P_s x|^2``,
so its risk depends on the target only through the mixture of its ``h w`` circular shifts: it is
optimal for that stationarized target, whose covariance ``(1/hw) sum_s P_s (Sigma + (mu - mu_bar)(mu - mu_bar)^T) P_s^T``
is diagonal (per channel block) in the unitary Fourier basis with blocks ``S(omega)``. Every step of every sampler then acts per mode.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from numerics import validation
from theory.finite_step import GaussianLaw, propagate, step_affine
from theory.linear_law import affine_law
from theory.local import check_geometry, neighbourhoods, patch_gain
from theory.result import Result
from theory.symbols import sigma


def stationary_spectrum(mean, cov, shape) -> tuple[np.ndarray, np.ndarray]:
    """``(mu_bar (c,), S (h, w, c, c))``: the diagonal blocks of ``F Sigma_bar F^H`` (unitary 2-D DFT ``F``).

    ``Sigma_bar = Sigma + (mu - mu_bar)(mu - mu_bar)^T`` is the second moment about the constant mean.

    .. math:: S(\\omega) = \\frac{1}{hw} \\sum_{p, q} e^{-i \\omega \\cdot (p - q)} \\bar\\Sigma_{p, q}
    """
    c, h, w = shape
    mean = validation.mean_vector(mean, dim=c * h * w)
    mu_bar = mean.reshape(c, h * w).mean(axis=1)
    spread = mean - np.repeat(mu_bar, h * w)          # the shifted copies' means spread around mu_bar
    cov = (validation.covariance(cov, dim=len(mean)) + np.outer(spread, spread)).reshape(c, h, w, c, h, w)
    both = np.fft.ifft2(np.fft.fft2(cov, axes=(1, 2)), axes=(4, 5))  # F_p Sigma F_q^H up to 1/hw * hw
    k1, k2 = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    S = both[:, k1, k2][:, :, :, :, k1, k2]                              # keep omega_p == omega_q
    S = np.einsum("ahwbhw->hwab", S)
    return mu_bar, S


class Blocks:
    """Per-mode ``c x c`` complex blocks: the algebra of ``theory.finite_step.propagate`` in the Fourier basis."""

    def __init__(self, c: int, modes: int):
        self.c, self.modes = c, modes

    def identity(self, _):
        return np.broadcast_to(np.eye(self.c, dtype=complex), (self.modes, self.c, self.c)).copy()

    @staticmethod
    def mul(A, B):
        return A @ B

    @staticmethod
    def apply(A, v):
        return np.einsum("mab,mb->ma", A, v)

    @staticmethod
    def congruence(A, C):
        return A @ C @ np.conj(np.swapaxes(A, 1, 2))

    @staticmethod
    def gram(Q):
        return Q @ np.conj(np.swapaxes(Q, 1, 2))

    @staticmethod
    def plus_identity(A, c: float):
        """``A + c I`` in every block."""
        A = np.array(A, dtype=complex, copy=True)
        A[:, np.arange(A.shape[1]), np.arange(A.shape[1])] += c
        return A

    def advance(self, sampler, to_zero, coefficients, levels, m, C):
        """One step of ``(m, C)`` per Fourier mode: ``m <- A m + c``, ``C <- A C A^H + Q Q^H``."""
        A, c, Q = step_affine(coefficients, levels, self)
        C = self.congruence(A, C)
        if Q is not None:                 # a float q means q I: q^2 on every block's diagonal
            C = self.plus_identity(C, Q * Q) if isinstance(Q, float) else C + self.gram(Q)
        return self.apply(A, m) + c, C


@dataclass(frozen=True)
class FourierLaw:
    """A stationary Gaussian on ``(c, h, w)`` images: unitary-Fourier mean ``(hw, c)`` and blocks ``(hw, c, c)``."""

    shape: tuple
    mean_hat: np.ndarray
    blocks: np.ndarray

    def mean_image(self) -> np.ndarray:
        c, h, w = self.shape
        return (np.fft.ifft2(self.mean_hat.T.reshape(c, h, w)) * np.sqrt(h * w)).real.ravel()

    def autocovariance(self) -> np.ndarray:
        """``r(o)[c1, c2] = Cov(x[c1, q + o], x[c2, q])``, ``(h, w, c, c)``: inverse DFT of the blocks."""
        c, h, w = self.shape
        return np.fft.ifft2(self.blocks.reshape(h, w, c, c), axes=(0, 1)).real

    def covariance(self) -> np.ndarray:
        """The dense ``d x d`` covariance (small images only)."""
        c, h, w = self.shape
        r = self.autocovariance()
        a, b = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        da = (a.ravel()[:, None] - a.ravel()[None]) % h
        db = (b.ravel()[:, None] - b.ravel()[None]) % w
        return r[da, db].transpose(2, 0, 3, 1).reshape(c * h * w, c * h * w)

    def gaussian(self) -> GaussianLaw:
        return GaussianLaw(self.mean_image(), self.covariance())


def wiener_gain(S: np.ndarray, sigma_value: float) -> np.ndarray:
    """Per-mode ``S (S + sigma^2 I)^{-1}``, ``(hw, c, c)``."""
    noisy = S + sigma_value**2 * np.eye(S.shape[-1])
    return np.swapaxes(np.linalg.solve(np.swapaxes(noisy, 1, 2), np.swapaxes(S, 1, 2)), 1, 2)


def optimal_kernel(S: np.ndarray, shape, patch: int, sigma_value: float) -> np.ndarray:
    """The optimal circular ``p x p`` kernel as an image ``k (c, c, h, w)``: ``D(y)[p] = sum_q k(q) y[p + q]``.

    The normal equations of pixel 0 (Result L1) for the stationarized covariance, whose entries are
    ``r(p - q)``; every pixel gets the same kernel.
    """
    (c, h, w), patch = check_geometry(shape, patch, "circular")
    r = np.fft.ifft2(S.reshape(h, w, c, c), axes=(0, 1)).real            # autocovariance r(o)
    N = neighbourhoods((c, h, w), patch, "circular")[0]
    ch, pix = N // (h * w), N % (h * w)

    def entries(rows_c, rows_p, cols_c, cols_p):                          # Sigma_bar[(c1, p), (c2, q)] = r(p - q)
        da = (rows_p[:, None] // w - cols_p[None] // w) % h
        db = (rows_p[:, None] % w - cols_p[None] % w) % w
        return r[da, db, rows_c[:, None], cols_c[None]]

    outputs = np.arange(c)
    gain = patch_gain(entries(outputs, np.zeros(c, int), ch, pix), entries(ch, pix, ch, pix), sigma_value)
    kernel = np.zeros((c, c, h * w))
    kernel[:, ch, pix] = gain
    return kernel.reshape(c, c, h, w)


def kernel_gain(kernel: np.ndarray) -> np.ndarray:
    """Per-mode gain of the circular convolution: ``sum_q k(q) e^{+i omega . q}``, ``(hw, c, c)``."""
    c, _, h, w = kernel.shape
    return (np.fft.ifft2(kernel) * h * w).reshape(c, c, h * w).transpose(2, 0, 1)


def equivariant_law(sampler, grid, mean, cov, shape, start: str = "prior", patch: int | None = None) -> FourierLaw:
    """Exact output law of ``sampler`` with the optimal circular equivariant denoiser (``patch=None``: unrestricted).

    Per Fourier mode, no ``d x d`` matrix: the recursion of Result 3 on ``c x c`` blocks.
    """
    (c, h, w), _ = check_geometry(shape, 1, "circular")
    validation.choice(start, "start", ("prior", "marginal"))
    mu_bar, S = stationary_spectrum(mean, cov, (c, h, w))
    S = S.reshape(h * w, c, c)
    mu_hat = np.zeros((h * w, c), dtype=complex)
    mu_hat[0] = np.sqrt(h * w) * mu_bar                                      # a constant image lives at omega = 0

    def affine(sigma_value):
        G = wiener_gain(S, sigma_value) if patch is None else kernel_gain(optimal_kernel(S, shape, patch, sigma_value))
        return G, mu_hat - Blocks.apply(G, mu_hat)

    eye = np.broadcast_to(np.eye(c), S.shape)
    if start == "prior":
        initial = GaussianLaw(np.zeros_like(mu_hat), grid.prior_std**2 * eye.astype(complex))
    else:
        initial = GaussianLaw(grid.s[0] * mu_hat, grid.s[0] ** 2 * (S + grid.sigma[0] ** 2 * eye))
    law = propagate(sampler, grid, affine, initial, Blocks(c, h * w))
    return FourierLaw((c, h, w), law.mean, law.cov)


def shift_average_is_fourier_diagonal(n: int = 3) -> bool:
    """Sympy, 1-D circular ``n``: ``F (avg_s P_s C P_s^T) F^H`` is diagonal with the diagonal of ``F C F^H``."""
    C = sp.Matrix(n, n, lambda a, b: sp.Symbol(f"C_{min(a, b)}{max(a, b)}", real=True))
    shift = sp.Matrix(n, n, lambda a, b: 1 if (a - b) % n == 1 else 0)
    average = sum((shift**k * C * (shift**k).T for k in range(n)), sp.zeros(n, n)) / n
    F = sp.Matrix(n, n, lambda a, b: sp.exp(-2 * sp.pi * sp.I * a * b / n)) / sp.sqrt(n)
    left, right = F * average * F.H, F * C * F.H
    diagonal = all(sp.simplify(sp.expand_complex(left[a, b] - (right[a, a] if a == b else 0))) == 0
                   for a in range(n) for b in range(n))
    return bool(diagonal)


class EquivariantWienerLaw(Result):
    """Result L2: the optimal circular equivariant linear denoiser and its generated law, per Fourier mode.

    .. math:: \\hat D(\\omega) = S(\\omega) (S(\\omega) + \\sigma^2 I)^{-1}, \\quad S(\\omega) = \\sum_o \\bar r(o) e^{-i \\omega \\cdot o}

    >>> EquivariantWienerLaw().derived
    True
    """

    def __init__(self):
        object.__setattr__(self, "derived", shift_average_is_fourier_diagonal(3))
        omega, o = sp.symbols("omega o")
        S, D_hat, k = (sp.Function(f)(omega) for f in ("S", "\\hat{D}", "\\hat{k}"))
        r_bar, R = sp.Function("\\bar{r}")(o), sp.Symbol("R", integer=True, nonnegative=True)
        super().__init__(
            name="Circular translation-equivariant linear denoiser",
            statement=("A linear denoiser that commutes with every circular shift has the same risk under the "
                       "target and under its shift average, so the optimal one is the Wiener filter of the "
                       "stationarized target (the mixture of all circular shifts): per-channel mean $\\bar\\mu$ and "
                       "autocovariance $\\bar r(o) = \\frac{1}{hw}\\sum_q \\mathbb{E}(x_{q + o} - \\bar\\mu)"
                       "(x_q - \\bar\\mu)^\\top$ (a non-constant mean adds its spread), diagonal in the unitary "
                       "Fourier basis with $c \\times c$ blocks $S(\\omega)$ (the diagonal of $F \\Sigma F^H$; "
                       "checked with sympy). With a $p \\times p$ support the optimal kernel solves the "
                       "patch normal equations (optimal patch-linear denoiser) on $\\bar r$ and acts per mode by its transform "
                       "$\\hat k(\\omega) = \\sum_o k(o) e^{i \\omega \\cdot o}$. Either way every sampler step acts "
                       "per mode, so the generated law is exactly a stationary Gaussian: mean $\\bar\\mu$ pushed "
                       "through the recursion at $\\omega = 0$, power spectrum $S(\\omega)$ passed through the "
                       "sampler's per-mode gains (Result 3 on $c \\times c$ blocks; fast at any image size). "
                       "Zero or reflect padding break the shift symmetry: their outputs are not stationary."),
            assumptions=("circular boundary; $\\sigma > 0$; finite second moments",
                         "Gaussian start whose covariance is stationary (the prior $\\sigma_{max}^2 I$ or the "
                         "stationarized marginal)", "assumptions of Result 3 on the sampler and grid"),
            formulas={"spectrum": sp.Eq(S, sp.Sum(r_bar * sp.exp(-sp.I * omega * o), (o, 0, sp.Symbol("n") - 1))),
                      "gain": sp.Eq(D_hat, S / (S + sigma**2)),
                      "kernel gain": sp.Eq(k, sp.Sum(sp.Function("k")(o) * sp.exp(sp.I * omega * o), (o, -R, R)))},
        )


def kernel_matrix(kernel: np.ndarray, boundary: str) -> np.ndarray:
    """The dense ``d x d`` map of the kernel applied with a boundary rule (``zeros`` drops, ``reflect`` mirrors)."""
    c, _, h, w = kernel.shape
    offsets = [(oa, ob) for oa in range(-(h // 2), h - h // 2) for ob in range(-(w // 2), w - w // 2)
               if np.any(kernel[:, :, oa % h, ob % w])]
    G = np.zeros((c, h, w, c, h, w))
    for a in range(h):
        for b in range(w):
            for oa, ob in offsets:
                qa, qb = _boundary_index(a + oa, h, boundary), _boundary_index(b + ob, w, boundary)
                if qa is not None and qb is not None:
                    G[:, a, b, :, qa, qb] += kernel[:, :, oa % h, ob % w]
    return G.reshape(c * h * w, c * h * w)


def _boundary_index(q: int, n: int, boundary: str) -> int | None:
    """Where padded position ``q`` reads from in ``0..n-1``; ``None`` for a zero-padded entry."""
    if 0 <= q < n:
        return q
    if boundary == "circular":
        return q % n
    if boundary == "reflect":
        return -q if q < 0 else 2 * (n - 1) - q
    return None


def padded_kernel_law(sampler, grid, mean, cov, shape, patch: int, boundary: str, start) -> GaussianLaw:
    """Exact law of the optimal circular kernel applied with another boundary rule: ``mu_bar + K (y - mu_bar)``."""
    (c, h, w), patch = check_geometry(shape, patch, boundary)
    mu_bar, S = stationary_spectrum(mean, cov, (c, h, w))
    centre = np.repeat(mu_bar, h * w)

    def affine(sigma_value):
        K = kernel_matrix(optimal_kernel(S.reshape(h * w, c, c), shape, patch, sigma_value), boundary)
        return K, centre - K @ centre

    return affine_law(sampler, grid, affine, start)

"""A generated stationary Gaussian texture and a calibrated test of stationarity of sampler outputs."""
from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

from verify.check import Check

CORRELATION_LENGTH = 1.5  # pixels; power spectrum (1 + (l |omega|)^2)^-2, unit pixel variance


def texture(size: int, length: float = CORRELATION_LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, cov)`` of a zero-mean stationary Gaussian texture on a ``size x size`` torus, ``d = size^2``."""
    omega = 2 * np.pi * np.fft.fftfreq(size)
    power = (1 + length**2 * (omega[:, None] ** 2 + omega[None, :] ** 2)) ** -2.0
    r = np.fft.ifft2(power / power.mean()).real                           # autocovariance, r(0) = 1
    a, b = np.divmod(np.arange(size * size), size)
    cov = r[(a[:, None] - a[None]) % size, (b[:, None] - b[None]) % size]
    return np.zeros(size * size), 0.5 * (cov + cov.T)


def stationarity_check(name, x, law, shape, level: float, *, stationary: bool) -> Check:
    """Corner vs centre pixel variance: ``z = (s_a^2 - s_b^2) / SE``, SE from the predicted Gaussian law.

    ``Var(s_a^2 - s_b^2) = 2 (C_aa^2 + C_bb^2 - 2 C_ab^2) / (n - 1)`` for Gaussian samples (asymptotically
    normal). ``stationary=True`` passes when equality is not rejected at ``level``; ``False`` (a power
    check) passes when it is, and shows the difference the law predicts.
    """
    _, h, w = shape
    a, b = 0, (h // 2) * w + w // 2
    C = law.covariance()
    n = len(x)
    se = np.sqrt(2 * (C[a, a] ** 2 + C[b, b] ** 2 - 2 * C[a, b] ** 2) / (n - 1))
    measured = np.var(x[:, a], ddof=1) - np.var(x[:, b], ddof=1)
    z = float(measured / se)
    p_value = float(2 * scipy_stats.norm.sf(abs(z)))
    predicted = C[a, a] - C[b, b]
    if stationary:
        return Check(f"{name}: stationary (corner vs centre variance)", z, p_value, p_value >= level,
                     f"difference {predicted:.3g}", f"{measured:.3g} (z = {z:.2f})", f"p >= {level:.3g}")
    return Check(f"{name}: not stationary (corner vs centre variance)", z, p_value, p_value < level,
                 f"difference {predicted:.3g} (z ~ {predicted / se:.1f})", f"{measured:.3g} (z = {z:.2f})",
                 f"p < {level:.3g} (power check)")

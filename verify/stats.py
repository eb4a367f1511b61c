"""Tests of samples ``x`` (shape ``(n, d)``) against a fully known Gaussian law N(m, C), C possibly singular.

Every stochastic test works in the range of C, on the whitened coordinates
``w = Lambda_r^{-1/2} U_r^T (x - m)``, which are exactly i.i.d. N(0, I_r) under the null
hypothesis; the null space of C is checked deterministically. ``gaussian_checks`` runs them
all with a Bonferroni split of the family-wise level ``alpha``; the effect sizes
(``relative_cov_error``, ``bures_wasserstein``, ``gaussian_kl``, ``effect_sizes``) say how far
off the samples are, with no test attached.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats

from numerics.validation import covariance, finite_array, mean_vector
from verify.check import Check

RANK_RTOL = 1e-12
"""Eigenvalues <= RANK_RTOL * (largest eigenvalue) (plus the smallest normal float) span the null space."""

NULL_RTOL = 1e-6
"""Default null-space tolerance, relative to the data scale sqrt(largest eigenvalue) + max |m|."""


class StatResult(NamedTuple):
    """What one stochastic test found: its statistic, p-value and short summaries."""

    statistic: float
    p_value: float
    predicted: str
    measured: str


def split_range(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of the range of ``cov``, and an orthonormal basis of its null space."""
    values, vectors = np.linalg.eigh(cov)
    largest = max(values[-1], 0.0) if values.size else 0.0
    in_range = values > RANK_RTOL * largest + np.finfo(float).tiny
    return values[in_range], vectors[:, in_range], vectors[:, ~in_range]


def whiten(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``w = Lambda_r^{-1/2} U_r^T (x - m)`` (n, r) and the null-space coordinates ``U_null^T (x - m)``."""
    values, vectors, null_vectors = split_range(cov)
    centred = x - mean
    return (centred @ vectors) / np.sqrt(values), centred @ null_vectors


def _two_sided_chi2(statistic: float, df: float) -> float:
    """Two-sided chi-square p-value ``2 min(F, 1 - F)``, capped at 1."""
    return float(min(1.0, 2.0 * min(stats.chi2.cdf(statistic, df), stats.chi2.sf(statistic, df))))


def _two_sided_normal(z):
    """Two-sided standard normal p-value ``2 (1 - Phi(|z|))``."""
    return 2.0 * stats.norm.sf(np.abs(z))


class Whitened(NamedTuple):
    """What the stochastic tests read of whitened samples ``w`` (n, r): counts and power sums, mergeable by addition."""

    n: int
    s1: np.ndarray       # sum_i w_i
    scatter: np.ndarray  # sum_i (w_i - mean w)(w_i - mean w)^T
    s3: np.ndarray       # sum_i w_i^3, per coordinate
    s4: np.ndarray       # sum_i w_i^4, per coordinate
    q4: float            # sum_i |w_i|^4

    @classmethod
    def of(cls, w: np.ndarray) -> "Whitened":
        centred = w - w.mean(axis=0)
        return cls(w.shape[0], w.sum(axis=0), centred.T @ centred, np.sum(w**3, axis=0), np.sum(w**4, axis=0),
                   float(np.sum(np.sum(w**2, axis=1) ** 2)))

    @property
    def r(self) -> int:
        return len(self.s1)


def _whitened(w) -> Whitened:
    return w if isinstance(w, Whitened) else Whitened.of(np.asarray(w, dtype=np.float64))


def mean_test(w) -> StatResult:
    """Mean test: ``n |mean(w)|^2 ~ chi2(r)`` exactly under H0 (``w`` samples or their ``Whitened`` sums)."""
    m = _whitened(w)
    n, r = m.n, m.r
    statistic = float(np.sum(m.s1**2) / n)
    return StatResult(statistic, float(stats.chi2.sf(statistic, r)),
                      f"n|mean w|^2 ~ chi2({r}), mean {r}", f"{statistic:.4g}")


def bartlett_factor(n: int, r: int) -> float:
    """Bartlett factor ``rho = 1 - (2r^2 + 3r - 1) / (6 (n - 1)(r + 1))`` for testing Sigma = Sigma0.

    Anderson (2003), An Introduction to Multivariate Statistical Analysis, Sec. 10.8; Muirhead
    (1982), Thm 8.4.7; Morrison (1990) p. 292.  It makes the modified LRT chi2 to O(n^-2).
    """
    return 1.0 - (2 * r * r + 3 * r - 1) / (6.0 * (n - 1) * (r + 1))


def covariance_lrt_test(w, *, bartlett: bool = True) -> StatResult:
    """Modified LRT of Cov(w) = I, mean estimated: ``rho (n-1) sum(l - 1 - ln l) ~ chi2(r(r+1)/2)``.

    ``l`` are the eigenvalues of the unbiased sample covariance S = A / (n - 1) of ``w``.
    """
    m = _whitened(w)
    n, r = m.n, m.r
    ell = np.linalg.eigvalsh(m.scatter / (n - 1))
    if np.min(ell) <= 0.0:  # collapsed sample covariance: infinitely far from I
        statistic = math.inf
    else:
        excess = ell - 1.0  # log1p is accurate near l = 1, log near l = 0
        terms = np.where(ell < 0.5, excess - np.log(ell), excess - np.log1p(np.maximum(excess, -0.5)))
        statistic = float((n - 1) * np.sum(terms))
    statistic *= bartlett_factor(n, r) if bartlett else 1.0
    df = r * (r + 1) // 2
    return StatResult(statistic, float(stats.chi2.sf(statistic, df)), f"chi2({df}), mean {df}",
                      f"{statistic:.4g}")


def covariance_trace_test(w) -> StatResult:
    """Scale test: ``sum_i |w_i - mean(w)|^2 ~ chi2((n-1) r)`` exactly; two-sided p-value."""
    m = _whitened(w)
    n, r = m.n, m.r
    statistic = float(np.trace(m.scatter))
    df = (n - 1) * r
    return StatResult(statistic, _two_sided_chi2(statistic, df), "trace ratio 1",
                      f"trace ratio {statistic / df:.5g}")


def eigen_variance_test(w) -> StatResult:
    """Per eigen-direction j: ``(n-1) var(w_j) ~ chi2(n-1)``; two-sided, Bonferroni ``min(1, r min p_j)``.

    The statistic is the worst ``|var(w_j) - 1|`` (variance ratio to the predicted eigenvalue).
    """
    m = _whitened(w)
    n, r = m.n, m.r
    sums = np.diag(m.scatter)
    p_values = 2.0 * np.minimum(stats.chi2.cdf(sums, n - 1), stats.chi2.sf(sums, n - 1))
    ratios = sums / (n - 1)
    worst = int(np.argmax(np.abs(ratios - 1.0)))
    return StatResult(float(abs(ratios[worst] - 1.0)), float(min(1.0, r * np.min(p_values))),
                      "variance ratios 1", f"worst variance ratio {ratios[worst]:.5g} (direction {worst})")


def _lognormal_z(mean_value, expected: float, variance: float, n: int):
    """z of a positive sample mean (mean ``expected``, variance ``variance / n``) under a moment-matched lognormal.

    ``s^2 = ln(1 + variance / (n expected^2))``, ``z = (ln mean_value - ln expected + s^2 / 2) / s``. Means of
    fourth powers are right-skewed (skewness ~10/sqrt(n) for w^4): a plain normal z over-rejects.
    """
    s2 = math.log1p(variance / (n * expected**2))
    with np.errstate(divide="ignore"):
        return (np.log(mean_value) - math.log(expected) + 0.5 * s2) / math.sqrt(s2)


def _symmetric_edgeworth_p(z, excess_kurtosis: float):
    """Two-sided p of a symmetric statistic with that excess kurtosis, Edgeworth to O(1/n):

    ``P(|Z| > t) = 2 [1 - Phi(t) + phi(t) kappa (t^3 - 3t) / 24]`` with ``t = |z|``, clipped to [0, 1].
    """
    t = np.abs(z)
    tail = stats.norm.sf(t) + stats.norm.pdf(t) * excess_kurtosis * (t**3 - 3.0 * t) / 24.0
    return np.clip(2.0 * tail, 0.0, 1.0)


def mardia_kurtosis_test(w) -> StatResult:
    """Mardia kurtosis with known parameters: ``b = mean(|w|^4)``, ``E b = r(r+2)``, two-sided lognormal z.

    ``|w|^2 ~ chi2(r)``, so ``Var(|w|^4) = r(r+2)(r+4)(r+6) - (r(r+2))^2``; z from ``_lognormal_z``
    (the plain ``(b - E) / sqrt(Var / n)`` is also reported). The statistic is z. With known
    parameters it also reacts to a scale error (b grows as scale^2): read it with the covariance tests.
    """
    m = _whitened(w)
    n, r = m.n, m.r
    expected = r * (r + 2.0)
    variance = expected * (r + 4.0) * (r + 6.0) - expected**2
    b = m.q4 / n
    z = float(_lognormal_z(b, expected, variance, n))
    plain = (b - expected) / math.sqrt(variance / n)
    return StatResult(z, float(_two_sided_normal(z)), f"mean |w|^4 = {expected:g}",
                      f"{b:.5g} (z = {z:.3g}, plain z = {plain:.3g})")


def marginal_moment_test(w) -> StatResult:
    """Marginal skewness/kurtosis, known parameters: ``mean(w_j^3)`` (var 15/n), ``mean(w_j^4)`` (mean 3, var 96/n).

    Skewness: z = mean(w^3) / sqrt(15/n), Edgeworth p (excess kurtosis of w^3 is 9720/225 = 43.2, /n);
    kurtosis: ``_lognormal_z``. Bonferroni over the 2r p-values; the statistic is the worst |z|.
    """
    m = _whitened(w)
    n, r = m.n, m.r
    skew_z = m.s3 / n / math.sqrt(15.0 / n)
    fourth = m.s4 / n
    z = np.concatenate([skew_z, _lognormal_z(fourth, 3.0, 96.0, n)])
    p_values = np.concatenate([_symmetric_edgeworth_p(skew_z, 43.2 / n), _two_sided_normal(z[r:])])
    worst = int(np.argmin(p_values))
    j = worst % r
    value = f"skewness {m.s3[j] / n:.3g}" if worst < r else f"excess kurtosis {fourth[j] - 3.0:.3g}"
    return StatResult(float(abs(z[worst])), float(min(1.0, 2 * r * p_values[worst])),
                      "skewness 0, excess kurtosis 0", f"worst: {value} (direction {j}, z = {z[worst]:.3g})")


STOCHASTIC_TESTS = {
    "mean": mean_test,
    "covariance LRT": covariance_lrt_test,
    "covariance trace": covariance_trace_test,
    "eigen-direction variances": eigen_variance_test,
    "Gaussianity (Mardia kurtosis)": mardia_kurtosis_test,
    "Gaussianity (marginal skewness/kurtosis)": marginal_moment_test,
}
"""The stochastic tests run by ``gaussian_checks``; the level alpha is split equally over them."""


def _samples(x, d: int | None = None, minimum: int = 2) -> np.ndarray:
    """Return ``x`` as a finite (n, d) float64 array with at least ``minimum`` rows, or raise naming x."""
    x = finite_array(x, "x", ndim=2)
    if d is not None and x.shape[1] != d:
        raise ValueError(f"x must have {d} columns to match the mean, got shape {x.shape}")
    if x.shape[0] < minimum:
        raise ValueError(f"x must have at least {minimum} samples (rows), got {x.shape[0]}")
    return x


def _validated(x, mean, cov) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``(x, mean, cov)``: mean fixes d, cov must be d x d symmetric PSD, x finite (n, d)."""
    mean = mean_vector(mean, "mean")
    cov = covariance(cov, "cov", dim=mean.shape[0])
    return _samples(x, mean.shape[0]), mean, cov


def _level(value, name: str) -> float:
    """Return ``value`` as a float in the open interval (0, 1), or raise naming it."""
    number = float(value)
    if not 0.0 < number < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return number


class SampleMoments(NamedTuple):
    """Sufficient statistics of samples ``x`` (n, d) against a known law N(m, C): everything ``gaussian_checks``
    and ``effect_sizes`` read. ``sums()``/``from_sums`` pack them into raw sums that merge exactly by addition
    (``null_deviation`` by maximum), e.g. an ``all_reduce`` over processes that each drew a range of samples.
    """

    whitened: Whitened
    centred_sum: np.ndarray      # sum_i (x_i - m)
    scatter: np.ndarray          # sum_i (x_i - mean x)(x_i - mean x)^T
    null_deviation: float        # max_i |U_null^T (x_i - m)|

    @classmethod
    def of(cls, x, mean, cov) -> "SampleMoments":
        x, mean, cov = _validated(x, mean, cov)
        w, null_coords = whiten(x, mean, cov)
        centred = x - x.mean(axis=0)
        deviation = float(np.max(np.linalg.norm(null_coords, axis=1))) if null_coords.shape[1] else 0.0
        return cls(Whitened.of(w), np.sum(x - mean, axis=0), centred.T @ centred, deviation)

    @property
    def n(self) -> int:
        return self.whitened.n

    def sample_mean(self, mean) -> np.ndarray:
        return mean + self.centred_sum / self.n

    def sample_cov(self) -> np.ndarray:
        """Unbiased sample covariance."""
        return self.scatter / (self.n - 1)

    def sums(self) -> np.ndarray:
        """``[n, sum w, sum w w^T, sum w^3, sum w^4, sum |w|^4, sum (x - m), sum (x - m)(x - m)^T]``, flat float64."""
        w, n, e = self.whitened, self.n, self.centred_sum
        return np.concatenate([[n], w.s1, (w.scatter + np.outer(w.s1, w.s1) / n).ravel(), w.s3, w.s4, [w.q4],
                               e, (self.scatter + np.outer(e, e) / n).ravel()])

    @classmethod
    def from_sums(cls, sums: np.ndarray, r: int, d: int, null_deviation: float) -> "SampleMoments":
        """Inverse of ``sums`` for a range of dimension ``r`` in ``R^d`` (recentres the outer products)."""
        sizes = (1, r, r * r, r, r, 1, d, d * d)
        n, s1, raw, s3, s4, q4, e, raw_x = np.split(np.asarray(sums, dtype=np.float64), np.cumsum(sizes)[:-1])
        n = int(round(n[0]))
        whitened = Whitened(n, s1, raw.reshape(r, r) - np.outer(s1, s1) / n, s3, s4, float(q4[0]))
        return cls(whitened, e, raw_x.reshape(d, d) - np.outer(e, e) / n, float(null_deviation))


def _null_check(deviation: float, k: int, mean: np.ndarray, cov: np.ndarray, null_atol) -> Check:
    """Deterministic check: ``max_i |U_null^T (x_i - m)| <= null_atol`` (0 when the null space is empty)."""
    if null_atol is None:
        largest = max(float(np.linalg.eigvalsh(cov)[-1]), 0.0)
        null_atol = NULL_RTOL * (math.sqrt(largest) + float(np.max(np.abs(mean))))
    elif not (math.isfinite(float(null_atol)) and float(null_atol) >= 0.0):
        raise ValueError(f"null_atol must be a finite number >= 0, got {null_atol!r}")
    return Check("null-space deviation", deviation, None, bool(deviation <= float(null_atol)),
                 predicted=f"0 (null space of dimension {k})", measured=f"{deviation:.3g}",
                 threshold=f"<= {float(null_atol):.3g}")


def _moments(x, mean, cov) -> tuple[SampleMoments, np.ndarray, np.ndarray]:
    """``(SampleMoments, mean, cov)`` of samples ``x``, or of moments already summed (validated either way)."""
    if isinstance(x, SampleMoments):
        mean = mean_vector(mean, "mean")
        return x, mean, covariance(cov, "cov", dim=mean.shape[0])
    x, mean, cov = _validated(x, mean, cov)
    return SampleMoments.of(x, mean, cov), mean, cov


def gaussian_checks(x, mean, cov, *, alpha: float = 1e-3, null_atol: float | None = None) -> list[Check]:
    """Test samples ``x`` (n, d) against N(mean, cov): the null-space check, then every ``STOCHASTIC_TESTS`` entry.

    Family-wise false-alarm rate ``alpha``, Bonferroni-split: each test passes when
    ``p >= alpha / len(STOCHASTIC_TESTS)``. ``null_atol`` bounds the null-space deviation; its
    default ``1e-6 (sqrt(largest eigenvalue) + max |mean|)`` is far above float64 round-off; float32
    samples (round-off ~6e-8 sqrt(d) times that scale) need a looser one, e.g. 1e-4 times the scale.
    Needs n >= r + 2 for the covariance LRT; the Gaussianity tests are asymptotic (calibrated from n ~ 30).
    ``x`` may also be the ``SampleMoments`` of the samples (e.g. merged over processes).
    """
    alpha = _level(alpha, "alpha")
    moments, mean, cov = _moments(x, mean, cov)
    n, r = moments.n, moments.whitened.r
    if n < r + 2:
        raise ValueError(f"x must have at least r + 2 = {r + 2} samples (rows) for the covariance LRT "
                         f"in the {r}-dimensional range of cov, got {n}")
    checks = [_null_check(moments.null_deviation, len(mean) - r, mean, cov, null_atol)]
    if r == 0:  # cov == 0: the law is a point mass, nothing random to test
        return checks
    per_test = alpha / len(STOCHASTIC_TESTS)
    threshold = f"p >= {per_test:.3g} (alpha {alpha:g} / {len(STOCHASTIC_TESTS)}, Bonferroni)"
    for name, test in STOCHASTIC_TESTS.items():
        result = test(moments.whitened)
        checks.append(Check(name, float(result.statistic), float(result.p_value), bool(result.p_value >= per_test),
                            predicted=result.predicted, measured=result.measured, threshold=threshold))
    return checks


def relative_cov_error(S, C) -> float:
    """Relative Frobenius error ``||S - C||_F / ||C||_F`` (inf when C = 0 != S, 0 when both vanish)."""
    C = covariance(C, "C")
    S = covariance(S, "S", dim=C.shape[0])
    norm = np.linalg.norm(C)
    error = np.linalg.norm(S - C)
    if norm == 0.0:
        return 0.0 if error == 0.0 else math.inf
    return float(error / norm)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix by eigendecomposition, tiny negative eigenvalues clipped."""
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _two_laws(m1, C1, m2, C2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate two Gaussian laws of the same dimension; errors name m1, C1, m2 or C2."""
    m1 = mean_vector(m1, "m1")
    m2 = mean_vector(m2, "m2", dim=m1.shape[0])
    return m1, covariance(C1, "C1", dim=m1.shape[0]), m2, covariance(C2, "C2", dim=m1.shape[0])


def bures_wasserstein(m1, C1, m2, C2) -> float:
    """2-Wasserstein distance: ``sqrt(|m1-m2|^2 + tr C1 + tr C2 - 2 tr (C2^1/2 C1 C2^1/2)^1/2)``.

    Valid for singular matrices. Round-off: BW^2 is good to about eps * cond * (tr C1 + tr C2) for
    well-conditioned laws and to about sqrt(eps) * (tr C1 + tr C2) when one is singular (square
    roots of round-off eigenvalues), so BW of identical singular laws is ~1e-8 sqrt(tr C), not 0.
    """
    m1, C1, m2, C2 = _two_laws(m1, C1, m2, C2)
    root2 = _psd_sqrt(C2)
    cross = np.linalg.eigvalsh(root2 @ C1 @ root2)
    squared = np.sum((m1 - m2) ** 2) + np.trace(C1) + np.trace(C2) - 2.0 * np.sum(np.sqrt(np.clip(cross, 0, None)))
    return float(math.sqrt(max(squared, 0.0)))


def gaussian_kl(m1, C1, m2, C2) -> float:
    """KL(N(m1, C1) || N(m2, C2)) ``= (tr B - k - ln det B + |delta|^2) / 2`` in the whitened range of C2.

    ``B = Lambda^-1/2 U^T C1 U Lambda^-1/2`` and ``delta = Lambda^-1/2 U^T (m1 - m2)`` with (Lambda, U)
    the range of C2 (``split_range``). Returns ``inf`` unless N1 << N2: C1 or m1 - m2 outside the
    range of C2 (beyond ``RANK_RTOL`` of the larger covariance), or B singular (N1 on a thinner set).
    """
    m1, C1, m2, C2 = _two_laws(m1, C1, m2, C2)
    values, vectors, null_vectors = split_range(C2)
    scale = max(float(np.linalg.eigvalsh(C1)[-1]), values[-1] if values.size else 0.0)
    tolerance = RANK_RTOL * scale + np.finfo(float).tiny
    shift = m1 - m2
    outside_var = float(np.trace(null_vectors.T @ C1 @ null_vectors)) if null_vectors.size else 0.0
    outside_mean = float(np.sum((null_vectors.T @ shift) ** 2)) if null_vectors.size else 0.0
    if outside_var > tolerance or outside_mean > tolerance:
        return math.inf
    root = 1.0 / np.sqrt(values)
    beta = np.linalg.eigvalsh(root[:, None] * (vectors.T @ C1 @ vectors) * root[None, :])
    if beta.size and np.min(beta) <= RANK_RTOL * max(np.max(beta), 1.0):
        return math.inf
    delta = root * (vectors.T @ shift)
    return float(0.5 * (np.sum(beta - 1.0 - np.log(beta)) + np.sum(delta**2)))


def effect_sizes(x, mean, cov) -> dict[str, float]:
    """Effect sizes of the empirical Gaussian N(mean(x), cov(x)) (unbiased cov) against N(mean, cov).

    Keys: ``relative_cov_error``, ``bures_wasserstein``, ``kl`` (KL(empirical || predicted), inf when
    the samples leave the range of cov by more than round-off). ``x``: samples or their ``SampleMoments``.
    """
    moments, mean, cov = _moments(x, mean, cov)
    sample_mean, sample_cov = moments.sample_mean(mean), moments.sample_cov()
    return {
        "relative_cov_error": relative_cov_error(sample_cov, cov),
        "bures_wasserstein": bures_wasserstein(sample_mean, sample_cov, mean, cov),
        "kl": gaussian_kl(sample_mean, sample_cov, mean, cov),
    }

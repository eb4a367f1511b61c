"""Tests of verify.stats: calibration of every stochastic test, power, effect sizes, input validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from verify.stats import (
    STOCHASTIC_TESTS,
    bartlett_factor,
    bures_wasserstein,
    covariance_lrt_test,
    effect_sizes,
    gaussian_checks,
    gaussian_kl,
    mean_test,
    relative_cov_error,
    whiten,
)

LEVEL = 0.05  # per-test level of the calibration runs
CALIBRATION_ALPHA = LEVEL * len(STOCHASTIC_TESTS)  # family-wise alpha whose Bonferroni share is LEVEL
PER_TEST_DEFAULT = 1e-3 / len(STOCHASTIC_TESTS)  # per-test level under the default alpha = 1e-3
CONFIDENCE = 0.999  # binomial acceptance band: a correct test leaves it with probability 1e-3


def gaussian_law(d: int, rank: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An anisotropic law N(m, F F^T) with a (d, rank) factor F: eigenvalues spread over 1e-2..1e2."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, rank)))
    factor = basis * np.logspace(-1, 1, rank)  # standard deviations 0.1 .. 10
    return rng.standard_normal(d), factor @ factor.T, factor


def draw(rng, mean, factor, n: int, scale: float = 1.0) -> np.ndarray:
    """n exact samples of N(mean, scale * F F^T)."""
    return mean + math.sqrt(scale) * rng.standard_normal((n, factor.shape[1])) @ factor.T


def band(replicates: int, p: float) -> tuple[float, float]:
    """The CONFIDENCE binomial interval of an empirical rate around the true rate p."""
    low, high = stats.binom.interval(CONFIDENCE, replicates, p)
    return low / replicates, high / replicates


def by_name(checks) -> dict:
    return {check.name: check for check in checks}


# ---------------------------------------------------------------- calibration: the false-alarm rate is real
CALIBRATION_REPLICATES = 1000


@pytest.fixture(scope="module")
def calibration_runs():
    """gaussian_checks on CALIBRATION_REPLICATES exact samples, d=6, rank 5 (one singular direction), n=400."""
    mean, cov, factor = gaussian_law(6, 5, seed=1)
    rng = np.random.default_rng(2)
    return [by_name(gaussian_checks(draw(rng, mean, factor, 400), mean, cov, alpha=CALIBRATION_ALPHA))
            for _ in range(CALIBRATION_REPLICATES)]


@pytest.mark.parametrize("name", list(STOCHASTIC_TESTS))
def test_false_alarm_rate_is_the_per_test_level(calibration_runs, name):
    rate = np.mean([not run[name].passed for run in calibration_runs])
    low, high = band(CALIBRATION_REPLICATES, LEVEL)
    assert low <= rate <= high, f"{name}: rejection rate {rate} outside [{low}, {high}]"


def test_calibration_runs_pass_the_null_space_check(calibration_runs):
    assert all(run["null-space deviation"].passed for run in calibration_runs)
    assert "p >= 0.05 " in calibration_runs[0]["mean"].threshold  # the Bonferroni share is stated


def test_bartlett_correction_calibrates_the_lrt_at_small_n():
    """n = 20, r = 5: rho = 0.906; the corrected LRT is on level, the raw one rejects ~10% (10.35% at these seeds)."""
    mean, cov, factor = gaussian_law(6, 5, seed=3)
    rng = np.random.default_rng(4)
    replicates = 2000
    whitened = [whiten(draw(rng, mean, factor, 20), mean, cov)[0] for _ in range(replicates)]
    corrected = np.mean([covariance_lrt_test(w).p_value < LEVEL for w in whitened])
    raw = np.mean([covariance_lrt_test(w, bartlett=False).p_value < LEVEL for w in whitened])
    low, high = band(replicates, LEVEL)
    assert low <= corrected <= high
    assert raw > high  # without the correction the test is anti-conservative
    assert bartlett_factor(20, 5) == pytest.approx(1 - 64 / (6 * 19 * 6), rel=1e-14)  # float64 closed form


# ---------------------------------------------------------------- power and negative controls, d = 64
@pytest.fixture(scope="module")
def big_law():
    return gaussian_law(64, 63, seed=5)


def test_exact_samples_pass_at_default_alpha(big_law):
    mean, cov, factor = big_law
    checks = gaussian_checks(draw(np.random.default_rng(6), mean, factor, 20000), mean, cov)
    assert [c.name for c in checks if not c.passed] == []
    assert len(checks) == 1 + len(STOCHASTIC_TESTS)


def test_two_percent_scale_error_is_rejected(big_law):
    mean, cov, factor = big_law
    checks = by_name(gaussian_checks(draw(np.random.default_rng(7), mean, factor, 20000, 1.02), mean, cov))
    assert not all(c.passed for c in checks.values())
    assert not checks["covariance trace"].passed  # expected z = 0.02 sqrt(19999 * 63 / 2) = 15.9


def test_one_percent_scale_error_is_detected(big_law):
    """Trace test: ratio 1.01 with sd sqrt(2 / ((n-1) r)) = 1.26e-3, so z = 0.01 sqrt((n-1) r / 2) = 7.9."""
    mean, cov, factor = big_law
    n, r = 20000, 63
    checks = by_name(gaussian_checks(draw(np.random.default_rng(8), mean, factor, n, 1.01), mean, cov))
    trace = checks["covariance trace"]
    assert not trace.passed and trace.p_value < PER_TEST_DEFAULT
    sd = math.sqrt(2.0 / ((n - 1) * r))
    assert abs(trace.statistic / ((n - 1) * r) - 1.01) < 4 * sd  # 4 sd: a fixed-seed draw lies within


def test_mean_shift_power_is_the_noncentral_chi2_power():
    """Shift 5 whitened sd / sqrt(n) along one direction: n |mean w|^2 ~ chi2'(r=5, 25), power 0.67."""
    mean, cov, factor = gaussian_law(6, 5, seed=9)
    n, replicates = 400, 1000
    rng = np.random.default_rng(10)
    shift = 5.0 / math.sqrt(n) * factor[:, 2]  # factor columns are whitened-unit directions
    rejected = [mean_test(whiten(draw(rng, mean + shift, factor, n), mean, cov)[0]).p_value < PER_TEST_DEFAULT
                for _ in range(replicates)]
    power = stats.ncx2.sf(stats.chi2.isf(PER_TEST_DEFAULT, 5), 5, 25.0)
    low, high = band(replicates, power)
    assert low <= np.mean(rejected) <= high


def test_mean_shift_is_rejected():
    """8 whitened sd / sqrt(n) in one direction, r = 5: power 0.9996 at the default alpha."""
    mean, cov, factor = gaussian_law(6, 5, seed=11)
    n = 2000
    x = draw(np.random.default_rng(12), mean + 8.0 / math.sqrt(n) * factor[:, 0], factor, n)
    checks = by_name(gaussian_checks(x, mean, cov))
    assert not checks["mean"].passed


def test_uniform_samples_fail_gaussianity():
    """Uniform whitened coordinates (mean 0, cov I): excess kurtosis -1.2, z about -8.7 at n = 5000."""
    mean, cov, factor = gaussian_law(6, 5, seed=13)
    rng = np.random.default_rng(14)
    x = mean + rng.uniform(-math.sqrt(3), math.sqrt(3), (5000, 5)) @ factor.T
    checks = by_name(gaussian_checks(x, mean, cov))
    assert not checks["Gaussianity (Mardia kurtosis)"].passed
    assert not checks["Gaussianity (marginal skewness/kurtosis)"].passed
    assert "excess kurtosis" in checks["Gaussianity (marginal skewness/kurtosis)"].measured
    assert checks["mean"].passed and checks["null-space deviation"].passed


def test_null_space_component_fails_the_null_space_check():
    mean, cov, factor = gaussian_law(6, 5, seed=15)
    null_direction = np.linalg.svd(factor)[0][:, -1]
    x = draw(np.random.default_rng(16), mean, factor, 400)
    x[7] += 1e-3 * null_direction
    checks = by_name(gaussian_checks(x, mean, cov))
    assert not checks["null-space deviation"].passed
    assert checks["null-space deviation"].p_value is None
    assert checks["null-space deviation"].statistic == pytest.approx(1e-3, rel=1e-6)  # round-off of x ~1e-15
    assert by_name(gaussian_checks(x, mean, cov, null_atol=2e-3))["null-space deviation"].passed


def test_float32_samples_need_a_looser_null_tolerance():
    mean, cov, factor = gaussian_law(6, 5, seed=17)
    x = draw(np.random.default_rng(18), mean, factor, 400).astype(np.float32)
    scale = math.sqrt(np.linalg.eigvalsh(cov)[-1]) + np.max(np.abs(mean))
    checks = gaussian_checks(x, mean, cov, null_atol=1e-5 * scale)  # float32 round-off ~6e-8 * sqrt(d) * scale
    assert all(check.passed for check in checks)


def test_full_rank_law_reports_an_empty_null_space():
    mean, cov, factor = gaussian_law(4, 4, seed=19)
    null = gaussian_checks(draw(np.random.default_rng(20), mean, factor, 100), mean, cov)[0]
    assert null.name == "null-space deviation" and null.passed and null.statistic == 0.0


def test_point_mass_law_has_only_the_null_space_check():
    mean = np.array([1.0, -2.0])
    checks = gaussian_checks(np.tile(mean, (5, 1)), mean, np.zeros((2, 2)))
    assert [(c.name, c.passed) for c in checks] == [("null-space deviation", True)]
    assert not gaussian_checks(mean + np.array([[0.0, 1e-3]] * 3), mean, np.zeros((2, 2)))[0].passed


# ---------------------------------------------------------------- effect sizes
def _spd(a: np.ndarray) -> np.ndarray:
    return a @ a.T + 0.1 * np.eye(a.shape[0])  # eigenvalues in [0.1, ~100]: condition number <= ~1e3


@st.composite
def gaussian_pairs(draw_, max_dim: int = 5):
    """Two Gaussian laws of a common dimension 1..max_dim with well-conditioned SPD covariances."""
    d = draw_(st.integers(1, max_dim))
    entries = st.floats(-2.0, 2.0, allow_nan=False)
    vector, matrix = hnp.arrays(np.float64, d, elements=entries), hnp.arrays(np.float64, (d, d), elements=entries)
    return draw_(vector), _spd(draw_(matrix)), draw_(vector), _spd(draw_(matrix))


PROPERTY = settings(deadline=None, database=None)  # no timing deadline, no example files; examples from the profile


@PROPERTY
@given(gaussian_pairs())
def test_bures_wasserstein_identities(pair):
    m1, C1, m2, C2 = pair
    scale = np.trace(C1) + np.trace(C2)
    atol = 1e-9 * scale  # BW^2 cancels tr C1 + tr C2 against 2 tr(...)^1/2: error ~ eps * cond * d * scale
    assert bures_wasserstein(m1, C1, m1, C1) ** 2 <= atol
    assert bures_wasserstein(m1, C1, m2, C1) ** 2 == pytest.approx(np.sum((m1 - m2) ** 2), abs=atol)
    assert bures_wasserstein(m1, C1, m2, C2) ** 2 == pytest.approx(bures_wasserstein(m2, C2, m1, C1) ** 2, abs=atol)


@PROPERTY
@given(st.integers(1, 5).flatmap(lambda d: st.tuples(*[hnp.arrays(np.float64, d, elements=st.floats(0.0, 10.0))] * 4)))
def test_bures_wasserstein_commuting_closed_form(arrays):
    """Diagonal (possibly singular) covariances: BW^2 = |m1 - m2|^2 + sum (sqrt(a) - sqrt(b))^2."""
    m1, a, m2, b = arrays
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = bures_wasserstein(m1, np.diag(a), m2, np.diag(b)) ** 2
    assert got == pytest.approx(expected, abs=1e-12 * (1 + np.sum(a + b) + np.sum((m1 - m2) ** 2)))  # exact eigh


@PROPERTY
@given(gaussian_pairs())
def test_gaussian_kl_identities(pair):
    m1, C1, m2, C2 = pair
    assert gaussian_kl(m1, C1, m1, C1) == pytest.approx(0.0, abs=1e-10)  # beta = 1 + O(eps cond), KL ~ beta-1 squared
    inverse = np.linalg.inv(C2)
    shift = m1 - m2
    naive = 0.5 * (np.trace(inverse @ C1) - len(m1) + shift @ inverse @ shift
                   + np.linalg.slogdet(C2)[1] - np.linalg.slogdet(C1)[1])
    got = gaussian_kl(m1, C1, m2, C2)
    assert got >= 0.0
    assert got == pytest.approx(naive, rel=1e-8, abs=1e-9)  # naive form cancels tr - d - logdet: ~eps * cond * d


@PROPERTY
@given(gaussian_pairs(max_dim=3), st.integers(0, 2**32 - 1))
def test_singular_embedding_keeps_kl_and_bures_wasserstein(pair, seed):
    """Embedding both laws in a common r-dim subspace of R^(r+2) changes neither KL nor BW."""
    m1, C1, m2, C2 = pair
    r = len(m1)
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((r + 2, r)))
    offset = np.arange(r + 2.0)

    def embed(m, C):
        return offset + basis @ m, basis @ C @ basis.T

    assert gaussian_kl(*embed(m1, C1), *embed(m2, C2)) == pytest.approx(gaussian_kl(m1, C1, m2, C2),
                                                                          rel=1e-7, abs=1e-9)  # eigh of embedded C2
    assert bures_wasserstein(*embed(m1, C1), *embed(m2, C2)) ** 2 == pytest.approx(
        bures_wasserstein(m1, C1, m2, C2) ** 2,
        abs=1e-7 * (np.trace(C1) + np.trace(C2)))  # sqrt of round-off eigenvalues ~eps * scale: ~sqrt(eps) * scale


def test_gaussian_kl_one_dimensional_closed_form():
    m1, s1, m2, s2 = 0.3, 1.7, -1.1, 0.6
    expected = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    got = gaussian_kl([m1], [[s1**2]], [m2], [[s2**2]])
    assert got == pytest.approx(expected, rel=1e-12)  # float64 closed form, no cancellation at these values


def test_gaussian_kl_is_infinite_without_absolute_continuity():
    full, singular = np.eye(2), np.diag([1.0, 0.0])
    zero = np.zeros(2)
    assert gaussian_kl(zero, full, zero, singular) == math.inf  # N1 has mass off the range of C2
    assert gaussian_kl([0.0, 1.0], singular, zero, singular) == math.inf  # means differ off the range
    assert gaussian_kl(zero, singular, zero, full) == math.inf  # N1 lives on a null set of N2
    assert gaussian_kl([2.0, 0.0], singular, zero, singular) == pytest.approx(2.0, rel=1e-14)  # |delta|^2 / 2
    assert bures_wasserstein(zero, np.diag([1.0, 0.0]), zero, np.diag([0.0, 1.0])) == pytest.approx(
        math.sqrt(2), rel=1e-12)  # singular, mutually singular laws: exact eigenvalues


def test_effect_sizes_track_the_scale_error():
    mean, cov, factor = gaussian_law(6, 5, seed=21)
    rng = np.random.default_rng(22)
    exact = effect_sizes(draw(rng, mean, factor, 20000), mean, cov)
    scaled = effect_sizes(draw(rng, mean, factor, 20000, 1.1), mean, cov)
    assert set(exact) == {"relative_cov_error", "bures_wasserstein", "kl"}
    assert exact["relative_cov_error"] < 0.05 < scaled["relative_cov_error"] < 0.15  # 0.1 +- sampling noise ~0.01
    assert exact["kl"] < scaled["kl"] < math.inf  # singular predicted law: KL stays in its range
    assert exact["bures_wasserstein"] < scaled["bures_wasserstein"]
    assert relative_cov_error(2 * cov, cov) == pytest.approx(1.0, rel=1e-14)  # float64, exact factor 2


# ---------------------------------------------------------------- validation
GOOD_MEAN, GOOD_COV = np.zeros(3), np.diag([1.0, 2.0, 0.0])
GOOD_X = np.random.default_rng(23).standard_normal((20, 3)) * [1.0, 1.4, 0.0]


@pytest.mark.parametrize("change, argument", [
    ({"x": np.where(np.arange(60).reshape(20, 3) == 4, np.nan, GOOD_X)}, "x"),
    ({"x": GOOD_X[:, :2]}, "x"),
    ({"x": GOOD_X[0]}, "x"),
    ({"x": GOOD_X[:3]}, "x"),  # rank 2 needs n >= 4
    ({"mean": np.zeros(4)}, "cov"),  # cov is 3 x 3, the mean fixes d = 4
    ({"mean": [0.0, np.inf, 0.0]}, "mean"),
    ({"cov": GOOD_COV + np.triu(np.ones((3, 3)), 1)}, "cov"),
    ({"cov": np.diag([1.0, -1.0, 1.0])}, "cov"),
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": 1.0}, "alpha"),
    ({"null_atol": -1.0}, "null_atol"),
])
def test_bad_input_names_the_argument(change, argument):
    arguments = {"x": GOOD_X, "mean": GOOD_MEAN, "cov": GOOD_COV} | change
    with pytest.raises(ValueError, match=rf"^{argument} "):
        gaussian_checks(**arguments)


def test_too_few_samples_says_how_many_are_needed():
    with pytest.raises(ValueError, match=r"at least r \+ 2 = 4 samples"):
        gaussian_checks(GOOD_X[:3], GOOD_MEAN, GOOD_COV)


@pytest.mark.parametrize("arguments, argument", [
    ((np.zeros(2), np.eye(2), np.zeros(3), np.eye(2)), "m2"),
    ((np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2)), "C1"),
    ((np.zeros(2), np.eye(2), np.zeros(2), np.ones((3, 3))), "C2"),
])
def test_effect_size_inputs_are_validated(arguments, argument):
    for function in (bures_wasserstein, gaussian_kl):
        with pytest.raises(ValueError, match=rf"^{argument} "):
            function(*arguments)
    with pytest.raises(ValueError, match=r"^x "):
        effect_sizes(GOOD_X[:1], GOOD_MEAN, GOOD_COV)

"""The memorizing (empirical) denoiser: streaming torch version against a direct reference, and its laws.

The reference below is written out here on purpose (scipy's softmax of ``-|y - x_i|^2 / 2 sigma^2``,
distances formed as differences) and shares no code with ``numerics.memorization``.
"""
import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats
from scipy.special import softmax

from numerics.memorization import EmpiricalDenoiser
from numerics.samplers import sample_heun
from numerics.sampling import sample
from numerics.schedules import VESchedule
from theory.memorization import EmpiricalDenoiser as EmpiricalResult
from theory.memorization import derive_weights
from verify.metrics import COPY_THRESHOLD, nearest_training_point, training_spacing
from strategies import seeds, training_sets

EPS = np.finfo(np.float64).eps

# ---------------------------------------------------------------- strategies (nouns)
memorized_sets = training_sets(min_n=2, max_n=300, max_dim=64)
"""Seeded, shifted, anisotropic training sets: n = 2..300 points in d = 1..64."""

noise_levels = st.floats(-8.0, 3.0).map(lambda e: float(10.0**e))
"""sigma over eleven decades, 1e-8 .. 1e3: below ~|y - x| / 40 every naive exp(-|y-x|^2/2sigma^2) underflows."""

chunk_sizes = st.sampled_from(("one", "seven", "n", "more than n"))


def chunk_of(name: str, n: int) -> int:
    return {"one": 1, "seven": 7, "n": n, "more than n": n + 13}[name]


def queries_for(train: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Noisy training points (the marginal the sampler sees) and points uniform in the bounding box."""
    rng = np.random.default_rng(seed)
    n, d = train.shape
    noisy = train[rng.integers(n, size=6)] + sigma * rng.standard_normal((6, d))
    boxed = rng.uniform(train.min(axis=0), train.max(axis=0), (4, d))
    return np.concatenate([noisy, boxed])


# ---------------------------------------------------------------- the independent reference
def reference_weights(y: np.ndarray, train: np.ndarray, sigma: float) -> np.ndarray:
    return softmax(-((y[:, None, :] - train[None]) ** 2).sum(axis=2) / (2 * sigma**2), axis=1)


def reference(y: np.ndarray, train: np.ndarray, sigma: float) -> np.ndarray:
    return reference_weights(y, train, sigma) @ train


def tolerance(y: np.ndarray, train: np.ndarray, sigma: float) -> np.ndarray:
    """Per-row tolerance: 1e-12 of the data scale plus the round-off of the library's logits.

    1e-12 relative: a few hundred float64 roundings (n <= 300 terms, d <= 64), with room to spare.
    The library forms ``-|y - x|^2`` as ``2 y.x - |x|^2`` (dropping ``|y|^2``); that is exact in exact
    arithmetic, but each logit then carries round-off up to ``dl = (d + 1) eps (|y| + |x|)^2 / 2 sigma^2``,
    which moves the softmax mean by at most ``~2 dl sum_i w_i |x_i - D|`` (first order; doubled to
    cover the second). That term vanishes when the weights are one-hot (tiny sigma, away from
    equidistant points) and at large sigma; ``test_..._loses_digits_far_from_the_origin`` shows it
    is not a formality (see the report).
    """
    d = train.shape[1]
    w = reference_weights(y, train, sigma)
    denoised = w @ train
    spread = np.einsum("bi,bi->b", w, np.linalg.norm(train[None] - denoised[:, None], axis=2))
    logit_roundoff = (d + 1) * EPS * (np.linalg.norm(y, axis=1) + np.linalg.norm(train, axis=1).max()) ** 2 / (
        2 * sigma**2)
    return 1e-12 * np.abs(train).max() + np.minimum(4 * logit_roundoff * spread, np.ptp(train, axis=0).max())


def denoise(train, y, sigma, **kwargs) -> np.ndarray:
    return EmpiricalDenoiser(train, **kwargs)(torch.as_tensor(y), sigma).numpy()


# ---------------------------------------------------------------- equality with the reference
@given(memorized_sets, noise_levels, seeds, chunk_sizes)
def test_streaming_denoiser_equals_direct_softmax(train, sigma, seed, chunk):
    y = queries_for(train, sigma, seed)
    out = denoise(train, y, sigma, chunk=chunk_of(chunk, len(train)))
    error = np.abs(out - reference(y, train, sigma)).max(axis=1)
    assert np.all(error <= tolerance(y, train, sigma)), (error, tolerance(y, train, sigma))


@given(memorized_sets, noise_levels, seeds)
def test_chunk_size_changes_only_the_summation_order(train, sigma, seed):
    y = queries_for(train, sigma, seed)
    n = len(train)
    outputs = [denoise(train, y, sigma, chunk=c) for c in (1, 7, n, n + 13)]
    scale = np.abs(train).max()
    for out in outputs[1:]:
        # the online rescaling reorders n <= 300 float64 sums: ~n eps relative to the data scale
        np.testing.assert_allclose(out, outputs[0], rtol=0, atol=1e-12 * scale)


def test_tiny_sigma_where_every_naive_exponential_underflows():
    rng = np.random.default_rng(3)
    train = rng.normal(5.0, 1.0, (40, 3))
    y = rng.uniform(train.min(axis=0), train.max(axis=0), (16, 3))
    sigma = 1e-4
    naive = np.exp(-((y[:, None, :] - train[None]) ** 2).sum(axis=2) / (2 * sigma**2))
    assert np.all(naive.sum(axis=1) == 0)  # the textbook formula is 0 / 0 here
    for chunk in (1, 7, 40, 100):
        out = denoise(train, y, sigma, chunk=chunk)
        # one-hot weights: the output is the nearest training point to the last bit
        np.testing.assert_array_equal(out, reference(y, train, sigma))


@given(memorized_sets, noise_levels, seeds)
def test_float32_in_float32_out_computed_in_float64(train, sigma, seed):
    y32 = torch.as_tensor(queries_for(train, sigma, seed), dtype=torch.float32)
    D = EmpiricalDenoiser(train)
    out = D(y32, sigma)
    assert out.dtype == torch.float32 and out.shape == y32.shape
    # accumulation is float64 by default: the float32 result is the float64 one of the same input, rounded
    torch.testing.assert_close(out, D(y32.double(), sigma).float(), rtol=0, atol=0)


# ---------------------------------------------------------------- convex combination
@given(memorized_sets, noise_levels, seeds, chunk_sizes)
def test_output_is_a_convex_combination_of_training_points(train, sigma, seed, chunk):
    y = queries_for(train, sigma, seed)
    out = denoise(train, y, sigma, chunk=chunk_of(chunk, len(train)))
    w = reference_weights(y, train, sigma)
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-13)  # n <= 300 terms of size <= 1
    # the convex weights reconstruct the output (same error model as the reference test)
    assert np.all(np.abs(w @ train - out).max(axis=1) <= tolerance(y, train, sigma))
    # hence inside the coordinate-wise box of the training set, up to round-off of the data scale
    slack = 1e-12 * np.abs(train).max()
    assert np.all(out >= train.min(axis=0) - slack) and np.all(out <= train.max(axis=0) + slack)


# ---------------------------------------------------------------- small-sigma limit and copy_bound
@given(memorized_sets, seeds)
def test_small_sigma_snaps_to_the_nearest_training_point(train, seed):
    rng = np.random.default_rng(seed)
    y = rng.uniform(train.min(axis=0) - 1, train.max(axis=0) + 1, (1, train.shape[1]))
    squared = np.sort(((y - train) ** 2).sum(axis=1))
    gap = squared[1] - squared[0]
    reach = (np.linalg.norm(y) + np.linalg.norm(train, axis=1).max()) ** 2
    assume(gap > 1e-8 * reach)  # not equidistant, by far more than the logits' round-off
    sigma = np.sqrt(gap / 1600)  # the runner-up's weight is exp(-800): 0 in float64
    nearest = train[np.argmin(((y - train) ** 2).sum(axis=1))]
    for chunk in (1, 7, len(train) + 13):
        np.testing.assert_array_equal(denoise(train, y, sigma, chunk=chunk)[0], nearest)


@given(memorized_sets, noise_levels, seeds)
def test_copy_bound_bounds_the_distance_to_the_most_likely_atom(train, sigma, seed):
    y = queries_for(train, sigma, seed)
    bound = EmpiricalResult.copy_bound(y, train, sigma)
    likeliest = train[reference_weights(y, train, sigma).argmax(axis=1)]
    distance = np.linalg.norm(denoise(train, y, sigma) - likeliest, axis=1)
    # + the streaming denoiser's round-off (1e-12 of the data scale, and its logits' error; see tolerance)
    assert np.all(distance <= bound + tolerance(y, train, sigma)), (distance, bound)
    assert np.all(bound <= np.linalg.norm(train - likeliest[:, None], axis=2).max(axis=1) * (1 + 1e-12))


def test_copy_bound_vanishes_as_sigma_goes_to_zero():
    rng = np.random.default_rng(5)
    train = rng.normal(0.0, 1.0, (20, 4))
    y = train[:8] + 0.05 * rng.standard_normal((8, 4))
    bounds = [EmpiricalResult.copy_bound(y, train, s).max() for s in (1.0, 0.1, 0.01)]
    assert bounds[0] > bounds[1] > bounds[2] == 0.0  # at sigma = 0.01 the other weights are exp(-O(1e3)) = 0


@pytest.mark.parametrize("n", [2, 3])
def test_bayes_posterior_over_atoms_is_the_softmax(n):
    assert derive_weights(n) is True


def test_streaming_denoiser_keeps_digits_far_from_the_origin():
    train = 1e4 + np.array([[0.0], [1.0]])  # two points, unit spacing, far from 0
    y = np.array([[1e4 + 0.5 + 2e-5]])       # just off the midpoint: weights ~ (0.45, 0.55) at sigma = 0.01
    sigma = 0.01
    expected = reference(y, train, sigma)    # y - x is exact here (Sterbenz), so this is right to ~1 ulp
    assert 0.1 < expected[0, 0] - 1e4 < 0.9
    # relative to the spacing (1), not even to the offset: a 1e-12 claim
    np.testing.assert_allclose(denoise(train, y, sigma), expected, rtol=0, atol=1e-12)


def test_extremely_small_sigma_still_snaps_to_the_nearest_point():
    train = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    y = np.array([[0.2, 0.1]])
    np.testing.assert_array_equal(denoise(train, y, 1e-200), train[:1])
    np.testing.assert_array_equal(EmpiricalResult.copy_bound(y, train, 1e-200), [0.0])


# ---------------------------------------------------------------- what the memorizing denoiser generates
def well_separated_set(n: int = 6, d: int = 3, seed: int = 11) -> np.ndarray:
    return np.random.default_rng([seed, n, d]).normal(0.0, 1.0, (n, d))


def test_exact_marginal_flow_returns_training_points_uniformly():
    train, grid, m = well_separated_set(), VESchedule().grid(32), 1500
    rng = np.random.default_rng(2024)
    origin = rng.integers(len(train), size=m)
    x = grid.s[0] * (train[origin] + grid.sigma[0] * rng.standard_normal((m, train.shape[1])))  # exact marginal
    out = sample_heun(EmpiricalDenoiser(train), torch.as_tensor(x), grid).numpy()
    distance, index = nearest_training_point(out, train)
    assert np.all(distance < COPY_THRESHOLD * training_spacing(train))  # copy rate 1
    counts = np.bincount(index, minlength=len(train))
    # uniform over the atoms: a chi-square test at 1e-3 (fixed seed, so deterministic)
    assert stats.chisquare(counts).pvalue > 1e-3, counts


def test_from_the_prior_every_sample_is_a_copy_at_sigma_min():
    """Statement (ii) is a limit (sigma_min -> 0), yet at sigma_min = 0.002 every sample is a copy: why.

    Heun's last step is an Euler step from sigma_min to 0, whose output is the denoiser's output at
    the state ``y`` reached at sigma_min; by (iii) that is within ``copy_bound(y, sigma_min)`` of the
    likeliest atom, and at sigma_min = 0.002 against a spacing ~1 the bound is 0 in float64.
    """
    train, grid, m = well_separated_set(), VESchedule(sigma_min=0.002).grid(32), 1000
    seen = {}
    empirical = EmpiricalDenoiser(train)

    def recording(y, sigma):
        seen["y"], seen["sigma"] = y.numpy().copy(), sigma  # the last call is the one at sigma_min
        return empirical(y, sigma)

    d = train.shape[1]
    out = sample(recording, "heun", grid, np.zeros(d), grid.prior_std**2 * np.eye(d), m, seed=7).numpy()
    spacing = training_spacing(train)
    distance, _ = nearest_training_point(out, train)
    assert np.all(distance < COPY_THRESHOLD * spacing)  # copy rate 1
    assert seen["sigma"] == grid.sigma[-2] == pytest.approx(0.002, rel=1e-12)  # rho-grid round-off
    bound = EmpiricalResult.copy_bound(seen["y"], train, seen["sigma"])
    assert bound.max() < COPY_THRESHOLD * spacing
    # the output is D(y) up to the last step's round-off, x_hat - (x_hat - D): eps of |y|
    assert np.all(distance <= bound + 4 * EPS * np.abs(seen["y"]).max())


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("train,name", [
    (np.zeros((0, 3)), "train"),
    (np.array([[0.0, 1.0], [np.nan, 2.0]]), "train"),
    (np.ones(4), "train"),
])
def test_bad_training_set_is_refused(train, name):
    with pytest.raises(ValueError, match=name):
        EmpiricalDenoiser(train)


@pytest.mark.parametrize("chunk", [0, -3, 2.5])
def test_bad_chunk_is_refused(chunk):
    with pytest.raises(ValueError, match="chunk"):
        EmpiricalDenoiser(np.eye(3), chunk=chunk)


@pytest.mark.parametrize("y", [torch.zeros(4, 2), torch.zeros(4, 4), torch.zeros(3)])
def test_query_dimension_mismatch_is_refused(y):
    with pytest.raises(ValueError, match="y must have shape"):
        EmpiricalDenoiser(np.eye(3))(y, 1.0)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_sigma_is_refused(sigma):
    with pytest.raises(ValueError, match="sigma"):
        EmpiricalDenoiser(np.eye(3))(torch.zeros(2, 3), sigma)
    with pytest.raises(ValueError, match="sigma"):
        EmpiricalResult.copy_bound(np.zeros((2, 3)), np.eye(3), sigma)


def test_fast_distances_agree_with_exact_ones_on_ordinary_data():
    rng = np.random.default_rng(5)
    train = rng.normal(size=(500, 16))
    y = torch.as_tensor(train[:64] + 0.01 * rng.normal(size=(64, 16)))
    exact = EmpiricalDenoiser(train)(y, 0.05)
    fast = EmpiricalDenoiser(train, exact_distances=False)(y, 0.05)
    # logit error ~ eps |y - mean|^2 / sigma^2 ~ 2e-16 * 16 / 2.5e-3 ~ 1e-12: far below 1e-9
    assert (exact - fast).abs().max().item() <= 1e-9

"""Creativity metrics on constructed cases, and ``verify.creativity`` end to end (run and CLI)."""
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from theory.mixture import GaussianMixture
from cli import exit_code
from verify import metrics
from verify.creativity import NEGATIVE_CONTROLS, Config, main, run
from verify.targets import mixture_model
from strategies import covariances_of, means_of, seeds, training_sets

# ---------------------------------------------------------------- strategies (nouns)
reference_sets = training_sets(min_n=1, max_n=60, max_dim=8)
"""Seeded, shifted, anisotropic point sets, n = 1..60 in d = 1..8 (the training side)."""


@st.composite
def query_sets(draw, d: int, train: np.ndarray):
    """Gaussian points around the training set, some exact training points among them."""
    rng = np.random.default_rng(draw(seeds))
    m = draw(st.integers(1, 40))
    centre, spread = train.mean(axis=0), train.std(axis=0) + 1.0
    x = centre + spread * rng.standard_normal((m, d))
    copies = rng.integers(len(train), size=rng.integers(0, m + 1))
    x[: len(copies)] = train[copies]
    return x


@st.composite
def mixtures(draw, max_dim: int = 5, max_components: int = 4):
    """Gaussian mixtures with non-singular components (eigenvalues 1e-3 .. 1e2) and some zero weights."""
    d = draw(st.integers(1, max_dim))
    k = draw(st.integers(1, max_components))
    raw = np.array(draw(st.lists(st.sampled_from((0.0, 0.1, 1.0, 3.0)), min_size=k, max_size=k)))
    weights = raw / raw.sum() if raw.sum() > 0 else np.full(k, 1.0 / k)
    means = np.stack([draw(means_of(d, scale=5.0)) for _ in range(k)])
    covs = np.stack([draw(covariances_of(d, low=-3.0, high=2.0, zeros=False)) for _ in range(k)])
    return GaussianMixture(weights, means, covs)


# ---------------------------------------------------------------- metrics on constructed cases
def test_exact_copies_have_copy_rate_one_and_distance_zero():
    train = np.random.default_rng(1).normal(3.0, 2.0, (30, 5))
    x = train[np.random.default_rng(2).integers(30, size=200)]
    result = metrics.creativity(x, train)
    assert result["copy_rate"] == 1.0
    assert result["nn_distance_median"] == 0.0 and result["nn_distance_max"] == 0.0  # exact: norm of x - x


@pytest.mark.parametrize("d", [2, 8, 32])
def test_fresh_target_draws_are_novel_at_the_typical_spacing(d):
    mixture = mixture_model(d, seed=0)
    train = mixture.sample(200, np.random.default_rng([0, 2]))
    fresh = mixture.sample(1000, np.random.default_rng([0, 4]))
    result = metrics.creativity(fresh, train, mixture.log_density)
    assert result["copy_rate"] <= 0.01  # measured 0.0 for d = 2, 8, 32 (and seeds 0..5)
    # a fresh point sees n training points, a left-out one n - 1: the same law, ratio ~1. Measured
    # 0.94 .. 1.10 over d = 2, 8, 32 and seeds 0..5 (1.07, 0.95, 0.99 here); band at +-20-25 %
    assert 0.8 <= result["nn_distance_median"] <= 1.25, result


@pytest.mark.parametrize("shape,step", [((7,), 0.5), ((5, 4), 0.25), ((3, 3, 3), 2.0)])
def test_training_spacing_of_a_lattice_is_its_step(shape, step):
    lattice = step * np.stack(np.meshgrid(*[np.arange(k) for k in shape], indexing="ij"), axis=-1).reshape(
        -1, len(shape)) + 10.0
    # differences of lattice coordinates 10 + k step: exact up to one rounding each
    assert metrics.training_spacing(lattice) == pytest.approx(step, rel=1e-14)


@pytest.mark.parametrize("train", [
    np.array([[1.0, 2.0], [1.0, 2.0]]),
    np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]]),
    np.repeat(np.eye(3), 2, axis=0),
], ids=["pair", "pair and one", "every point twice"])
def test_duplicate_training_points_are_refused(train):
    with pytest.raises(ValueError, match="duplicate"):
        metrics.training_spacing(train)
    with pytest.raises(ValueError, match="duplicate"):
        metrics.creativity(train, train)


@pytest.mark.parametrize("train", [np.zeros((1, 3)), np.zeros((0, 3))])
def test_spacing_needs_two_points(train):
    with pytest.raises(ValueError, match="at least 2 rows"):
        metrics.training_spacing(train)


@given(reference_sets.flatmap(lambda train: st.tuples(st.just(train), query_sets(train.shape[1], train))))
def test_nearest_training_point_equals_brute_force(pair):
    train, x = pair
    distance, index = metrics.nearest_training_point(x, train)
    brute = np.linalg.norm(x[:, None] - train[None], axis=2)
    np.testing.assert_array_equal(distance, brute[np.arange(len(x)), index])  # same formula, same row
    # the row is chosen by |x|^2 - 2 x.t + |t|^2, whose round-off 4 (d + 1) eps (|x| + |t|)^2 may
    # prefer a near-tie: the chosen distance^2 exceeds the true minimum^2 by at most that
    reach = (np.linalg.norm(x, axis=1) + np.linalg.norm(train, axis=1).max()) ** 2
    slack = 4 * (train.shape[1] + 1) * np.finfo(float).eps * reach
    assert np.all(distance**2 <= brute.min(axis=1) ** 2 + slack)
    assert np.all(distance >= brute.min(axis=1))


def test_nearest_training_point_across_chunks():
    rng = np.random.default_rng(9)
    train = rng.normal(0.0, 1.0, (50, 3))
    x = rng.normal(0.0, 1.0, (2 * metrics.CHUNK + 17, 3))  # three chunks, the last one partial
    distance, index = metrics.nearest_training_point(x, train)
    brute = np.linalg.norm(x[:, None] - train[None], axis=2)
    np.testing.assert_array_equal(index, brute.argmin(axis=1))  # well separated: no near ties at this scale
    np.testing.assert_array_equal(distance, brute[np.arange(len(x)), index])


def test_nearest_training_point_refuses_a_dimension_mismatch():
    with pytest.raises(ValueError, match="same number of columns"):
        metrics.nearest_training_point(np.zeros((2, 3)), np.zeros((4, 2)))


def test_log_likelihood_is_reported_only_with_a_density():
    mixture = mixture_model(3, seed=1)
    train = mixture.sample(40, np.random.default_rng(1))
    x = mixture.sample(50, np.random.default_rng(2))
    assert set(metrics.creativity(x, train)) == {"copy_rate", "nn_distance_median", "nn_distance_max"}
    with_density = metrics.creativity(x, train, mixture.log_density)
    assert with_density["log_likelihood"] == np.mean(mixture.log_density(x))  # the same computation, bit for bit


@given(mixtures(), seeds)
def test_mixture_log_density_equals_scipy(mixture, seed):
    rng = np.random.default_rng(seed)
    x = mixture.means.mean(axis=0) + 3.0 * rng.standard_normal((20, mixture.dim))
    with np.errstate(divide="ignore"):
        log_weights = np.log(mixture.weights)
    per_component = np.stack([multivariate_normal(m, C).logpdf(x).reshape(-1)
                              for m, C in zip(mixture.means, mixture.covs)], axis=1)
    expected = logsumexp(log_weights + per_component, axis=1)
    # both whiten through an eigendecomposition; condition numbers up to 1e5 cost ~1e5 eps relative
    np.testing.assert_allclose(mixture.log_density(x), expected, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- verify.creativity end to end
SMALL = dict(dim=8, n_train=50, samples=800, rank=2)


@pytest.fixture(scope="module")
def truthful():
    return run(Config(**SMALL))


@pytest.fixture(scope="module")
def swapped():
    return run(Config(**SMALL, negative_control="swap-predictions"))


def test_run_passes_memorizing_copies_and_affine_ones_do_not(truthful):
    assert truthful["passed"]
    rows = {r["architecture"]: r for r in truthful["rows"]}
    assert list(rows) == ["memorizing", "linear", "bottleneck (rank 2)", "polynomial (random features, k = 3)"]
    assert rows["memorizing"]["copy_rate"] == 1.0
    assert rows["linear"]["copy_rate"] == 0.0 and rows["bottleneck (rank 2)"]["copy_rate"] == 0.0
    predicted = [r for r in truthful["rows"] if r["checks"]]  # the polynomial row is measured, not tested
    assert len(predicted) == 3 and all(r["passed"] for r in predicted)
    assert "passed" not in rows["polynomial (random features, k = 3)"]
    assert truthful["reference"]["copy_rate"] <= 0.01
    assert set(truthful["config"]) >= set(SMALL) and truthful["config"]["rank"] == 2


def test_swap_predictions_control_fails_every_row(swapped):
    assert NEGATIVE_CONTROLS == ("swap-predictions",)
    assert not swapped["passed"]
    assert [r["passed"] for r in swapped["rows"] if r["checks"]] == [False, False, False]


def cli(*argv: str):
    return ["--device", "cpu", *argv]


def small_cli(*argv: str):
    return cli("--dim", "8", "--n-train", "50", "--samples", "800", "--rank", "2", *argv)


def test_cli_exit_codes(capsys):
    assert main(small_cli()) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(small_cli("--negative-control", "swap-predictions")) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--rank", "0"], "--rank: must be an integer >= 1"),
    (["--rank", "9", "--dim", "8"], "--rank must be in [1, --dim = 8]"),
    (["--n-train", "1"], "--n-train must be >= 2"),
    (["--steps", "1"], "--steps must be >= 2"),
    (["--n-train", "0"], "--n-train: must be an integer >= 1"),
])
def test_cli_rejects_bad_input(argv, message, capsys):
    assert exit_code(main, cli(*argv)) == 2 and message in capsys.readouterr().err


def test_cli_writes_plot_and_json(tmp_path, capsys):
    image, report = tmp_path / "creativity.png", tmp_path / "creativity.json"
    assert main(cli("--dim", "2", "--n-train", "20", "--rank", "1", "--plot", str(image),
                    "--json", str(report))) == 0
    assert image.stat().st_size > 0 and image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads(report.read_text())
    assert {"passed", "rows", "reference", "config"} <= set(written)
    assert written["passed"] is True and len(written["rows"]) == 4
    assert written["config"]["dim"] == 2 and written["config"]["rank"] == 1


def test_cli_does_not_silently_ignore_target_and_init(tmp_path, capsys):
    report = tmp_path / "r.json"
    with pytest.raises(SystemExit) as exit_info:  # the target is a known mixture: the flags do not exist
        main(cli("--dim", "2", "--n-train", "20", "--rank", "1", "--samples", "200", "--no-probe",
                 "--target", "gaussian", "--init", "marginal", "--json", str(report)))
    assert exit_info.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err

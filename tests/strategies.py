"""Hypothesis strategies shared by the property tests: targets, training sets, samplers and grids.

Every strategy draws plain numbers (dimensions, log-eigenvalues, seeds) and builds the arrays from
them with seeded numpy Generators, so examples are reproducible and cheap to shrink. Dimensions stay
small (``d <= MAX_DIM``) and grids short (``steps <= MAX_STEPS``) to keep the suite fast on 2 cores.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from numerics.samplers import SAMPLERS
from numerics.schedules import DDPMSchedule, VESchedule, VPSchedule
from theory.linear_law import marginal_start, prior_start
from verify.targets import random_rotation

MAX_DIM = 6
MAX_STEPS = 20
LOG10_LOW, LOG10_HIGH = -4.0, 3.0  # eigenvalues 1e-4 .. 1e3: seven orders of magnitude

SAMPLER_NAMES = ("ddim", "ddpm", "euler", "euler_maruyama", "exponential_vp", "heun")
"""Result 3's original one-step samplers; the conventions' samplers (``REGISTRY``) are in tests/test_conventions*.py."""
CONVENTION_SAMPLERS = tuple(sorted(set(SAMPLERS) - set(SAMPLER_NAMES)))
SCHEDULE_NAMES = ("ve", "vp", "ddpm")
ODE_SAMPLERS = ("ddim", "euler", "heun")


def make_grid(schedule: str, steps: int):
    """The default schedule of each kind on ``steps`` steps (VE with its final step to sigma = 0)."""
    return {"ve": VESchedule, "vp": VPSchedule, "ddpm": DDPMSchedule}[schedule]().grid(steps)


def compatible(sampler: str, schedule: str) -> bool:
    """Euler--Maruyama needs a continuous-time schedule, the exponential VP integrator a VP one."""
    if sampler == "euler_maruyama":
        return schedule != "ddpm"
    if sampler == "exponential_vp":
        return schedule != "ve"
    return True


COMPATIBLE_PAIRS = tuple((a, b) for a in SAMPLER_NAMES for b in SCHEDULE_NAMES if compatible(a, b))
INCOMPATIBLE_PAIRS = tuple((a, b) for a in SAMPLER_NAMES for b in SCHEDULE_NAMES if not compatible(a, b))

# ---------------------------------------------------------------- plain building blocks
dims = st.integers(1, MAX_DIM)
seeds = st.integers(0, 2**32 - 1)
steps = st.integers(1, MAX_STEPS)
samplers = st.sampled_from(SAMPLER_NAMES)
schedules = st.sampled_from(SCHEDULE_NAMES)
starts = st.sampled_from((prior_start, marginal_start))
sigmas = st.floats(-3.0, 3.0).map(lambda e: float(10.0**e))  # noise levels 1e-3 .. 1e3


def spectra_of(d: int, low: float = LOG10_LOW, high: float = LOG10_HIGH, zeros: bool = False):
    """``d`` eigenvalues log-uniform in ``[10^low, 10^high]``; with ``zeros`` up to ``d - 1`` set to 0."""
    logs = st.lists(st.floats(low, high), min_size=d, max_size=d).map(lambda v: 10.0 ** np.array(v))
    if not zeros or d == 1:
        return logs

    def zero_some(pair):
        values, k = pair
        values = values.copy()
        values[:k] = 0.0
        return values

    return st.tuples(logs, st.integers(0, d - 1)).map(zero_some)


def rotations_of(d: int):
    """Haar-random ``d x d`` orthogonal matrices (and the identity and a signed permutation)."""
    haar = seeds.map(lambda seed: random_rotation(d, np.random.default_rng(seed)))
    permutation = seeds.map(lambda seed: _signed_permutation(d, seed))
    return st.one_of(st.just(np.eye(d)), permutation, haar)


def _signed_permutation(d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(d)[rng.permutation(d)] * rng.choice([-1.0, 1.0], d)


def covariance_from(rotation: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """``R diag(spectrum) R^T``, symmetrized so that it is symmetric to the last bit."""
    cov = (rotation * spectrum) @ rotation.T
    return 0.5 * (cov + cov.T)


def means_of(d: int, scale: float = 10.0):
    return st.lists(st.floats(-scale, scale), min_size=d, max_size=d).map(np.array)


@st.composite
def covariances_of(draw, d: int, low: float = LOG10_LOW, high: float = LOG10_HIGH, zeros: bool = True):
    """Random rotation times spectrum; with ``zeros`` some eigenvalues are exactly 0 (singular)."""
    return covariance_from(draw(rotations_of(d)), draw(spectra_of(d, low, high, zeros)))


# ---------------------------------------------------------------- the nouns the tests use
spectra = dims.flatmap(spectra_of)
"""SPD spectra over seven orders of magnitude, 1e-4 .. 1e3, d = 1..MAX_DIM."""

singular_spectra = dims.flatmap(lambda d: spectra_of(d, zeros=True))
"""Spectra with some exact zeros (at least one positive eigenvalue)."""

rotations = dims.flatmap(rotations_of)
means = dims.flatmap(means_of)
covariances = dims.flatmap(covariances_of)
"""Rotation x spectrum, including singular ones with some zero eigenvalues."""


@st.composite
def target_moments(draw, low: float = LOG10_LOW, high: float = LOG10_HIGH, zeros: bool = True,
                   max_dim: int = MAX_DIM):
    """A consistent ``(mean, cov)`` pair: the only thing the optimal affine denoiser sees."""
    d = draw(st.integers(1, max_dim))
    return draw(means_of(d)), draw(covariances_of(d, low, high, zeros))


@st.composite
def training_sets(draw, min_n: int = 2, max_n: int = 10, max_dim: int = MAX_DIM, wide: bool | None = None):
    """``(n, d)`` seeded training sets, anisotropic and shifted; ``wide`` forces ``n <= d`` (True) or ``n > d``.

    Points are a.s. in general position, so the 1/n covariance has rank ``min(n - 1, d)``.
    """
    if wide is True:
        d = draw(st.integers(max(min_n, 2), max_dim))
        n = draw(st.integers(min_n, d))
    elif wide is False:
        d = draw(st.integers(1, max_dim))
        n = draw(st.integers(max(min_n, d + 1), max(max_n, d + 1)))
    else:
        d = draw(st.integers(1, max_dim))
        n = draw(st.integers(min_n, max_n))
    rng = np.random.default_rng(draw(seeds))
    scales = 10.0 ** rng.uniform(-1.0, 1.0, d)
    return rng.normal(0.0, 3.0, d) + (rng.standard_normal((n, d)) * scales) @ random_rotation(d, rng).T


@st.composite
def sampler_grids(draw, max_steps: int = MAX_STEPS):
    """A compatible ``(sampler, grid)`` pair on a short grid of a default schedule."""
    sampler, schedule = draw(st.sampled_from(COMPATIBLE_PAIRS))
    return sampler, make_grid(schedule, draw(st.integers(1, max_steps)))


def matched_sample(raw: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Affinely map ``raw`` (n > d, full rank) so that its empirical mean is ``mean`` and 1/n covariance ``cov``.

    The shape of the law is kept (a mixture stays a mixture, uniform stays uniform); only the
    first two empirical moments are set, exactly up to round-off.
    """
    centred = raw - raw.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / len(raw))
    white = centred @ vectors / np.sqrt(values)           # empirical mean 0, 1/n covariance I
    target_values, target_vectors = np.linalg.eigh(cov)
    root = target_vectors * np.sqrt(np.clip(target_values, 0.0, None))
    return mean + white @ root.T


# ---------------------------------------------------------------- images (local denoisers)
BOUNDARY_NAMES = ("zeros", "circular", "reflect")
boundaries = st.sampled_from(BOUNDARY_NAMES)
image_shapes = st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 5))
"""``(c, h, w)`` with ``d = c h w <= 50``: small enough for dense checks."""


def odd_patches(shape):
    """Odd patch sizes ``1 .. min(h, w)``."""
    return st.sampled_from(tuple(range(1, min(shape[1:]) + 1, 2)))


def stationary_covariance(shape, seed: int) -> np.ndarray:
    """A random covariance on ``(c, h, w)`` images, shift-averaged over the torus: stationary, SPD."""
    c, h, w = shape
    d, rng = c * h * w, np.random.default_rng(seed)
    A = rng.standard_normal((d, d))
    cov = A @ A.T / d + 0.1 * np.eye(d)
    index = np.arange(d).reshape(c, h, w)
    shifts = [np.roll(index, (a, b), axis=(1, 2)).ravel() for a in range(h) for b in range(w)]
    average = sum(cov[np.ix_(s, s)] for s in shifts) / len(shifts)
    return 0.5 * (average + average.T)


@st.composite
def image_targets(draw, stationary: bool | None = None):
    """``(shape, mean, cov)``: a random image shape and moments, stationary or not (both when None)."""
    shape = draw(image_shapes)
    d, seed = int(np.prod(shape)), draw(seeds)
    rng = np.random.default_rng([seed, 1])
    kind = draw(st.booleans()) if stationary is None else stationary
    if kind:
        mean = np.repeat(rng.standard_normal(shape[0]), shape[1] * shape[2])
        return shape, mean, stationary_covariance(shape, seed)
    A = rng.standard_normal((d, d)) * 10.0 ** rng.uniform(-1, 1, d)
    return shape, rng.standard_normal(d), A @ A.T / d + 1e-3 * np.eye(d)


@st.composite
def image_training_sets(draw, max_n: int = 5):
    """``(shape, train)``: a few small random training images (values of order 1)."""
    shape = draw(image_shapes)
    rng = np.random.default_rng(draw(seeds))
    return shape, rng.standard_normal((draw(st.integers(1, max_n)), int(np.prod(shape))))


# ---------------------------------------------------------------- Result 17: Bernoulli ray models
@st.composite
def bernoulli_models(draw):
    """``(k, a0, a1, b0)`` of ``dr/dtau = (a(sigma) - 1) r + b(sigma) r^k`` with ``a = a0 + a1 sigma / (1 + sigma)``
    (contracting, ``a < 1``) and ``b = b0 / (1 + sigma)`` (``b0 > 0``: some start blows up before sigma_end)."""
    k = draw(st.integers(2, 5))
    a0 = draw(st.floats(-0.5, 0.5))
    a1 = draw(st.floats(-0.4, 0.4))
    b0 = draw(st.floats(-2.0, 1.0).map(lambda e: float(10.0**e)))
    return k, a0, a1, b0


# ---------------------------------------------------------------- Result 18: step-stability test modes
@st.composite
def step_modes(draw):
    """``(mu, sigma, q)``: a real Jacobian mode ``mu`` (damped, ``mu < 1``, out to stiff ``-300``; or growing),
    a level ``sigma`` and a step ratio ``q = sigma'/sigma - 1`` of a Karras-like grid (``-0.9 .. -0.01``)."""
    mu = draw(st.one_of(st.floats(-300.0, 0.999), st.floats(1.001, 5.0)))
    return mu, draw(sigmas), draw(st.floats(-0.9, -0.01))

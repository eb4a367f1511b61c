"""Seeded random target distributions with exactly known mean and covariance."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numerics import validation


def random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random orthogonal matrix (QR of a Gaussian matrix with sign fix)."""
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def spectrum(d: int, low: float = 1e-2, high: float = 10.0) -> np.ndarray:
    """Anisotropic spectrum: ``d`` variances log-spaced from ``high`` down to ``low``."""
    return np.geomspace(high, low, d) if d > 1 else np.array([high])


@dataclass(frozen=True)
class Target:
    """``x0 = shift + R (scale * u)`` for i.i.d. standardized ``u`` of one family, or a Gaussian mixture."""

    name: str
    mean: np.ndarray
    cov: np.ndarray
    draw: object  # (n, numpy Generator) -> (n, d) samples

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.draw(validation.positive_int(n, "n"), rng)


def _standardized(family: str, shape, rng):
    if family == "gaussian":
        return rng.standard_normal(shape)
    if family == "uniform":
        return rng.uniform(-np.sqrt(3), np.sqrt(3), shape)
    return rng.laplace(0.0, 1 / np.sqrt(2), shape)  # laplace: unit variance


def product_target(d: int, seed: int, family: str = "product") -> Target:
    """Rotated product of unit-variance marginals (uniform and Laplace alternating, or Gaussian)."""
    rng = np.random.default_rng([seed, d])
    R, scale, shift = random_rotation(d, rng), np.sqrt(spectrum(d)), rng.normal(0, 1, d)
    families = ["gaussian"] * d if family == "gaussian" else ["uniform", "laplace"] * d

    def draw(n, g):
        u = np.column_stack([_standardized(families[j], n, g) for j in range(d)])
        return shift + (u * scale) @ R.T

    return Target(family, shift, (R * scale**2) @ R.T, draw)


def mixture_target(d: int, seed: int, components: int = 4) -> Target:
    """Gaussian mixture with equal weights, rotated anisotropic component covariance, spread means."""
    rng = np.random.default_rng([seed, d, components])
    R, variances = random_rotation(d, rng), spectrum(d)
    centres = rng.normal(0, 1, (components, d)) * np.sqrt(variances) @ R.T
    component_cov = (R * (0.5 * variances)) @ R.T
    mean = centres.mean(axis=0)
    cov = component_cov + (centres - mean).T @ (centres - mean) / components

    def draw(n, g):
        labels = g.integers(components, size=n)
        z = g.standard_normal((n, d)) * np.sqrt(0.5 * variances)
        return centres[labels] + z @ R.T

    return Target("mixture", mean, cov, draw)


def make_target(name: str, d: int, seed: int) -> Target:
    """``mixture`` (default), ``product`` (uniform/Laplace) or ``gaussian``."""
    validation.choice(name, "target", TARGETS)
    d = validation.positive_int(d, "dim")
    return mixture_target(d, seed) if name == "mixture" else product_target(d, seed, name)


TARGETS = ("mixture", "product", "gaussian")


def mixture_model(d: int, seed: int, components: int = 3):
    """A well-separated Gaussian mixture as a ``theory.mixture.GaussianMixture`` (low-dimensional checks)."""
    from theory.mixture import GaussianMixture

    rng = np.random.default_rng([seed, d, components, 7])
    means = rng.normal(0, 2.0, (components, validation.positive_int(d, "dim")))
    covs = np.stack([(R * rng.uniform(0.05, 0.4, d)) @ R.T for R in (random_rotation(d, rng) for _ in range(components))])
    return GaussianMixture(np.full(components, 1.0 / components), means, covs)


def random_encoder(d: int, r: int, seed: int) -> np.ndarray:
    """A seeded ``d x r`` matrix with orthonormal columns."""
    if not 1 <= r <= d:
        raise ValueError(f"rank must be in [1, dim = {d}], got {r}")
    return random_rotation(d, np.random.default_rng([seed, d, r, 11]))[:, :r]

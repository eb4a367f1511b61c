"""Gaussian mixtures in closed form: projections, noisy conditional means (log-sum-exp), sampling.

A training set is the mixture with zero covariances and equal weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from numerics import validation


@dataclass(frozen=True)
class GaussianMixture:
    """``sum_k pi_k N(m_k, C_k)`` with ``weights (K,)``, ``means (K, d)``, ``covs (K, d, d)``."""

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    def __post_init__(self):
        w = validation.finite_array(self.weights, "weights", ndim=1)
        m = validation.finite_array(self.means, "means", ndim=2)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", m)
        object.__setattr__(self, "covs", validation.finite_array(self.covs, "covs"))
        if len(w) != len(m) or len(w) == 0 or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
            raise ValueError("weights must be K >= 1 non-negative numbers summing to 1, one per row of means")
        if np.shape(self.covs) != (len(m), m.shape[1], m.shape[1]):
            raise ValueError(f"covs must have shape {(len(m), m.shape[1], m.shape[1])}, got {np.shape(self.covs)}")
        for k, C in enumerate(self.covs):
            validation.covariance(C, f"covs[{k}]")

    @classmethod
    def training_set(cls, points) -> "GaussianMixture":
        """The empirical distribution of ``points`` as a mixture of point masses."""
        points = validation.finite_array(points, "points", ndim=2)
        n, d = points.shape
        return cls(np.full(n, 1.0 / n), points, np.zeros((n, d, d)))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the mixture."""
        mean = self.weights @ self.means
        centred = self.means - mean
        return mean, np.einsum("k,kij->ij", self.weights, self.covs) + (centred.T * self.weights) @ centred

    def project(self, W) -> "GaussianMixture":
        """The law of ``W^T x0``: means ``W^T m_k``, covariances ``W^T C_k W``."""
        W = encoder(W, self.dim)
        return GaussianMixture(self.weights, self.means @ W, np.einsum("ia,kij,jb->kab", W, self.covs, W))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        labels = rng.choice(len(self.weights), size=validation.positive_int(n, "n"), p=self.weights)
        roots = np.stack([_root(C) for C in self.covs])
        return self.means[labels] + np.einsum("nij,nj->ni", roots[labels], rng.standard_normal((n, self.dim)))

    def log_density(self, x) -> np.ndarray:
        """``log p(x)`` per row, by log-sum-exp over components (each component must be non-singular)."""
        x = validation.finite_array(x, "x", ndim=2)
        if x.shape[1] != self.dim:
            raise ValueError(f"x must have {self.dim} columns, got {x.shape[1]}")
        values, vectors = np.linalg.eigh(self.covs)
        if np.min(values) <= 0:
            raise ValueError("log_density needs non-singular component covariances")
        z = np.einsum("kij,nki->nkj", vectors, x[:, None, :] - self.means[None]) / np.sqrt(values)[None]
        with np.errstate(divide="ignore"):
            log_weights = np.log(self.weights)
        log_component = -0.5 * ((z**2).sum(axis=2) + np.log(values).sum(axis=1) + self.dim * np.log(2 * np.pi))
        return logsumexp(log_weights + log_component, axis=1)

    def conditional_mean(self, W, u, sigma: float) -> np.ndarray:
        """``E[x0 | W^T x0 + sigma xi = u]``: responsibilities times per-component Gaussian regressions.

        ``S_k = W^T C_k W + sigma^2 I``; each component contributes ``m_k + C_k W S_k^{-1} (u - W^T m_k)``.
        """
        W = encoder(W, self.dim)
        u = validation.finite_array(u, "u", ndim=2)
        if u.shape[1] != W.shape[1]:
            raise ValueError(f"u must have {W.shape[1]} columns (the code size r), got {u.shape[1]}")
        S = np.einsum("ia,kij,jb->kab", W, self.covs, W) + float(sigma) ** 2 * np.eye(W.shape[1])
        if np.min(np.linalg.eigvalsh(S)) <= 1e-300:
            raise ValueError("conditional mean needs W^T C_k W + sigma^2 I > 0 for every component: use sigma > 0")
        S_inv = np.linalg.inv(S)
        residual = u[:, None, :] - (self.means @ W)[None]                       # (n, K, r)
        solved = np.einsum("kab,nkb->nka", S_inv, residual)                      # S_k^{-1} (u - W^T m_k)
        logdet = np.linalg.slogdet(S)[1]
        with np.errstate(divide="ignore"):  # a zero weight is log 0 = -inf: that component never contributes
            log_weights = np.log(self.weights)
        log_resp = log_weights - 0.5 * (logdet + np.einsum("nka,nka->nk", residual, solved))
        resp = np.exp(log_resp - logsumexp(log_resp, axis=1, keepdims=True))   # (n, K)
        regression = self.means[None] + np.einsum("kij,ja,nka->nki", self.covs, W, solved)
        return np.einsum("nk,nki->ni", resp, regression)


def encoder(W, d: int) -> np.ndarray:
    """Check ``W`` is ``d x r`` with orthonormal columns (to 1e-8)."""
    W = validation.finite_array(W, "W", ndim=2)
    if W.shape[0] != d or not 1 <= W.shape[1] <= d:
        raise ValueError(f"W must be {d} x r with 1 <= r <= {d}, got shape {W.shape}")
    if np.max(np.abs(W.T @ W - np.eye(W.shape[1]))) > 1e-8:
        raise ValueError("W must have orthonormal columns (W^T W = I)")
    return W


def _root(C):
    values, vectors = np.linalg.eigh(C)
    return vectors * np.sqrt(np.clip(values, 0, None))

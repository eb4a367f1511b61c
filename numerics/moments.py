"""Moments of a training set, computed from the data (the empirical distribution's own mean and covariance)."""
from __future__ import annotations

import numpy as np

from numerics import validation


def empirical_moments(train) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, cov)`` of the empirical distribution ``(1/n) sum_i delta_{x_i}`` of a ``(n, d)`` array.

    The covariance is the empirical distribution's own second central moment: ``sum_i (x_i - m)(x_i - m)^T / n``.
    """
    train = validation.finite_array(train, "train", ndim=2)
    if train.shape[0] < 1 or train.shape[1] < 1:
        raise ValueError(f"train must have at least one row and one column, got shape {train.shape}")
    weights = np.full(train.shape[0], 1.0 / train.shape[0])
    mean = weights @ train
    deviation = train - mean
    return mean, np.einsum("n,ni,nj->ij", weights, deviation, deviation)

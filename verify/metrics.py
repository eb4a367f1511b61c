"""Creativity metrics of generated samples against a training set.

- ``nn_distance``: distance of each sample to its nearest training point, divided by the median
  nearest-neighbour distance *within* the training set (leave-one-out), so 1 means "as far from
  the training set as a typical training point is from the others".
- ``copy_rate``: the fraction of samples whose normalized distance is below ``COPY_THRESHOLD``.
- ``log_likelihood``: mean log-density of the samples under the true target (synthetic targets
  only): how realistic the samples are, next to how novel.
"""
from __future__ import annotations

import numpy as np

from numerics import validation

COPY_THRESHOLD = 0.01  # a copy: within 1% of the typical training spacing (float round-off or sigma_min blur)
CHUNK = 1024


def nearest_training_point(x, train) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each row of ``x`` to its nearest row of ``train``, and that row's index (chunked)."""
    x = validation.finite_array(x, "x", ndim=2)
    train = validation.finite_array(train, "train", ndim=2)
    if x.shape[1] != train.shape[1] or len(train) == 0:
        raise ValueError(f"x and train must have the same number of columns and train >= 1 row, "
                         f"got {x.shape} and {train.shape}")
    norms = (train**2).sum(axis=1)
    distance, index = np.empty(len(x)), np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), CHUNK):
        block = x[start:start + CHUNK]
        squared = (block**2).sum(axis=1)[:, None] - 2 * block @ train.T + norms[None]
        index[start:start + CHUNK] = squared.argmin(axis=1)
        nearest = train[index[start:start + CHUNK]]
        distance[start:start + CHUNK] = np.linalg.norm(block - nearest, axis=1)  # exact, not the expansion
    return distance, index


def training_spacing(train) -> float:
    """Median leave-one-out nearest-neighbour distance within the training set (needs >= 2 distinct points)."""
    train = validation.finite_array(train, "train", ndim=2)
    if len(train) < 2:
        raise ValueError(f"train must have at least 2 rows to define a spacing, got {len(train)}")
    gaps = np.linalg.norm(train[:, None] - train[None], axis=2)
    np.fill_diagonal(gaps, np.inf)
    spacing = float(np.median(gaps.min(axis=1)))
    if spacing == 0:
        raise ValueError("train has duplicate points: the median nearest-neighbour spacing is 0")
    return spacing


def creativity(x, train, log_density=None, threshold: float = COPY_THRESHOLD) -> dict:
    """Copy rate, normalized nearest-neighbour distances and (if given) mean log-likelihood of ``x``."""
    distance, _ = nearest_training_point(x, train)
    normalized = distance / training_spacing(train)
    metrics = {"copy_rate": float(np.mean(normalized < threshold)),
               "nn_distance_median": float(np.median(normalized)),
               "nn_distance_max": float(np.max(normalized))}
    if log_density is not None:
        metrics["log_likelihood"] = float(np.mean(log_density(x)))
    return metrics

"""Measurements of generated images: per-sample prediction r^2 and the creativity table's columns.

Every distance-based column comes with the same quantity for held-out test images (the reference),
so "0.4" can be read as "less/more than real unseen images".
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from verify.metrics import nearest_training_point

COPY_RATIO = 1 / 3   # a copy: nearer to a training image than a third of the median test-to-train distance
MOSAIC_RMS = 0.1     # a patch "from the training set": RMS pixel error < 0.1 (5% of the [-1, 1] range)
PATCH_BANK = 300     # training images whose patches form the mosaic bank (memory/time bound)
PCA_RANK = 10        # the top-k subspace of the variance-outside column


def per_sample_r2(x_net, x_machine) -> np.ndarray:
    """``1 - |x_net - x_machine|^2 / |x_net - mean(x_net)|^2`` for each sample (row)."""
    x_net, x_machine = np.asarray(x_net), np.asarray(x_machine)
    spread = ((x_net - x_net.mean(axis=0)) ** 2).sum(axis=1)
    return 1.0 - ((x_net - x_machine) ** 2).sum(axis=1) / spread


def _interior_patches(images: np.ndarray, patch: int) -> torch.Tensor:
    """All ``p x p`` patches that lie inside the images ``(n, h, w)``, as ``(n (h-p+1)(w-p+1), p^2)``."""
    x = torch.as_tensor(images, dtype=torch.float64)[:, None]
    return torch.nn.functional.unfold(x, patch).transpose(1, 2).reshape(-1, patch * patch)


def mosaic_rate(images, train, patch: int) -> float:
    """Fraction of the images' interior patches within ``MOSAIC_RMS`` (per pixel) of a training patch."""
    bank = _interior_patches(train[:PATCH_BANK], patch)
    query = _interior_patches(images, patch)
    nearest = torch.cat([torch.cdist(query[i:i + 2048], bank).min(dim=1).values for i in range(0, len(query), 2048)])
    return float((nearest / patch < MOSAIC_RMS).double().mean())  # |e| / p = RMS over p^2 pixels


def covariance_distance(x, train) -> float:
    """``|C_x - C_train|_F / |C_train|_F``: how far the samples' covariance is from the linear prediction's."""
    c_train = np.cov(train.T)
    return float(np.linalg.norm(np.cov(x.T) - c_train) / np.linalg.norm(c_train))


def variance_outside(x, train, k: int = PCA_RANK) -> float:
    """Fraction of ``E|x - mu_train|^2`` outside the training set's top-``k`` principal subspace."""
    U = np.linalg.eigh(np.cov(train.T))[1][:, -k:]
    centred = x - train.mean(axis=0)
    total = (centred**2).sum()
    return float(1.0 - ((centred @ U) ** 2).sum() / total)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets ``a`` and ``b``.

    With fewer samples than features the covariances are singular; the square root is still
    defined (scipy warns, silenced here), and the number is comparable only at equal sample counts.
    """
    ca, cb = np.cov(a.T), np.cov(b.T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(ca @ cb).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * root))


def creativity_row(x, train, test, classifier, side: int, patch: int) -> dict:
    """Creativity columns of flat samples ``x`` against flat ``train``/``test`` (images ``side x side``)."""
    test_distance = np.median(nearest_training_point(test, train)[0])
    distance = nearest_training_point(x, train)[0]
    features, confidence = classifier.embed(x)
    test_features, _ = classifier.embed(test)
    return {"copy_rate": float(np.mean(distance < COPY_RATIO * test_distance)),
            "nn_ratio": float(np.median(distance) / test_distance),
            "mosaic_rate": mosaic_rate(x.reshape(-1, side, side), train.reshape(-1, side, side), patch),
            "cov_distance": covariance_distance(x, train),
            "var_outside_topk": variance_outside(x, train),
            "confidence": float(confidence.mean()),
            "frechet": frechet(features, test_features)}


def reference_row(train, test, classifier, side: int, patch: int, n: int) -> dict:
    """The same columns for ``n`` held-out test images (the Frechet one against the rest of the test set)."""
    return creativity_row(test[:n], train, test[n:], classifier, side, patch)

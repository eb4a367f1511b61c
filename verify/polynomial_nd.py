"""``python -m verify.polynomial --dim d`` (d >= 2): multivariate moment equivalence on a non-product target.

Target: a rotated three-component Gaussian mixture with anisotropic components (not a product of its
marginals). ``p`` is a training set drawn from it; ``q`` its positive cubature (Result 14: all mixed
moments of order <= 2k, NNLS). Both denoisers are fitted by least squares by numerics (total degree k, or
``--features m`` random features), with the same noise nodes shared by every atom; sampler outputs from
the same start noise must agree to round-off. Negative controls: ``product-surrogate`` (product of the
marginals' Gauss rules: right marginals, wrong cross moments) and ``short-surrogate`` (a cubature of order
2k - 1 only) must FAIL.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from numerics.polynomial import (MAX_TENSOR_DIM, fit_multivariate, fit_random_features_law, random_projection,
                                 symmetric_gaussian_rule)
from numerics.samplers import SAMPLERS
from numerics.schedules import VESchedule
from theory import polynomial as result10, polynomial_nd as result14
from verify.check import Check
from verify.targets import random_rotation

EQUIVALENCE_RTOL = 1e-7  # normal equations: cond(Gram) x eps through the fits and sampler, <= 6e-11 measured;
                         # the negative controls give >= 0.15
NOISE_NODES = 64         # d > 3 with k > 2: antithetic standard-normal nodes +-t_q shared by every atom
                         # (equivalence is exact for any fixed noise law; symmetry zeroes its odd moments)
MAX_CUBATURE_MOMENTS = 2500  # C(d + 2k, d) moment equations (d = 64, k = 1: 2145): beyond, the NNLS is too slow


def mixture_target(dim: int, rng: np.random.Generator):
    """Three rotated anisotropic Gaussian components: ``(draw(n), description)``."""
    weights = np.array([0.5, 0.3, 0.2])
    means = 1.5 * rng.standard_normal((3, dim))
    factors = [random_rotation(dim, rng) * rng.uniform(0.3, 1.0, dim) for _ in range(3)]

    def draw(n: int, rng_draw: np.random.Generator) -> np.ndarray:
        labels = rng_draw.choice(3, size=n, p=weights)
        noise = rng_draw.standard_normal((n, dim))
        return means[labels] + np.einsum("nij,nj->ni", np.asarray(factors)[labels], noise)
    return draw


def product_surrogate(points: np.ndarray, degree: int):
    """Product of each coordinate's ``(k+1)``-point Gauss rule: all marginal moments right, cross moments not."""
    rules = [result10.gauss_quadrature(result10.empirical_moments(points[:, i], order=2 * degree + 1), degree + 1)
             for i in range(points.shape[1])]
    atoms = np.array(list(itertools.product(*[nodes for nodes, _ in rules])))
    weights = np.prod(np.array(list(itertools.product(*[w for _, w in rules]))), axis=1)
    return atoms, weights


def surrogate(train: np.ndarray, degree: int, control: str | None):
    """The law ``q`` that must (or, under a negative control, must not) give the same denoiser as ``train``."""
    if control == "product-surrogate":
        return product_surrogate(train, degree), "product of marginal Gauss rules"
    order = 2 * degree - 1 if control == "short-surrogate" else max(2 * degree, 1)
    return result14.positive_cubature(train, None, order), f"positive cubature of order {order}"


def noise_rule(d: int, degree: int, rng: np.random.Generator):
    """The noise rule shared by p's and q's fits: exact for Gaussian noise where one is at hand (tensor
    Gauss-Hermite for d <= 3, the symmetric degree-(2k+1) rule for k <= 2), else NOISE_NODES antithetic draws."""
    if d <= MAX_TENSOR_DIM:
        t, h = np.polynomial.hermite_e.hermegauss(degree + 1)
        nodes = np.array(list(itertools.product(t, repeat=d)))
        return nodes, np.prod(np.array(list(itertools.product(h / h.sum(), repeat=d))), axis=1)
    if degree <= 2:
        return symmetric_gaussian_rule(d, 2 * max(degree, 1) + 1)
    half = rng.standard_normal((NOISE_NODES // 2, d))
    return np.concatenate([half, -half]), np.full(NOISE_NODES, 1.0 / NOISE_NODES)


def fitter(cfg, d: int, noise, levels):
    """``(atoms, weights) -> denoiser``: total degree k, or m random features (same R for p and q)."""
    nodes, h = noise
    if cfg.features is None:
        return lambda a, w: fit_multivariate(a, w, levels, cfg.degree, noise_nodes=nodes, noise_weights=h)
    R = random_projection(cfg.features, d, torch.Generator().manual_seed(cfg.seed))
    return lambda a, w: fit_random_features_law(a, w, levels, cfg.degree, R, nodes, h)


def cubature_too_large(cfg) -> str | None:
    """Why the Result 14 check cannot run for ``cfg`` (None if it can)."""
    d, k = cfg.dim, cfg.degree
    moments = math.comb(d + 2 * k, d) if cfg.negative_control != "product-surrogate" else 0
    if moments <= MAX_CUBATURE_MOMENTS:
        return None
    return (f"dim {d} with degree {k} has {moments} mixed moments of order <= 2k > {MAX_CUBATURE_MOMENTS}: "
            "the cubature is too large for a check")


def training_set(cfg) -> tuple[np.ndarray, np.random.Generator]:
    """``p``: ``n_train`` points of the target (seeded), and the generator that drew them."""
    rng = np.random.default_rng([cfg.seed, 14])
    return mixture_target(cfg.dim, rng)(cfg.n_train, rng), rng


def equivalence_check(cfg, grid) -> tuple[Check, dict]:
    """Sampler outputs with the denoiser fitted on ``p`` (training set) and on ``q`` from the same starts."""
    d, k = cfg.dim, cfg.degree
    why = cubature_too_large(cfg)
    if why is not None:
        raise ValueError(why)
    train, rng = training_set(cfg)
    (q_atoms, q_weights), name = surrogate(train, k, cfg.negative_control)
    noise = noise_rule(d, k, rng)
    fit = fitter(cfg, d, noise, grid.sigma[grid.sigma > 0])
    p_fit, q_fit = fit(train, None), fit(q_atoms, q_weights)
    z = torch.as_tensor(grid.prior_std * rng.standard_normal((cfg.samples, d)))
    out_p = SAMPLERS[cfg.sampler](p_fit, z.clone(), grid).numpy()
    out_q = SAMPLERS[cfg.sampler](q_fit, z.clone(), grid).numpy()
    scale = float(np.sqrt(np.trace(np.cov(train.T))))
    finite_p, finite_q = (np.all(np.isfinite(o), axis=1) for o in (out_p, out_q))
    same = bool(np.array_equal(finite_p, finite_q)) and finite_p.any()
    gap = float(np.max(np.abs(out_p - out_q)[finite_p]) / scale) if same else float("inf")
    cls = f"{cfg.features} random features" if cfg.features else "total degree"
    check = Check(f"moment equivalence ({cls}, p vs {len(q_atoms)}-atom {name})", gap, None,
                  gap <= EQUIVALENCE_RTOL, "identical outputs (same diverging starts)", f"max gap {gap:.2e} x scale",
                  f"<= {EQUIVALENCE_RTOL:g} x scale")
    measured = {"training_points": cfg.n_train, "surrogate_atoms": len(q_atoms),
                "diverged_starts (p, q)": np.array([(~finite_p).sum(), (~finite_q).sum()]),
                "sample_mean": out_p[finite_p].mean(axis=0), "target_mean": train.mean(axis=0)}
    return check, measured, train

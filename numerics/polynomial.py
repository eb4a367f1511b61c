"""Polynomial denoisers ``D(x, sigma) -> x0_hat`` on ``(batch, d)`` tensors, evaluated in float64.

* :func:`fit_polynomial`: the optimal 1-D degree-``k`` denoiser from its definition, least squares over a
  discrete law (its atoms and weights) with the noise integrated exactly by Gauss--Hermite quadrature;
  moments are never formed. :func:`gaussian_mixture_rule` turns a Gaussian mixture into such a law
  without changing any moment the fit sees, so the mixture's optimum is fitted exactly too.
* :func:`fit_multivariate`: the full polynomial of total degree ``<= k`` in ``d`` dimensions, the noise
  integrated by a tensor Gauss--Hermite rule (``d <= 3``) or, if ``copies`` is given, by noisy copies.
* :func:`fit_random_features`: read-out ``A phi(x) + b`` on random features ``phi = (R u) ** k``, least
  squares on noisy copies of a training set.

Every fitted denoiser is tabulated on the noise levels it was fitted at; another sigma is an error.
Float64 by default; a float32 input is evaluated in float64 and returned as float32.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from numpy.polynomial import hermite_e

from numerics.denoisers import check_width, level
from numerics.noise import randn_like
from numerics import validation

MAX_TENSOR_DIM = 3     # a tensor Gauss-Hermite rule has q^d nodes per atom: d <= 3 keeps it small
WEIGHT_ATOL = 1e-8     # weights of a quadrature / empirical law sum to 1 up to round-off
SOLVE_RTOL = 1e-10     # relative residual of an LU solve of the normal equations; above it, minimum-norm lstsq


# ----------------------------------------------------------------------------- argument checks
def _degree(value, name: str = "degree") -> int:
    """Return ``value`` if it is an integer >= 0."""
    numeric = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not numeric or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _levels(sigmas) -> list[float]:
    """The distinct positive noise levels of ``sigmas`` (zeros, as a grid's final point, are skipped)."""
    values = validation.finite_array(sigmas, "sigmas").reshape(-1)
    if np.any(values < 0) or not np.any(values > 0):
        raise ValueError("sigmas must be >= 0 with at least one noise level > 0")
    return [float(s) for s in np.unique(values) if s > 0]


def _law(atoms, weights, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` atoms and ``(n,)`` weights (uniform if None), or ValueError naming the argument."""
    a = validation.finite_array(atoms, "atoms")
    if dim == 1 and a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0 or (dim is not None and a.shape[1] != dim):
        raise ValueError(f"atoms must have shape (n, {dim or 'd'}) with n >= 1, got {a.shape}")
    if weights is None:
        return a, np.full(a.shape[0], 1.0 / a.shape[0])
    w = validation.finite_array(weights, "weights", ndim=1)
    if w.shape[0] != a.shape[0]:
        raise ValueError(f"weights must have one entry per atom ({a.shape[0]}), got {w.shape[0]}")
    if np.any(w < 0) or abs(w.sum() - 1.0) > WEIGHT_ATOL:
        raise ValueError(f"weights must be >= 0 and sum to 1, got sum {w.sum()!r}")
    return a, w


def _scaling(a: np.ndarray, w: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and per-coordinate std of ``y = a + sigma n``: the affine map to the well-scaled variable ``u``."""
    mean = w @ a
    return mean, np.sqrt(w @ (a - mean) ** 2 + sigma**2)


def _gauss_hermite(points: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) of the ``points``-point rule for ``N(0, 1)``: exact to degree 2 points - 1."""
    t, h = hermite_e.hermegauss(points)
    return t, h / h.sum()


def _quadrature_points(value, degree: int) -> int:
    """Default ``2k + 2`` nodes; the squared residual has degree ``2k`` in the noise, so ``k + 1`` is exact."""
    if value is None:
        return 2 * degree + 2
    q = validation.positive_int(value, "quadrature_points")
    if q < degree + 1:
        raise ValueError(f"quadrature_points must be >= degree + 1 = {degree + 1} to be exact, got {q}")
    return q


def _lstsq(design: np.ndarray, target: np.ndarray, root_weights: np.ndarray) -> np.ndarray:
    """Weighted least squares ``min sum_r w_r |design_r c - target_r|^2`` (LAPACK gelsd)."""
    root = root_weights.reshape(-1, *([1] * (design.ndim - 1)))
    return np.linalg.lstsq(design * root, target * root.reshape(-1, *([1] * (target.ndim - 1))), rcond=None)[0]


# ----------------------------------------------------------------------------- tabulated evaluation
class TabulatedDenoiser:
    """Parameters stored per noise level; evaluated in float64 and returned in the input's dtype."""

    def __init__(self, table: dict, dim: int):
        self.table = {float(k): v for k, v in table.items()}
        self.dim = dim

    def parameters(self, sigma):
        return level(self.table, sigma)

    def _apply(self, y: torch.Tensor, params) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        check_width(x, self.dim)
        return self._apply(x.to(torch.float64), self.parameters(sigma)).to(x.dtype)


def _horner(coef, u: torch.Tensor) -> torch.Tensor:
    """``sum_j coef[j] u^j`` by Horner's rule."""
    out = torch.full_like(u, float(coef[-1]))
    for c in coef[-2::-1]:
        out = out * u + float(c)
    return out


class Polynomial1D(TabulatedDenoiser):
    """``D(y) = sum_j c_j ((y - center) / scale)^j`` with ``table[sigma] = (center, scale, c)``; d = 1."""

    def __init__(self, table: dict):
        super().__init__(table, 1)

    def _apply(self, y, params):
        center, scale, coef = params
        return _horner(coef, (y - center) / scale)


# ----------------------------------------------------------------------------- 1-D fit from atoms
def fit_polynomial(atoms, weights, sigmas, degree: int, *, quadrature_points=None) -> Polynomial1D:
    """Degree-``k`` least squares from the atoms, ``min sum_i w_i sum_q h_q (D(a_i + sigma t_q) - a_i)^2``.

    ``(t_q, h_q)`` is a Gauss--Hermite rule with ``>= k + 1`` nodes, so the noise integral is exact. Solved
    in the Hermite basis ``He_j(u)`` of ``u = (y - mean) / std(y)``, stored as monomials in ``u``.
    """
    a, w = _law(atoms, weights, dim=1)
    k, levels = _degree(degree), _levels(sigmas)
    t, h = _gauss_hermite(_quadrature_points(quadrature_points, k))
    root = np.sqrt(np.outer(w, h)).ravel()
    target = np.repeat(a[:, 0], t.shape[0])
    table = {}
    for sigma in levels:
        center, scale = (float(v[0]) for v in _scaling(a, w, sigma))
        u = ((a + sigma * t[None, :]).ravel() - center) / scale
        d = _lstsq(hermite_e.hermevander(u, k), target, root)
        coef = hermite_e.herme2poly(d)
        table[sigma] = (center, scale, np.pad(coef, (0, k + 1 - coef.shape[0])))
    return Polynomial1D(table)


def gaussian_mixture_rule(weights, means, stds, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Atoms ``mu_c + s_c t_q`` and weights ``w_c h_q`` of the 1-D mixture ``sum_c w_c N(mu_c, s_c^2)``.

    Each component's ``points``-point Gauss--Hermite rule integrates polynomials of degree ``<= 2 points - 1``
    exactly, so the discrete law has the mixture's moments through that order: with ``points >= k + 1``
    the degree-``k`` least squares of :func:`fit_polynomial` on it is the mixture's own optimum.
    """
    w = validation.finite_array(weights, "weights", ndim=1)
    mu = validation.finite_array(means, "means", ndim=1)
    s = validation.finite_array(stds, "stds", ndim=1)
    if not (w.shape == mu.shape == s.shape) or np.any(s < 0) or np.any(w < 0) or abs(w.sum() - 1) > WEIGHT_ATOL:
        raise ValueError("weights, means, stds must have one entry per component, stds >= 0, weights >= 0 summing to 1")
    t, h = _gauss_hermite(validation.positive_int(points, "points"))
    return (mu[:, None] + s[:, None] * t[None, :]).ravel(), np.outer(w, h).ravel()


# ----------------------------------------------------------------------------- multivariate
def monomial_exponents(dim: int, degree: int) -> list[tuple[int, ...]]:
    """All monomials of total degree ``<= degree`` as tuples of coordinate indices (repeats = powers)."""
    return [c for r in range(degree + 1) for c in itertools.combinations_with_replacement(range(dim), r)]


def _monomials(u: torch.Tensor, combos) -> torch.Tensor:
    """``(N, F)`` features ``prod_{i in c} u_i`` for each index tuple ``c`` (the empty tuple gives 1)."""
    cache = {(): torch.ones(u.shape[0], dtype=u.dtype, device=u.device)}
    for c in combos:  # sorted by length: each monomial is a shorter one times one coordinate
        if c not in cache:
            cache[c] = cache[c[:-1]] * u[:, c[-1]]
    return torch.stack([cache[c] for c in combos], dim=1)


class MultivariatePolynomial(TabulatedDenoiser):
    """``D(y) = phi((y - center) / scale) @ coef``, ``phi`` the monomials of total degree ``<= k``."""

    def __init__(self, table: dict, dim: int, degree: int):
        super().__init__(table, dim)
        self.degree, self.combos = degree, monomial_exponents(dim, degree)

    def _apply(self, y, params):
        center, scale, coef = (torch.as_tensor(v, dtype=torch.float64, device=y.device) for v in params)
        return _monomials((y - center) / scale, self.combos) @ coef


def symmetric_gaussian_rule(d: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of a rule for ``N(0, I_d)`` exact for polynomials of degree ``<= degree`` (3 or 5).

    Degree 3: ``+-sqrt(d) e_i``, weights ``1/(2d)``. Degree 5: ``0`` (weight ``2/(d+2)``), ``+-sqrt(d+2) e_i``
    (``(4-d)/(2(d+2)^2)``, negative for ``d > 4``), ``sqrt((d+2)/2)(+-e_i +- e_j)`` (``1/(d+2)^2``): the weights
    solve E[1] = 1, E[x_1^2] = 1, E[x_1^4] = 3, E[x_1^2 x_2^2] = 1; odd moments vanish by symmetry.
    """
    d = validation.positive_int(d, "d")
    eye = np.eye(d)
    if degree == 3:
        return np.sqrt(d) * np.concatenate([eye, -eye]), np.full(2 * d, 1.0 / (2 * d))
    if degree != 5:
        raise ValueError(f"degree must be 3 or 5, got {degree!r}")
    pairs = [sign_i * eye[i] + sign_j * eye[j] for i, j in itertools.combinations(range(d), 2)
             for sign_i in (1, -1) for sign_j in (1, -1)]
    nodes = np.concatenate([np.zeros((1, d)), np.sqrt(d + 2.0) * np.concatenate([eye, -eye])]
                           + ([np.sqrt((d + 2) / 2) * np.array(pairs)] if pairs else []))
    weights = np.concatenate([[2 / (d + 2)], np.full(2 * d, (4 - d) / (2 * (d + 2) ** 2)),
                              np.full(len(pairs), 1 / (d + 2) ** 2)])
    return nodes, weights


def _noise_rule(n, d, k, quadrature_points, copies, generator, noise_nodes=None, noise_weights=None):
    """Noise nodes ``(n or 1, Q, d)`` and weights ``(Q,)``: tensor Gauss--Hermite (``d <= 3``), the symmetric
    rule of degree ``2k + 1`` (``d > 3``, ``k <= 2``), ``copies`` normal draws per atom, or ``noise_nodes``
    (``(Q, d)``, equal weights) shared by every atom."""
    if noise_nodes is not None:
        nodes = validation.finite_array(noise_nodes, "noise_nodes", ndim=2)
        if nodes.shape[1] != d or nodes.shape[0] == 0:
            raise ValueError(f"noise_nodes must have shape (Q, {d}) with Q >= 1, got {nodes.shape}")
        if noise_weights is None:
            return nodes[None], np.full(nodes.shape[0], 1.0 / nodes.shape[0])
        h = validation.finite_array(noise_weights, "noise_weights", ndim=1)
        if h.shape[0] != nodes.shape[0] or abs(h.sum() - 1.0) > WEIGHT_ATOL:
            raise ValueError(f"noise_weights must have one entry per node ({nodes.shape[0]}) and sum to 1")
        return nodes[None], h
    if copies is not None:
        copies = validation.positive_int(copies, "copies")
        noise = randn_like(torch.empty(n, copies, d, dtype=torch.float64), generator).numpy()
        return noise, np.full(copies, 1.0 / copies)
    if d > MAX_TENSOR_DIM and k <= 2:
        nodes, weights = symmetric_gaussian_rule(d, 3 if k <= 1 else 5)
        return nodes[None], weights
    if d > MAX_TENSOR_DIM:
        raise ValueError(f"atoms have dimension {d} > {MAX_TENSOR_DIM} with degree {k} > 2: no exact noise rule "
                         "here; pass copies (and a generator) or noise_nodes to integrate the noise")
    t, h = _gauss_hermite(_quadrature_points(quadrature_points, k))
    nodes = np.array(list(itertools.product(t, repeat=d)))
    return nodes[None], np.prod(np.array(list(itertools.product(h, repeat=d))), axis=1)


def _fit_table(features, a, w, levels, noise, h) -> dict:
    """Per sigma: ``(center, scale, coef)`` minimizing ``sum_i w_i sum_q h_q |features(u_iq) coef - a_i|^2``,
    ``u = (a_i + sigma noise_q - center) / scale`` with the mean and ``sqrt(var + sigma^2)`` of the law."""
    n, d = a.shape
    weights, target, table = np.outer(w, h).ravel(), np.repeat(a, h.shape[0], axis=0), {}
    for sigma in levels:
        center, scale = _scaling(a, w, sigma)
        u = ((a[:, None, :] + sigma * noise).reshape(-1, d) - center) / scale
        table[sigma] = (center, scale, _normal_solve(features(torch.from_numpy(u)).numpy(), target, weights))
    return table


def _normal_solve(design: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least squares by its normal equations ``(F^T W F) c = F^T W t``, solved by :func:`solve_normal`:
    F has few columns and many rows, so this is the fast way."""
    weighted = design * weights[:, None]
    return solve_normal(weighted.T @ design, weighted.T @ target)


def solve_normal(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``gram c = rhs``, diagonally equilibrated, by LU; by ``lstsq`` (minimum norm) where the LU residual shows
    the system numerically singular. (LU, not Cholesky: OpenBLAS's threaded potrf is ~6x slower on 2 busy cores.)"""
    scale = 1.0 / np.sqrt(np.maximum(np.diag(gram), np.finfo(float).tiny))
    G, b = gram * np.outer(scale, scale), scale[:, None] * rhs
    try:
        c = np.linalg.solve(G, b)
        if np.linalg.norm(G @ c - b) <= SOLVE_RTOL * max(np.linalg.norm(b), np.finfo(float).tiny):
            return scale[:, None] * c
    except np.linalg.LinAlgError:
        pass
    return scale[:, None] * np.linalg.lstsq(G, b, rcond=None)[0]


def fit_multivariate(atoms, weights, sigmas, degree: int, *, quadrature_points=None, copies=None,
                     generator=None, noise_nodes=None, noise_weights=None) -> MultivariatePolynomial:
    """Least squares over all monomials of total degree ``<= k`` of ``u = (y - mean) / std(y)`` per coordinate.

    The noise is integrated exactly by a tensor Gauss--Hermite rule for ``d <= 3`` (``q^d`` nodes,
    ``q = 2k + 2`` by default); with ``copies`` it uses that many standard-normal draws per atom instead;
    with ``noise_nodes`` one fixed set of nodes for every atom (the fit is then the exact optimum for that
    empirical noise law, and still sees the atoms only through their mixed moments of order ``<= 2k``).
    """
    a, w = _law(atoms, weights)
    k, levels = _degree(degree), _levels(sigmas)
    noise, h = _noise_rule(a.shape[0], a.shape[1], k, quadrature_points, copies, generator, noise_nodes,
                           noise_weights)
    combos = monomial_exponents(a.shape[1], k)
    return MultivariatePolynomial(_fit_table(lambda u: _monomials(u, combos), a, w, levels, noise, h),
                                  a.shape[1], k)


# ----------------------------------------------------------------------------- random features
class RandomFeatureDenoiser(TabulatedDenoiser):
    """``D(y) = [ (R u) ** k, 1 ] @ coef`` with ``u = (y - center) / scale`` and ``R`` fixed (m x d).

    With ``all_powers`` the features are ``(R u) ** j`` for every ``j = 1..k`` (a full degree-k random
    polynomial, which can represent the identity that small-noise denoising needs).
    """

    def __init__(self, table: dict, R: np.ndarray, degree: int, all_powers: bool = False):
        super().__init__(table, R.shape[1])
        self.R, self.degree = R, degree
        self.powers = range(1, degree + 1) if all_powers else (degree,)

    def features(self, y: torch.Tensor, center, scale) -> torch.Tensor:
        u = (y - torch.as_tensor(center, device=y.device)) / torch.as_tensor(scale, device=y.device)
        return self.powers_of(u)

    def powers_of(self, u: torch.Tensor) -> torch.Tensor:
        """``[(R u)^j for j in powers, 1]`` of the normalized input ``u``."""
        z = u @ torch.as_tensor(self.R, device=u.device).T
        ones = torch.ones(u.shape[0], 1, dtype=u.dtype, device=u.device)
        return torch.cat([z**j for j in self.powers] + [ones], dim=1)

    def _apply(self, y, params):
        center, scale, coef = params
        return self.features(y, center, scale) @ torch.as_tensor(coef, device=y.device)


def fit_random_features(train, sigmas, degree: int, m: int, copies: int, generator=None,
                        all_powers: bool = False) -> RandomFeatureDenoiser:
    """Least squares read-out on ``copies`` noisy copies of ``train`` per sigma; ``R ~ N(0, 1/d)`` from ``generator``.

    The input is centered and scaled per coordinate by the mean and ``sqrt(var + sigma^2)`` of the
    training set, so ``R u`` has order-one entries at every noise level.
    """
    train = validation.finite_array(train, "train", ndim=2)
    if train.shape[0] == 0:
        raise ValueError("train must hold at least one point")
    k, levels = _degree(degree), _levels(sigmas)
    m, copies = validation.positive_int(m, "m"), validation.positive_int(copies, "copies")
    n, d = train.shape
    R = random_projection(m, d, generator)
    x0 = torch.as_tensor(train).repeat(copies, 1)
    uniform = np.full(n, 1.0 / n)
    denoiser = RandomFeatureDenoiser({}, R, k, all_powers)
    for sigma in levels:
        center, scale = _scaling(train, uniform, sigma)
        y = x0 + sigma * randn_like(x0, generator)
        design = denoiser.features(y, center, scale).numpy()
        denoiser.table[sigma] = (center, scale, np.linalg.lstsq(design, x0.numpy(), rcond=None)[0])
    return denoiser


def random_projection(m: int, d: int, generator=None) -> np.ndarray:
    """``R ~ N(0, 1/d)``, ``m x d``, from ``generator``."""
    m, d = validation.positive_int(m, "m"), validation.positive_int(d, "d")
    return randn_like(torch.empty(m, d, dtype=torch.float64), generator).numpy() / math.sqrt(d)


def fit_random_features_law(atoms, weights, sigmas, degree: int, R, noise_nodes,
                            noise_weights=None) -> RandomFeatureDenoiser:
    """Random-feature read-out (all powers ``1..k`` of ``R u`` and a constant) on a discrete law, the noise
    integrated by ``noise_nodes`` (weights ``noise_weights``, default equal) shared by every atom; normalization by the law's mean and variance (moments
    of order <= 2, so a moment-matching surrogate gets the same one)."""
    a, w = _law(atoms, weights)
    R = validation.finite_array(R, "R", ndim=2)
    if R.shape[1] != a.shape[1]:
        raise ValueError(f"R must have shape (m, {a.shape[1]}), got {R.shape}")
    k, levels = _degree(degree), _levels(sigmas)
    noise, h = _noise_rule(a.shape[0], a.shape[1], k, None, None, None, noise_nodes, noise_weights)
    denoiser = RandomFeatureDenoiser({}, R, k, all_powers=True)
    denoiser.table.update(_fit_table(denoiser.powers_of, a, w, levels, noise, h))
    return denoiser

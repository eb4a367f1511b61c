"""Polynomial denoisers ``D(x, sigma) -> x0_hat`` on ``(batch, d)`` tensors, evaluated in float64.

* :class:`MomentPolynomialDenoiser`: the closed-form optimal 1-D degree-``k`` denoiser from the moments
  ``m_0 .. m_2k`` (Result 9, :func:`theory.polynomial.coefficients`), any ``sigma > 0``.
* :func:`fit_polynomial`: the same 1-D denoiser fitted from a discrete law itself (its atoms and weights),
  the noise integrated exactly by Gauss--Hermite quadrature; moments are never formed. On the atoms'
  moments it equals the former, the non-tautological route to moment equivalence (Result 10).
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
from theory.polynomial import coefficients

MAX_TENSOR_DIM = 3     # a tensor Gauss-Hermite rule has q^d nodes per atom: d <= 3 keeps it small
WEIGHT_ATOL = 1e-8     # weights of a quadrature / empirical law sum to 1 up to round-off


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


class MomentPolynomialDenoiser(Polynomial1D):
    """The optimal degree-``k`` 1-D denoiser from ``moments = (m_0, .., m_2k)``; coefficients cached per sigma."""

    def __init__(self, moments, degree: int):
        self.degree = _degree(degree)
        self.moments = validation.finite_array(moments, "moments", ndim=1)
        super().__init__({})
        self.parameters(1.0)  # refuse bad moments now, not at the first call

    def parameters(self, sigma):
        key = validation.positive(sigma, "sigma")
        if key not in self.table:
            self.table[key] = (0.0, 1.0, coefficients(self.moments, key, self.degree))
        return self.table[key]


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


# ----------------------------------------------------------------------------- multivariate
def monomial_exponents(dim: int, degree: int) -> list[tuple[int, ...]]:
    """All monomials of total degree ``<= degree`` as tuples of coordinate indices (repeats = powers)."""
    return [c for r in range(degree + 1) for c in itertools.combinations_with_replacement(range(dim), r)]


def _monomials(u: torch.Tensor, combos) -> torch.Tensor:
    """``(N, F)`` features ``prod_{i in c} u_i`` for each index tuple ``c`` (the empty tuple gives 1)."""
    ones = torch.ones(u.shape[0], dtype=u.dtype, device=u.device)
    return torch.stack([u[:, list(c)].prod(dim=1) if c else ones for c in combos], dim=1)


class MultivariatePolynomial(TabulatedDenoiser):
    """``D(y) = phi((y - center) / scale) @ coef``, ``phi`` the monomials of total degree ``<= k``."""

    def __init__(self, table: dict, dim: int, degree: int):
        super().__init__(table, dim)
        self.degree, self.combos = degree, monomial_exponents(dim, degree)

    def _apply(self, y, params):
        center, scale, coef = (torch.as_tensor(v, dtype=torch.float64, device=y.device) for v in params)
        return _monomials((y - center) / scale, self.combos) @ coef


def _noise_rule(n, d, k, quadrature_points, copies, generator):
    """Noise nodes ``(n or 1, Q, d)`` and weights ``(Q,)``: tensor Gauss--Hermite, or ``copies`` normal draws."""
    if copies is not None:
        copies = validation.positive_int(copies, "copies")
        noise = randn_like(torch.empty(n, copies, d, dtype=torch.float64), generator).numpy()
        return noise, np.full(copies, 1.0 / copies)
    if d > MAX_TENSOR_DIM:
        raise ValueError(f"atoms have dimension {d} > {MAX_TENSOR_DIM}: the tensor Gauss-Hermite rule is too "
                         "large; pass copies (and a generator) to integrate the noise by noisy copies")
    t, h = _gauss_hermite(_quadrature_points(quadrature_points, k))
    nodes = np.array(list(itertools.product(t, repeat=d)))
    return nodes[None], np.prod(np.array(list(itertools.product(h, repeat=d))), axis=1)


def fit_multivariate(atoms, weights, sigmas, degree: int, *, quadrature_points=None, copies=None,
                     generator=None) -> MultivariatePolynomial:
    """Least squares over all monomials of total degree ``<= k`` of ``u = (y - mean) / std(y)`` per coordinate.

    The noise is integrated exactly by a tensor Gauss--Hermite rule for ``d <= 3`` (``q^d`` nodes,
    ``q = 2k + 2`` by default); with ``copies`` it uses that many standard-normal draws per atom instead.
    """
    a, w = _law(atoms, weights)
    k, levels = _degree(degree), _levels(sigmas)
    n, d = a.shape
    noise, h = _noise_rule(n, d, k, quadrature_points, copies, generator)
    combos, root = monomial_exponents(d, k), np.sqrt(np.outer(w, h)).ravel()
    target = np.repeat(a, h.shape[0], axis=0)
    table = {}
    for sigma in levels:
        center, scale = _scaling(a, w, sigma)
        u = ((a[:, None, :] + sigma * noise).reshape(-1, d) - center) / scale
        coef = _lstsq(_monomials(torch.from_numpy(u), combos).numpy(), target, root)
        table[sigma] = (center, scale, coef)
    return MultivariatePolynomial(table, d, k)


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
        z = u @ torch.as_tensor(self.R, device=y.device).T
        ones = torch.ones(y.shape[0], 1, dtype=y.dtype, device=y.device)
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
    R = randn_like(torch.empty(m, d, dtype=torch.float64), generator).numpy() / math.sqrt(d)
    x0 = torch.as_tensor(train).repeat(copies, 1)
    uniform = np.full(n, 1.0 / n)
    denoiser = RandomFeatureDenoiser({}, R, k, all_powers)
    for sigma in levels:
        center, scale = _scaling(train, uniform, sigma)
        y = x0 + sigma * randn_like(x0, generator)
        design = denoiser.features(y, center, scale).numpy()
        denoiser.table[sigma] = (center, scale, np.linalg.lstsq(design, x0.numpy(), rcond=None)[0])
    return denoiser

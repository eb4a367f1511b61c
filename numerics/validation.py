"""Argument checks shared by every package: each error names the argument and what is allowed."""
from __future__ import annotations

import numpy as np


def finite_array(value, name: str, *, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a float64 array, refusing NaN/inf and a wrong number of axes."""
    array = np.asarray(value, dtype=np.float64)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return array


def covariance(value, name: str = "cov", *, dim: int | None = None, rtol: float = 1e-10) -> np.ndarray:
    """Return a symmetric positive semi-definite ``(d, d)`` matrix or raise naming ``name``.

    Symmetry is required to ``rtol`` relative to the largest entry; eigenvalues may be
    negative only by round-off (``-rtol`` times the largest eigenvalue).
    """
    matrix = finite_array(value, name, ndim=2)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be square, got shape {matrix.shape}")
    if dim is not None and matrix.shape[0] != dim:
        raise ValueError(f"{name} must be {dim} x {dim} to match the mean, got {matrix.shape}")
    scale = max(np.max(np.abs(matrix)), np.finfo(float).tiny)
    if np.max(np.abs(matrix - matrix.T)) > rtol * scale:
        raise ValueError(f"{name} must be symmetric")
    diagonal = np.diag(matrix)
    eigenvalues = np.sort(diagonal) if np.array_equal(matrix, np.diag(diagonal)) else np.linalg.eigvalsh(matrix)
    if eigenvalues[0] < -rtol * max(eigenvalues[-1], 0.0) - np.finfo(float).tiny:
        raise ValueError(f"{name} must be positive semi-definite, smallest eigenvalue {eigenvalues[0]:.3e}")
    return 0.5 * (matrix + matrix.T)


def mean_vector(value, name: str = "mean", *, dim: int | None = None) -> np.ndarray:
    """Return a finite ``(d,)`` vector or raise naming ``name``."""
    vector = finite_array(value, name, ndim=1)
    if dim is not None and vector.shape[0] != dim:
        raise ValueError(f"{name} must have length {dim}, got {vector.shape[0]}")
    return vector


def positive(value, name: str) -> float:
    """Return ``value`` as a float if it is finite and > 0."""
    number = float(value)
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def positive_int(value, name: str) -> int:
    """Return ``value`` if it is an integer >= 1."""
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not numeric or not np.isfinite(value) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def choice(value: str, name: str, allowed) -> str:
    """Return ``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(sorted(allowed))}")
    return value


def device(value, name: str = "device") -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` (default: ``cuda`` when a GPU is visible, else ``cpu``), checked available."""
    import torch

    if value is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a string such as 'cpu' or 'cuda', got {type(value).__name__}")
    text = str(value)
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
        raise ValueError(f"unknown {name} {text!r}; allowed: cpu, cuda, cuda:N")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {text!r}: no CUDA device visible; use {name} cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(f"{name} {text!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return text


def float_dtype(value, name: str = "dtype"):
    """A floating torch dtype the samplers run in: float32 or float64."""
    import torch

    if value not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be torch.float32 or torch.float64, got {value!r}")
    return value


def grid(value, name: str = "grid"):
    """A ``numerics.schedules.Grid`` (built by a schedule's ``grid(steps)``, validated on construction)."""
    from numerics.schedules import Grid

    if not isinstance(value, Grid):
        raise TypeError(f"{name} must be a numerics.schedules.Grid (e.g. VESchedule().grid(steps)), "
                        f"got {type(value).__name__}")
    return value

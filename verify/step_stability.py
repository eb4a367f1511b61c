"""Result 18 in ``python -m verify.creativity``: which starts the explicit step, not the flow, makes escape.

A tabulated denoiser has a flow only once it is extended between its fitted levels: here linearly in
``log sigma`` (:class:`LevelInterpolated`), the extension the sampler's Heun step is consistent with. Its
reference flow is the same sampler on ``FLOW_SUBSTEPS`` geometric substeps per sampler step. Per start:

* the flow escapes (continuous-time blow-up: no step size removes it);
* or the flow stays bounded and, at some sampler level ``sigma_i``, the sampler's step ``sigma_i ->
  sigma_{i+1} > 0`` is absolutely unstable (Result 18: ``|R| > 1`` on a mode of ``dD/dy`` the flow damps)
  at the flow's point ``y(sigma_i)``: a predicted discretization escape, made without running the
  sampler itself (leading order: the linearization at the flow, not at the iterate);
* or neither: predicted to stay finite.

The prediction is then set against the starts where the sampler run escapes.
"""
from __future__ import annotations

import numpy as np
import torch

from numerics.samplers import SAMPLERS
from numerics.schedules import sigma_grid
from theory import step_stability as result18
from verify.polynomial_stability import escaped

FLOW_SUBSTEPS = 8  # reference-flow Heun substeps per sampler step: the escaping set of verify.creativity's
                   # defaults is the same at 8 and 32 (10 of 2000), 8 of them already at 2
EIGEN_BATCH = 256  # starts per batched Jacobian (256 x m x d float64 intermediates)


def feature_jacobian(denoiser, y: torch.Tensor, sigma: float) -> torch.Tensor:
    """``dD_i/dy_l`` (n, d, d) of a ``RandomFeatureDenoiser``: ``sum_j j A_j^T diag((R u)^(j-1)) R / scale``."""
    center, scale, coef = (torch.as_tensor(v, dtype=torch.float64) for v in denoiser.parameters(sigma))
    R = torch.as_tensor(denoiser.R, dtype=torch.float64)
    z = ((y - center) / scale) @ R.T
    m = R.shape[0]
    weights = sum(j * z[:, :, None] ** (j - 1) * coef[b * m:(b + 1) * m] for b, j in enumerate(denoiser.powers))
    return torch.einsum("nfi,fl->nil", weights, R / scale)


class LevelInterpolated:
    """``D(y, sigma)`` between the fitted levels: the two neighbours' outputs, linear in ``log sigma``."""

    def __init__(self, denoiser, levels):
        self.denoiser, self.levels = denoiser, np.sort(np.asarray(levels, dtype=np.float64))[::-1]

    def __call__(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        i = int(np.searchsorted(-self.levels, -float(sigma)))  # levels[i] <= sigma < levels[i - 1]
        if self.levels[i] == float(sigma):
            return self.denoiser(y, self.levels[i])
        upper, lower = self.levels[i - 1], self.levels[i]
        w = np.log(upper / sigma) / np.log(upper / lower)
        return (1 - w) * self.denoiser(y, upper) + w * self.denoiser(y, lower)


def reference_flow(denoiser, grid, starts, substeps: int = FLOW_SUBSTEPS) -> tuple[torch.Tensor, torch.Tensor]:
    """The interpolated denoiser's flow from ``starts`` (Heun, ``substeps`` per sampler step of a VE ``grid``
    ending at 0): its points at the sampler's levels ``sigma_0..sigma_{N-1}`` (n, N, d) and its end (n, d)."""
    levels = grid.sigma[grid.sigma > 0]
    fine = [np.geomspace(hi, lo, substeps + 1)[:-1] for hi, lo in zip(levels[:-1], levels[1:])]
    points = [torch.as_tensor(starts, dtype=torch.float64)]
    keep = lambda info: points.append(info["x"]) if (info["i"] + 1) % substeps == 0 else None  # noqa: E731
    with torch.inference_mode(), np.errstate(all="ignore"):
        end = SAMPLERS["heun"](LevelInterpolated(denoiser, levels), points[0],
                               sigma_grid(np.concatenate(fine + [levels[-1:], [0.0]]), prior_std=grid.prior_std),
                               callback=keep)
    return torch.stack(points[:levels.size], dim=1), end


def step_amplification(denoiser, grid, points, method: str) -> np.ndarray:
    """Per start (row of ``points``, the flow at the sampler's levels): the largest damped-mode ``|R|`` of
    the sampler's steps to ``sigma' > 0`` (Result 18), from the eigenvalues of ``dD/dy`` there."""
    worst = np.zeros(points.shape[0])
    for i in range(points.shape[1] - 1):
        sigma, q = float(grid.sigma[i]), float(grid.sigma[i + 1] / grid.sigma[i] - 1)
        for rows in torch.split(torch.arange(points.shape[0]), EIGEN_BATCH):
            mu = torch.linalg.eigvals(feature_jacobian(denoiser, points[rows, i], sigma)).numpy()
            worst[rows.numpy()] = np.maximum(worst[rows.numpy()], result18.damped_mode_amplification(mu, q, method))
    return worst


def step_prediction(denoiser, sampler: str, grid, starts, scale: float) -> dict:
    """Result 18's per-start prediction for a ``RandomFeatureDenoiser`` on a VE ``grid`` against the sampler:
    boolean arrays ``flow`` (the reference flow escapes), ``step`` (flow bounded, some step unstable on it),
    ``observed`` (the sampler escapes)."""
    if sampler not in result18.METHODS:
        raise ValueError(f"Result 18 has the stability functions of {result18.METHODS}, not {sampler!r}")
    starts = torch.as_tensor(starts, dtype=torch.float64)
    with torch.inference_mode(), np.errstate(all="ignore"):
        observed = escaped(SAMPLERS[sampler](denoiser, starts, grid).numpy(), scale)
    points, end = reference_flow(denoiser, grid, starts)
    flow = escaped(end.numpy(), scale)
    step = np.zeros_like(flow)
    step[~flow] = step_amplification(denoiser, grid, points[~flow], sampler) > 1
    return {"flow": flow, "step": step, "observed": observed}


def summary(prediction: dict, sampler: str) -> str:
    """One line: predicted (flow, step) against observed escapes."""
    flow, step, seen = (prediction[k] for k in ("flow", "step", "observed"))
    return (f"Result 18 (step stability, {sampler}, at the reference flow): the flow escapes from {flow.sum()} of "
            f"{flow.size} starts, the step is unstable on it for {step.sum()} more (predicted discretization "
            f"escapes); observed {seen.sum()} escape: {(seen & flow).sum()} where the flow does, "
            f"{(seen & step).sum()} where the step was predicted unstable, {(seen & ~flow & ~step).sum()} unexplained; "
            f"{(flow & ~seen).sum()} flow escapes the sampler misses")

"""Result 15 in ``d >= 2``: the theory's moment-built denoiser and flow map against the numerics fit and sampler.

Theory: :class:`theory.polynomial_flow_nd.MultivariateDenoiser` from the training set's mixed moments, its
flow map ``T`` with ``log|det J|`` and the inverse flow. Numerics: the least-squares fit on the training set
with the noise integrated exactly (tensor Gauss--Hermite for d <= 3, in closed form above), run by the
sampler on the 4N- and 8N-step grids. Checks: the two denoisers agree; the sampler from fixed starts lands
on ``T(z)`` (deterministic probe); the inverse flow sends the sampler's outputs back to their starts (round
trip) and its image of prior samples is ``N(0, sigma_max^2 I)`` (calibrated Gaussian tests); ``log|det J|`` equals
the finite-difference log-determinant of the sampler map. Diverging starts are reported, predicted
(theory flow) against observed (sampler).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from numerics.polynomial import MAX_TENSOR_DIM, fit_multivariate
from numerics.polynomial_noise import fit_multivariate_exact
from numerics.progress import bar
from numerics.samplers import SAMPLERS
from numerics.schedules import VESchedule
from theory import polynomial_flow_nd as result15
from theory.polynomial_law import FlowDivergence
from verify import polynomial_stability
from verify.check import Check
from verify.stats import gaussian_checks

DENOISER_RTOL = 1e-8   # normal equations from moments vs least squares on atoms: <= 2e-12 x scale measured
FACTOR = 2.0           # |x_2N - exact| ~ e / (2^p - 1) <= e for a sampler of order p >= 1: factor 2 margin
FLOW_ATOL = 1e-6       # DOP853 at rtol 1e-10 on |T| <= ~100 (x the inverse's amplification ~ sigma_max)
INVERSE_RADIUS = 10.0  # samples beyond 10 data scales of the mean (training points: <= 4.8 at d = 64) are on their way
                      # out; at d = 64, k = 2 their inverse flow (to 5e4 scales) took DOP853 > 15 min
PROBE_STARTS = 6       # fixed prior starts for the probe and the round trip
FD_STARTS, FD_STEP = 2, 1e-3   # finite-difference Jacobians: starts, and step in units of sigma_max
REFINE = 4             # deterministic checks run the sampler at 4N and 8N steps (6 starts: cheap), so that the
                       # measured discretization error is ~16x below the N-step one and 1% errors show


def unavailable(cfg) -> str | None:
    """Why the Result 15 checks cannot run for ``cfg`` (None if they can)."""
    if cfg.features is not None or cfg.negative_control is not None:
        return "they test the total-degree class without a negative control"
    monomials = math.comb(cfg.dim + cfg.degree, cfg.dim)
    if monomials > result15.MAX_FEATURES:
        return (f"{monomials} monomials > {result15.MAX_FEATURES} (theory normal equations too large: one "
                f"{monomials} x {monomials} Gram is {8 * monomials ** 2 / 1e9:.3g} GB per noise level)")
    return None


def total_degree_fit(train: np.ndarray, levels, k: int, progress: bool = False):
    """The numerics least-squares fit of degree ``k`` on ``train``, its Gaussian noise integrated exactly: by a
    tensor Gauss--Hermite rule for ``d <= 3``, else in closed form (no rule of degree 2k + 1 for ``k = 3``, and
    the symmetric degree-5 rule's ``2 d^2 + 1`` nodes per atom are too many at ``d = 64``)."""
    if train.shape[1] > MAX_TENSOR_DIM:
        return fit_multivariate_exact(train, None, levels, k, progress=progress)
    return fit_multivariate(train, None, levels, k)


def _runs(fit, z, grids, sampler):
    return [SAMPLERS[sampler](fit, torch.as_tensor(z), g).numpy() for g in grids]


def _fd_logdet(fit, z, grid, sampler):
    """``log|det dx_N/dz|`` of the sampler map by central differences, one batch of 2d runs per start."""
    d, h = z.shape[1], FD_STEP * grid.prior_std
    out = []
    for zi in z:
        batch = np.concatenate([zi + h * np.eye(d), zi - h * np.eye(d)])
        x = SAMPLERS[sampler](fit, torch.as_tensor(batch), grid).numpy()
        out.append(np.linalg.slogdet((x[:d] - x[d:]).T / (2 * h))[1])
    return np.array(out)


def _divergence(theory, z, grid, sampler_out):
    """``(predicted, observed)`` boolean masks of diverging starts (theory flow; sampler non-finite), and the
    flow map ``(T, L)`` of all starts if none left. The flow runs on all starts at once, and start by start
    only if some trajectory left (to say which)."""
    predicted, mapped = np.zeros(len(z), bool), None
    try:
        mapped = result15.flow_map_nd(theory, z, grid.sigma[0], grid.sigma[-1])
        starts = []
    except FlowDivergence:
        starts = range(len(z))
    for i in starts:
        try:
            result15.flow_map_nd(theory, z[i][None], grid.sigma[0], grid.sigma[-1])
        except FlowDivergence:
            predicted[i] = True
    observed = polynomial_stability.escaped(sampler_out, theory.scale)
    return predicted, observed, mapped


def flow_checks(cfg, train: np.ndarray, rng: np.random.Generator) -> tuple[list[Check], dict]:
    """The four Result 15 checks (and the divergence report) for the total-degree class on ``train``."""
    k, d = cfg.degree, cfg.dim
    shown = bar(len(PHASES), f"Result 15 checks, d = {d}", not cfg.quiet)
    grids = [VESchedule().grid(n * cfg.steps, final_zero=False) for n in (REFINE, 2 * REFINE)]
    theory = _phase(shown, 0, lambda: result15.MultivariateDenoiser(train, None, k))
    fit = _phase(shown, 1, lambda: total_degree_fit(train, np.concatenate([g.sigma for g in grids]), k,
                                                    progress=not cfg.quiet))
    checks = [_denoiser_check(theory, fit, train, grids[0].sigma[:: 4 * REFINE])]
    sigma_max, sigma_end = grids[0].sigma[0], grids[0].sigma[-1]
    z = sigma_max * rng.standard_normal((PROBE_STARTS, d))
    x = _runs(fit, z, grids, cfg.sampler)
    predicted, observed, mapped = _phase(shown, 2, lambda: _divergence(theory, z, grids[0], x[1]))
    measured = {"diverging starts predicted": int(predicted.sum()), "diverging starts observed": int(observed.sum())}
    checks.append(Check("divergence: predicted (theory flow) vs observed (sampler)", float((predicted != observed).sum()),
                        None, bool(np.array_equal(predicted, observed)), f"{predicted.sum()} of {len(z)}",
                        f"{observed.sum()} of {len(z)}", "same starts"))
    stability, stability_measured = _phase(shown, 3, lambda: polynomial_stability.checks_nd(
        theory, sigma_max, sigma_end, cfg.sampler, z, observed, cfg.seed))
    checks, measured = checks + stability, {**measured, **stability_measured}
    keep = ~(predicted | observed)
    if keep.any():
        T, L = (mapped[0][keep], mapped[1][keep]) if mapped else result15.flow_map_nd(theory, z[keep], sigma_max, sigma_end)
        checks += _phase(shown, 4, lambda: _map_checks(cfg, theory, fit, grids, z[keep], [xi[keep] for xi in x], T, L))
        gaussian, escapes = _phase(shown, 5, lambda: _inverse_gaussian_checks(cfg, theory, fit, grids[1], rng))
        checks, measured = checks + gaussian, {**measured, **escapes}
    shown.close()
    return checks, measured


PHASES = ("theory: moment normal equations", "numerics: least-squares fit per level", "divergence",
          "Result 17 stability", "probe, round trip, log-det", "inverse-flow Gaussian tests")


def _phase(shown, index: int, work):
    """Run one phase of :func:`flow_checks` under the progress bar (its name shown while it runs)."""
    shown.set_postfix_str(PHASES[index])
    out = work()
    shown.update()
    return out


def _map_checks(cfg, theory, fit, grids, z, x, T, L) -> list[Check]:
    """Probe, inverse-flow round trip and log-det of the starts ``z`` kept (sampler outputs ``x`` on both grids)."""
    sigma_max, sigma_end = grids[0].sigma[0], grids[0].sigma[-1]
    e = float(np.max(np.abs(x[0] - x[1])))
    gap = float(np.max(np.abs(x[1] - T)))
    checks = [Check(f"Result 15: flow map T(z) vs {cfg.sampler} {2 * REFINE * cfg.steps} steps (probe)", gap, None,
                    gap <= FACTOR * e + FLOW_ATOL, "x = T(z)", f"max gap {gap:.2e} (e = {e:.2e})", f"<= {FACTOR:g} e")]
    back = [result15.inverse_flow_nd(theory, xi, sigma_max, sigma_end) for xi in x]
    e_inv, gap_inv = float(np.max(np.abs(back[0] - back[1]))), float(np.max(np.abs(back[1] - z)))
    checks.append(Check("Result 15: inverse flow round trip T^-1(x) = z", gap_inv / sigma_max, None,
                        gap_inv <= FACTOR * e_inv + FLOW_ATOL * sigma_max, "z", f"max gap {gap_inv:.2e} (e = {e_inv:.2e})",
                        f"<= {FACTOR:g} e"))
    fd = [_fd_logdet(fit, z[:FD_STARTS], g, cfg.sampler) for g in grids]
    e_ld, gap_ld = float(np.max(np.abs(fd[0] - fd[1]))), float(np.max(np.abs(fd[1] - L[:FD_STARTS])))
    checks.append(Check("Result 15: log|det J| vs finite-difference sampler Jacobian", gap_ld, None,
                        gap_ld <= FACTOR * e_ld + 1e-4, "L(z)", f"max gap {gap_ld:.2e} (e = {e_ld:.2e})",
                        f"<= {FACTOR:g} e + 1e-4 (central differences)"))
    return checks


def _denoiser_check(theory, fit, train, levels) -> Check:
    """Theory (moments, normal equations) vs numerics (least squares) at ``levels``: every 16th of the 4N-step
    grid, the N-step grid's every fourth level."""
    gap, scale = 0.0, theory.scale
    y0 = train[: min(50, len(train))]
    for sigma in levels:
        y = y0 + sigma * np.random.default_rng(0).standard_normal(y0.shape)
        claimed = y - theory.field(y, float(sigma))[0]
        gap = max(gap, float(np.max(np.abs(fit(torch.as_tensor(y), float(sigma)).numpy() - claimed))) / scale)
    return Check("Result 15 denoiser: moment normal equations vs least-squares fit", gap, None,
                 gap <= DENOISER_RTOL, "same denoiser", f"max gap {gap:.2e} x scale", f"<= {DENOISER_RTOL:g} x scale")


def _inverse_gaussian_checks(cfg, theory, fit, grid, rng) -> tuple[list[Check], dict]:
    """Generated samples mapped back by the inverse flow: calibrated tests against ``N(0, sigma_max^2 I)``.

    Where the flow blows up the law on those starts does not exist: a sample that escaped (in the sampler,
    or on its way back), or lies beyond INVERSE_RADIUS data scales (on its way out: its inverse flow is
    stiff), enters as its own start noise. The rule reads only the samples, and under the claim every
    inverse image is its start, so the tests stay calibrated and still see every other sample's inverse
    image; the escapes are counted (the per-start prediction, one theory flow per
    escape event, is the divergence check's, on the probe starts: at d = 64 it would cost minutes each)."""
    n = max(cfg.samples, cfg.dim + 2)
    z = grid.prior_std * rng.standard_normal((n, cfg.dim))
    with np.errstate(over="ignore", invalid="ignore"):
        x = SAMPLERS[cfg.sampler](fit, torch.as_tensor(z), grid).numpy()
    observed = polynomial_stability.escaped(x, theory.scale)
    with np.errstate(invalid="ignore"):
        far = ~observed & ~(np.max(np.abs(x - theory.mean), axis=1) <= INVERSE_RADIUS * theory.scale)
    noise, mapped = z / grid.sigma[0], ~(observed | far)
    back, lost = result15.flow_escapes_nd(theory, x[mapped], grid.sigma[-1], grid.sigma[0])
    measured = {f"sample run ({grid.steps} steps): escaped in the sampler, beyond {INVERSE_RADIUS:g} scales, "
                "escaped on the way back": np.array([observed.sum(), far.sum(), lost.sum()])} if not mapped.all() else {}
    kept = np.flatnonzero(mapped)[~lost]
    noise[kept] = back[~lost] / grid.sigma[0]
    label = f" ({n - kept.size} of {n} escaped or far: their start noise)" if kept.size < n else ""
    checks = gaussian_checks(noise, np.zeros(cfg.dim), np.eye(cfg.dim), alpha=cfg.alpha)
    return [Check(f"inverse flow noise{label}: {c.name}", c.statistic, c.p_value, c.passed, c.predicted, c.measured,
                  c.threshold) for c in checks], measured

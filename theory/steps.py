"""Each sampler's one-step update for an affine denoiser ``D(y) = G y + b``, derived with sympy.

With the denoiser affine, every step is ``x_{i+1} = A x_i + c + Q z`` with ``z ~ N(0, I)``. The
update is written symbolically from each paper's formula with non-commutative ``G`` (so the
result also holds when the gains at different noise levels do not commute); expanding it and
collecting by the right-most vector gives ``A``, ``c`` and ``Q`` as polynomials in the gains.

>>> from theory.steps import step_map
>>> step_map("euler").terms["x"]
((s_next*sigma_next/(s*sigma), ()), (s_next*(sigma - sigma_next)/(s*sigma), ('G',)))
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from numerics.registry import SPECS
from numerics.validation import choice
from theory.symbols import (G, G_mid, G_next, G_prev, P_i, P_mid, P_next, b, b_mid, b_next, b_prev, eta, h, q_i, q_mid,
                            q_next, s, s_dot, s_dot_mid, s_dot_next, s_mid, s_next, s_noise, s_prev, sigma, sigma_dot,
                            sigma_dot_mid, sigma_dot_next, sigma_hat, sigma_mid, sigma_next, sigma_prev, x, x_prev, z)

GRID_SYMBOLS = (sigma, sigma_next, s, s_next, s_dot, sigma_dot, h, eta, s_dot_next, sigma_dot_next, s_noise, sigma_hat,
                sigma_mid, s_mid, s_dot_mid, sigma_dot_mid)
MULTISTEP_SYMBOLS = GRID_SYMBOLS + (sigma_prev, s_prev)


def _D(y):
    return G * y + b


def _D_next(y):
    return G_next * y + b_next


def _D_mid(y):
    return G_mid * y + b_mid


def _euler(to_zero):
    """PF-ODE ``dy/dsigma = (y - D(y)) / sigma`` for ``y = x / s``, one Euler step in sigma."""
    y = x / s
    return s_next * (y + (sigma_next - sigma) * (y - _D(y)) / sigma)


def _heun(to_zero):
    """Heun's trapezoid on the same ODE; plain Euler on a step to sigma = 0 (Karras et al. 2022)."""
    if to_zero:
        return _euler(to_zero)
    y = x / s
    slope = (y - _D(y)) / sigma
    y_pred = y + (sigma_next - sigma) * slope
    slope_pred = (y_pred - _D_next(y_pred)) / sigma_next
    return s_next * (y + (sigma_next - sigma) * (slope + slope_pred) / 2)


def _edm_churn(to_zero):
    """EDM Algorithm 2 on ``y = x/s``: raise the noise to ``sigma_hat`` with fresh noise, then one Heun step from
    ``sigma_hat`` (Euler to sigma = 0); ``G``, ``b`` are the denoiser at ``sigma_hat`` (Karras et al. 2022)."""
    y_hat = x / s + s_noise * sp.sqrt(sigma_hat**2 - sigma**2) * z   # churn: sigma -> sigma_hat
    slope = (y_hat - _D(y_hat)) / sigma_hat
    y_pred = y_hat + (sigma_next - sigma_hat) * slope                 # Euler predictor
    if to_zero:
        return s_next * y_pred
    slope_pred = (y_pred - _D_next(y_pred)) / sigma_next
    return s_next * (y_hat + (sigma_next - sigma_hat) * (slope + slope_pred) / 2)


def _diffusers_euler_churn(x0_prediction):
    """diffusers' ``EulerDiscreteScheduler.step(s_churn=...)``: the model runs on the pre-churn ``y`` at ``sigma_i``
    (``G``, ``b``), the churn then adds ``S_noise sqrt(sigma_hat^2 - sigma^2) z``, and the model output is read as
    ``x0`` with ``sigma_hat`` and ``y_hat``, so the step depends on the prediction type: one Euler step from
    ``sigma_hat`` with slope ``(y_hat - x0) / sigma_hat``."""
    y = x / s
    y_hat = y + s_noise * sp.sqrt(sigma_hat**2 - sigma**2) * z
    x0 = x0_prediction(y, y_hat)
    return s_next * (y_hat + (sigma_next - sigma_hat) * (y_hat - x0) / sigma_hat)


def _euler_churn_epsilon(to_zero):
    """epsilon output ``(y - D)/sigma``, read as ``x0 = y_hat - sigma_hat eps``."""
    return _diffusers_euler_churn(lambda y, y_hat: y_hat - sigma_hat * (y - _D(y)) / sigma)


def _euler_churn_sample(to_zero):
    """sample output ``D``, read as ``x0 = D``."""
    return _diffusers_euler_churn(lambda y, y_hat: _D(y))


def _euler_churn_v(to_zero):
    """v output ``s eps - s sigma D`` (``s = 1/sqrt(1 + sigma^2)``), read as ``x0 = -sigma s v + s^2 y_hat``
    ``= D + (y_hat - y)/(1 + sigma^2)``."""
    return _diffusers_euler_churn(lambda y, y_hat: _D(y) + (y_hat - y) / (1 + sigma**2))


def _ddim(to_zero):
    """DDIM, eta = 0: ``x' = sqrt(abar') x0_hat + sqrt(1 - abar') eps_hat`` with ``sqrt(abar) = s``, ``sqrt(1-abar) = s sigma``."""
    x0_hat = _D(x / s)
    eps_hat = (x - s * x0_hat) / (s * sigma)
    return s_next * x0_hat + s_next * sigma_next * eps_hat


def _ddpm(to_zero):
    """Ancestral step: draw from ``q(y' | y, x0 = D(y))`` of ``y_sigma = x0 + sigma n`` (Ho et al. 2020)."""
    y = x / s
    ratio = sigma_next**2 / sigma**2
    posterior_mean = ratio * y + (1 - ratio) * _D(y)
    posterior_std = sigma_next * sp.sqrt(1 - ratio)
    return s_next * (posterior_mean + posterior_std * z)


def _score():
    return (s * _D(x / s) - x) / (s**2 * sigma**2)


def _euler_maruyama(to_zero):
    """Euler–Maruyama of ``dx = [s_dot/s x - 2 s^2 sigma_dot sigma score] dt + s sqrt(2 sigma_dot sigma) dw``, ``dt = -h``."""
    drift = (s_dot / s) * x - 2 * s**2 * sigma_dot * sigma * _score()
    return x - h * drift + s * sp.sqrt(2 * sigma_dot * sigma * h) * z


def _exponential_vp(to_zero):
    """VP reverse SDE with the score frozen: linear part and noise integrated exactly, ``e^{Delta B / 2} = s'/s``."""
    growth = s_next / s
    return growth * x + 2 * (growth - 1) * _score() + sp.sqrt(growth**2 - 1) * z


def _ancestral(to_zero):
    """DDIM with ``eta`` = Euler ancestral: ``y' = D + sigma_down (y - D)/sigma + sigma_up z`` (Song et al. 2021a, eq. 16)."""
    y = x / s
    sigma_up = eta * sigma_next * sp.sqrt(1 - sigma_next**2 / sigma**2)
    sigma_down = sp.sqrt(sigma_next**2 - sigma_up**2)
    return s_next * (_D(y) + sigma_down * (y - _D(y)) / sigma + s_noise * sigma_up * z)


def _ddpm_large(to_zero):
    """DDPM ``fixed_large``: the posterior mean of ``_ddpm`` plus ``eta sqrt(beta_t) z``, ``beta_t = 1 - s^2/s'^2``."""
    y = x / s
    ratio = sigma_next**2 / sigma**2
    return s_next * (ratio * y + (1 - ratio) * _D(y)) + eta * sp.sqrt(1 - s**2 / s_next**2) * z


def _pf_drift(state, scale, scale_dot, level, level_dot, denoise):
    """``dx/dt = s'/s x - s^2 sigma' sigma score`` at one grid point."""
    score = (scale * denoise(state / scale) - state) / (scale**2 * level**2)
    return (scale_dot / scale) * state - scale**2 * level_dot * level * score


def _euler_t(to_zero):
    """The probability-flow ODE stepped in ``t`` on ``x``: ``x' = x - h f(x, t_i)``."""
    return x - h * _pf_drift(x, s, s_dot, sigma, sigma_dot, _D)


def _heun_t(to_zero):
    """Heun's trapezoid in ``t`` on ``x``; Euler on a step to sigma = 0."""
    if to_zero:
        return _euler_t(to_zero)
    slope = _pf_drift(x, s, s_dot, sigma, sigma_dot, _D)
    x_pred = x - h * slope
    slope_pred = _pf_drift(x_pred, s_next, s_dot_next, sigma_next, sigma_dot_next, _D_next)
    return x - h * (slope + slope_pred) / 2


def _rk4_t(to_zero):
    """Classical RK4 in ``t`` on ``x``: stages at ``t_i``, ``t_i - h/2`` (twice) and ``t_{i+1}``; Euler on a step
    to sigma = 0."""
    if to_zero:
        return _euler_t(to_zero)
    k1 = _pf_drift(x, s, s_dot, sigma, sigma_dot, _D)
    k2 = _pf_drift(x - h / 2 * k1, s_mid, s_dot_mid, sigma_mid, sigma_dot_mid, _D_mid)
    k3 = _pf_drift(x - h / 2 * k2, s_mid, s_dot_mid, sigma_mid, sigma_dot_mid, _D_mid)
    k4 = _pf_drift(x - h * k3, s_next, s_dot_next, sigma_next, sigma_dot_next, _D_next)
    return x - h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def rk4_t_nested() -> dict:
    """RK4 in ``t`` written as the paper would: with the affine denoiser the velocity is linear,
    ``f(x, t) = P_t x + q_t``, ``P_t = s'/s + (sigma'/sigma)(1 - G_t)``, ``q_t = -s (sigma'/sigma) b_t``, and the step
    nests the stage maps ``B_j`` (``P_{i+1/2}`` serves both middle stages) and stage offsets ``e_j``.
    Substituted back (:func:`expand_nested`) it is :func:`step_map`'s ``A`` and ``c``."""
    B2, B3, B4, e2, e3, e4 = sp.symbols("B_2 B_3 B_4 e_2 e_3 e_4", commutative=False)
    q = {P_i: q_i, P_mid: q_mid, P_next: q_next}
    where = {P_i: "i", P_mid: "{i+1/2}", P_next: "{i+1}"}
    levels = {P_i: (s, s_dot, sigma, sigma_dot, G, b), P_mid: (s_mid, s_dot_mid, sigma_mid, sigma_dot_mid, G_mid, b_mid),
              P_next: (s_next, s_dot_next, sigma_next, sigma_dot_next, G_next, b_next)}
    forms = {"A_i": (sp.Symbol("A_i"), 1 - h / 6 * (P_i + 2 * P_mid * B2 + 2 * P_mid * B3 + P_next * B4)),
             "B_2": (B2, 1 - h / 2 * P_i), "B_3": (B3, 1 - h / 2 * P_mid * B2), "B_4": (B4, 1 - h * P_mid * B3),
             "c_i": (sp.Symbol("c_i"), -h / 6 * (q_i + 2 * e2 + 2 * e3 + e4)),
             "e_2": (e2, q_mid - h / 2 * P_mid * q_i), "e_3": (e3, q_mid - h / 2 * P_mid * e2),
             "e_4": (e4, q_next - h * P_next * e3)}
    for P, (sc, sc_dot, level, level_dot, gain, offset) in levels.items():
        forms[f"P_{where[P]}"] = (P, sc_dot / sc + level_dot / level * (1 - gain))
        forms[f"q_{where[P]}"] = (q[P], -sc * level_dot / level * offset)
    return {label: sp.Eq(lhs, rhs, evaluate=False) for label, (lhs, rhs) in forms.items()}


def expand_nested(forms: dict, label: str) -> sp.Expr:
    """``forms[label]``'s right-hand side with every defined symbol substituted, expanded."""
    definitions = {eq.lhs: eq.rhs for eq in forms.values()}
    expr = forms[label].rhs
    while expr.free_symbols & set(definitions):
        expr = expr.subs(definitions)
    return sp.expand(expr)


NESTED = {"rk4_t": rk4_t_nested}  # samplers whose expanded A, c are too long to read: exported in nested form


def _ddpm_t(to_zero):
    """score_sde's VP ancestral step, ``beta_i = beta(t_i) h = -2 h s_dot / s``: ``(x + beta score)/sqrt(1-beta) + sqrt(beta) z``."""
    beta = -2 * h * s_dot / s
    return (x + beta * _score()) / sp.sqrt(1 - beta) + sp.sqrt(beta) * z


def _dpmpp_2m(to_zero):
    """DPM-Solver++(2M): ``y' = (sigma'/sigma) y + (1 - sigma'/sigma) ((1 + 1/(2r)) D - D_prev/(2r))``, ``r = h_{i-1}/h_i``.

    First-order steps (the first, and one to sigma = 0) are the ``ddim`` step.
    """
    r = sp.log(sigma_prev / sigma) / sp.log(sigma / sigma_next)
    y, y_prev = x / s, x_prev / s_prev
    d = (1 + 1 / (2 * r)) * _D(y) - (G_prev * y_prev + b_prev) / (2 * r)
    return s_next * (sigma_next / sigma * y + (1 - sigma_next / sigma) * d)


UPDATES = {"euler": _euler, "heun": _heun, "ddim": _ddim, "ddpm": _ddpm,
           "euler_maruyama": _euler_maruyama, "exponential_vp": _exponential_vp,
           "ancestral": _ancestral, "ddpm_large": _ddpm_large, "euler_t": _euler_t, "heun_t": _heun_t,
           "rk4_t": _rk4_t, "ddpm_t": _ddpm_t, "edm_churn": _edm_churn,
           "euler_churn_epsilon": _euler_churn_epsilon, "euler_churn_sample": _euler_churn_sample,
           "euler_churn_v": _euler_churn_v}
TITLES = {name: spec.title for name, spec in SPECS.items()}  # names in words for the export (one registry)
MULTISTEP_UPDATES = {"dpmpp_2m": _dpmpp_2m}  # x_{i+1} = A x_i + B x_{i-1} + c: propagated by theory.multistep
VECTORS = {"x": x, "z": z, "b": b, "b_next": b_next, "b_mid": b_mid, "x_prev": x_prev, "b_prev": b_prev}


@dataclass(frozen=True)
class StepMap:
    """One step as ``sum_k coeff_k * (product of gains)_k * vector``, grouped by vector name."""

    sampler: str
    to_zero: bool
    expression: sp.Expr
    terms: dict  # vector name -> tuple of (commutative coefficient, tuple of gain names, left to right)

    def coefficient(self, vector: str) -> sp.Expr:
        """The operator multiplying ``vector``: a sum of ordered gain products (0 if absent)."""
        return sp.Add(*[c * sp.Mul(*[sp.Symbol(g, commutative=False) for g in gains])
                        for c, gains in self.terms.get(vector, ())])

    def collected(self) -> sp.Expr:
        """``A x + c + Q z`` with each coefficient a sum of ordered gain products."""
        return sp.Add(*[self.coefficient(name) * VECTORS[name] for name in self.terms])

    def latex(self) -> str:
        return sp.latex(self.collected())


def _split(expression) -> dict:
    terms = {name: [] for name in VECTORS}
    for term in sp.Add.make_args(sp.expand(expression)):
        commutative, ordered = term.args_cnc()
        vector = ordered[-1]
        name = next(k for k, v in VECTORS.items() if v == vector)
        gains = tuple(gain for factor in ordered[:-1] for gain in _names(factor))
        terms[name].append((sp.Mul(*commutative), gains))
    return {name: _collect(parts) for name, parts in terms.items() if parts}


def _names(factor) -> tuple:
    """A gain factor as names left to right: ``G_mid**2`` (sympy's form of ``G_mid G_mid``) is two."""
    if factor.is_Pow:
        return (str(factor.base),) * int(factor.exp)
    return (str(factor),)


def _collect(parts):
    grouped = {}
    for coefficient, gains in parts:
        grouped[gains] = grouped.get(gains, 0) + coefficient
    return tuple((sp.factor(c), g) for g, c in sorted(grouped.items(), key=lambda kv: len(kv[0])) if c != 0)


@cache
def step_map(sampler: str, to_zero: bool = False) -> StepMap:
    """The symbolic step of ``sampler``; ``to_zero`` marks a step to sigma = 0 (Heun falls back to Euler there)."""
    updates = {**UPDATES, **MULTISTEP_UPDATES}
    update = updates[choice(sampler, "sampler", updates)]
    expression = update(to_zero)
    return StepMap(sampler, to_zero, expression, _split(expression))

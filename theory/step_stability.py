"""Result 18: absolute stability of the explicit probability-flow steps (Euler, Heun) in sigma.

Test equation. A mode of the denoiser's Jacobian ``dD/dy`` with eigenvalue ``mu`` moves under the flow
``dy/dsigma = (y - D(y))/sigma`` as ``dy/dsigma = c y / sigma``, ``c = 1 - mu``: the flow multiplies it by
``(sigma'/sigma)^c`` over a step ``sigma -> sigma' = (1 + q) sigma`` (``-1 < q < 0``). With ``z = q c``
(``h lambda`` at the step's start) one step multiplies it by

* Euler: ``R = 1 + z``;
* Heun (Euler predictor, trapezoid corrector at ``sigma'``, where the field carries ``1/sigma'``):
  ``R = 1 + z (2 + q) / (2 (1 + q)) + z^2 / (2 (1 + q))``, which is ``1 + z + z^2/2`` as ``q -> 0``.

The flow damps the mode iff ``Re z < 0``; the step is absolutely unstable on it iff it damps and
``|R(z)| > 1``. On the real axis: Euler iff ``z < -2``, Heun iff ``z < -(2 + q)`` for
``q > q_flip = 6 - 4 sqrt(3) ~ -0.93`` (there ``R`` never reaches ``-1``: the Heun step grows the mode
without flipping it; every Heun step of the default Karras grids has ``q > -0.6``).

Exact for a linear denoiser ``D = mu y`` with ``mu`` constant over the step (every eigenvalue of a
constant matrix). For a nonlinear denoiser it is the linearization at the iterate: exact for small
perturbations, leading order for the iterate itself (for a restoring ``-kappa y^k`` term the iterate's own
secant slope is ``1/k`` of the tangent, so the iterate escapes only beyond ``k^(1/(k-1))`` times the
linearized radius).

>>> StepStability().formulas["Heun amplification"].rhs
z**2/(2*q + 2) + z*(q + 2)/(2*q + 2) + 1
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from theory.result import Result

METHODS = ("euler", "heun")


class StepStability(Result):
    """Result 18: Euler's and Heun's amplification of a Jacobian mode per step, and where it exceeds 1."""

    def __init__(self):
        y, sigma, c = sp.Symbol("y"), sp.Symbol("sigma", positive=True), sp.Symbol("c")
        q, z, R = sp.Symbol("q", negative=True), sp.Symbol("z"), sp.Symbol("R")
        field = lambda v, s: c * v / s  # noqa: E731: the test equation dy/dsigma = c y / sigma
        h, sigma_next = q * sigma, (1 + q) * sigma
        predictor = y + h * field(y, sigma)
        heun_step = y + h / 2 * (field(y, sigma) + field(predictor, sigma_next))
        euler = sp.expand(sp.simplify(predictor / y).subs(c, z / q))
        heun = sp.simplify(sp.simplify(heun_step / y).subs(c, z / q))
        heun_form = 1 + z * (2 + q) / (2 * (1 + q)) + z**2 / (2 * (1 + q))
        assert sp.simplify(heun - heun_form) == 0 and euler == 1 + z  # the step applied to the test equation
        assert sp.limit(heun_form, q, 0) == sp.expand(1 + z + z**2 / 2)  # the classical Heun polynomial
        roots = sp.solve(sp.Eq(heun_form, 1), z)
        assert set(roots) == {0, -(2 + q)}  # real stiff bound; R = -1 has a real root only for q <= q_flip:
        assert sp.solve(sp.discriminant(sp.numer(sp.together(heun_form + 1)), z), q) == [6 - 4 * sp.sqrt(3)]
        super().__init__(
            name="Absolute stability of the explicit probability-flow steps",
            statement=("A Jacobian mode $\\mu$ of $\\partial D/\\partial y$ obeys $dy/d\\sigma = (1 - \\mu) y/\\sigma$; "
                       "over $\\sigma \\to (1 + q)\\sigma$ the flow multiplies it by $(1 + q)^{1 - \\mu}$, Euler by "
                       "$R = 1 + z$ and Heun by $R = 1 + z(2 + q)/(2(1 + q)) + z^2/(2(1 + q))$, "
                       "$z = q(1 - \\mu)$. A step is absolutely unstable on a mode the flow damps "
                       "($\\mathrm{Re}\\, z < 0$) iff $|R(z)| > 1$: for real $z$, Euler iff $z < -2$, Heun iff "
                       "$z < -(2 + q)$ (for $q > 6 - 4\\sqrt{3}$). Exact for a linear denoiser; the linearization at the iterate otherwise."),
            assumptions=("$-1 < q < 0$: the step goes down in $\\sigma$ to $\\sigma' > 0$ (the real Heun bound: "
                         "$q > 6 - 4\\sqrt{3}$)",
                         "$\\mu$ constant over the step (exact for $D = \\mu y$; else leading order in the "
                         "perturbation of the iterate)"),
            formulas={"Euler amplification": sp.Eq(R, euler),
                      "Heun amplification": sp.Eq(R, heun_form),
                      "flow factor": sp.Eq(R, (1 + q) ** (z / q)),
                      "Heun stiff bound": sp.Eq(sp.Symbol("z_min"), -(2 + q))},
            exact=True,
        )


def amplification(z, q, method: str) -> np.ndarray:
    """``R(z)`` of one ``method`` step ``sigma -> (1 + q) sigma`` on a mode with ``z = q (1 - mu)``."""
    z, q = np.asarray(z), np.asarray(q, dtype=np.float64)
    if np.any((q <= -1) | (q >= 0)):
        raise ValueError("q = sigma'/sigma - 1 must be in (-1, 0): a step down to sigma' > 0")
    if method == "euler":
        return 1 + z
    if method == "heun":
        return 1 + z * (2 + q) / (2 * (1 + q)) + z**2 / (2 * (1 + q))
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def damped_mode_amplification(mu, q, method: str) -> np.ndarray:
    """Largest ``|R|`` over the modes ``mu`` (last axis) that the flow damps (``Re z < 0``); 0 if none.
    Above 1: the step is absolutely unstable at that point (Result 18)."""
    z = q * (1 - np.asarray(mu))
    return np.max(np.where(np.real(z) < 0, np.abs(amplification(z, q, method)), 0.0), axis=-1)

"""The one registry of what a sampler is: ``ode``/``sde``, what it needs of the grid, one- or multi-step, its name
in words. Torch-free, so that ``theory`` (its step maps and their assumptions) and ``numerics`` (the torch
samplers, ``numerics.samplers.REGISTRY``) read the same entries."""
from __future__ import annotations

from dataclasses import dataclass

from numerics import validation


@dataclass(frozen=True)
class SamplerSpec:
    """``kind``: ``ode`` or ``sde``; ``needs``: ``continuous`` (``s_dot``, ``sigma_dot``) and/or
    ``variance_preserving`` (``s^2 (1 + sigma^2) = 1``), ``midpoints`` (the schedule at ``t_i - h_i / 2``,
    ``Grid.mid``); ``multistep``: the step uses ``x_{i-1}``."""

    kind: str
    needs: tuple = ()
    multistep: bool = False
    title: str = ""  # the sampler in words (LaTeX), for the export
    limit: str | None = "kind"  # the continuous-time flow it discretizes: "ode", "sde", None (neither); "kind": = kind
    lands: bool = False  # it reads grid.land_at(i): a step may land off the next grid point (diffusers' DDIM)
    churn: str | None = None  # it reads grid.sigma_hat; its first denoiser call sits "after" the churn, at sigma_hat
    #                           (EDM Alg. 2), or "before" it, at sigma_i on the pre-churn state (diffusers' Euler)

    @property
    def continuous_limit(self) -> str | None:
        """``ode`` (probability flow), ``sde`` (reverse SDE) or None (e.g. EDM churn: an SDE of its own)."""
        return self.kind if self.limit == "kind" else self.limit

    @property
    def schedules(self) -> tuple:
        """The built-in schedules whose grids it accepts (user sigma arrays: VE or VP, never continuous)."""
        ok = {"ve": ("continuous", "midpoints"), "vp": ("continuous", "variance_preserving", "midpoints"),
              "ddpm": ("variance_preserving",)}
        return tuple(name for name, has in ok.items() if set(self.needs) <= set(has))


SPECS = {
    "euler": SamplerSpec("ode", title="Euler"),
    "heun": SamplerSpec("ode", title="Heun (EDM)"),
    "ddim": SamplerSpec("ode", title="DDIM", lands=True),
    "ddpm": SamplerSpec("sde", title="DDPM ancestral"),
    "euler_maruyama": SamplerSpec("sde", ("continuous",), title="Euler--Maruyama"),
    "exponential_vp": SamplerSpec("sde", ("variance_preserving",), title="exponential VP integrator"),
    "ancestral": SamplerSpec("sde", title="Euler ancestral / DDIM with $\\eta$", lands=True),
    "ddpm_large": SamplerSpec("sde", ("variance_preserving",), title="DDPM, fixed-large variance"),
    "euler_t": SamplerSpec("ode", ("continuous",), title="probability-flow Euler in $t$"),
    "heun_t": SamplerSpec("ode", ("continuous",), title="probability-flow Heun in $t$"),
    "rk4_t": SamplerSpec("ode", ("continuous", "midpoints"), title="probability-flow RK4 in $t$"),
    "ddpm_t": SamplerSpec("sde", ("continuous", "variance_preserving"), title="DDPM in $t$ (score\\_sde)"),
    "dpmpp_2m": SamplerSpec("ode", multistep=True, title="DPM-Solver++(2M)"),
    "edm_churn": SamplerSpec("sde", title="EDM Algorithm 2 (stochastic Heun, $S_{\\mathrm{churn}}$)", limit=None,
                             churn="after"),
}
CHURN_PREDICTIONS = {"epsilon": "euler_churn_epsilon", "sample": "euler_churn_sample", "v_prediction": "euler_churn_v"}
"""diffusers' ``EulerDiscreteScheduler.step(s_churn > 0)``: the sampler for each ``prediction_type``."""
SPECS.update({name: SamplerSpec("sde", title=f"diffusers' Euler with $S_{{\\mathrm{{churn}}}}$, "
                                             f"{prediction.split('_')[0]} output", limit=None, churn="before")
              for prediction, name in CHURN_PREDICTIONS.items()})


def first_call_level(name: str, grid, i: int) -> float:
    """The noise level of step ``i``'s first denoiser call: ``sigma_hat_i`` after an EDM churn, else ``sigma_i``."""
    return grid.sigma_hat_at(i) if SPECS[name].churn == "after" else float(grid.sigma[i])


def require(name: str, grid) -> None:
    """Refuse a grid that lacks what sampler ``name`` needs, naming both."""
    needs = SPECS[validation.choice(name, "sampler", SPECS)].needs
    if "continuous" in needs and grid.sigma_dot is None:
        raise ValueError(f"sampler {name!r} needs a continuous-time schedule; {grid.schedule!r} is discrete")
    if "variance_preserving" in needs and not grid.variance_preserving:
        raise ValueError(f"sampler {name!r} needs a variance-preserving schedule (vp, ddpm), got {grid.schedule!r}")
    if grid.sigma_hat is not None and SPECS[name].churn is None:
        raise ValueError(f"the grid has churn levels (grid.sigma_hat) and sampler {name!r} has no churn; use edm_churn "
                         "or an euler_churn_* sampler, or a grid without churn")
    if grid.land_sigma is not None and not SPECS[name].lands:
        raise ValueError(f"the grid's steps land off its points (grid.land_sigma: diffusers' DDIM) and sampler "
                         f"{name!r} steps to the next point; use ddim or ancestral")
    if "midpoints" in needs and grid.mid is None:
        raise ValueError(f"sampler {name!r} needs the schedule at each step's midpoint t_i - h_i/2 (grid.mid, set by "
                         f"the built-in continuous schedules ve, vp); {grid.schedule!r} grid has none")

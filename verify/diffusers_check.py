"""``python -m verify.linear --diffusers NAME [--scheduler-config PATH.json] [--eta ETA]``: a real diffusers scheduler.

The scheduler's own loop (``numerics.interop``, float64) runs with the closed-form linear denoiser;
its law is predicted by Result 3 for the sampler and grid that scheduler amounts to; then the same
exact probe and calibrated Monte-Carlo checks as ``verify.linear``.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, replace

from numerics.denoisers import WienerDenoiser
from numerics.samplers import STOCHASTIC
from theory.finite_step import GaussianLaw, probe_law
from theory.linear_law import STARTS, affine_law
from theory.multistep import multistep_law
from theory.steps import UPDATES
from verify import report, stats
from verify.affine import PROBE_RTOL, law_report
from verify.check import Check
from verify.linear import discretization
from verify.targets import make_target

UNSUPPORTED = {"denoiser": "closed-form", "dtype": "float64", "n_train": None}


def load_config(path) -> dict:
    """The scheduler's config from a JSON file (as diffusers saves ``scheduler_config.json``)."""
    if path is None:
        return {}
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"--scheduler-config {path!r} is not a readable JSON file: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"--scheduler-config {path!r} must hold a JSON object")
    return {k: v for k, v in config.items() if not k.startswith("_")}  # _class_name, _diffusers_version


def _interop():
    try:
        from numerics import interop
    except ImportError:
        raise ValueError("--diffusers needs the interop extra: pip install -e '.[interop]'") from None
    return interop


def _refuse_unsupported(cfg) -> None:
    for key, allowed in UNSUPPORTED.items():
        if getattr(cfg, key) != allowed:
            raise ValueError(f"--diffusers supports only --{key.replace('_', '-')} {allowed}, got {getattr(cfg, key)!r}")
    if cfg.negative_control not in (None, "covariance+1%", "covariance+2%"):
        raise ValueError(f"--diffusers supports the negative controls covariance+1% and covariance+2%, "
                         f"got {cfg.negative_control!r}")


def churn(cfg) -> dict | None:
    """``EulerDiscreteScheduler.step``'s churn keywords from ``--s-churn --s-tmin --s-tmax --s-noise``."""
    if cfg.s_churn is None:
        return None
    return {"s_churn": cfg.s_churn, "s_tmin": cfg.s_tmin, "s_tmax": cfg.s_tmax, "s_noise": cfg.s_noise}


def _probe_checks(interop, scheduler, spec, denoiser, cfg, start, predicted) -> list[Check]:
    run = lambda x, noise: interop.run_scheduler(scheduler, denoiser, x, cfg.steps, eta=cfg.eta,  # noqa: E731
                                                 churn=churn(cfg), noise_sampler=noise)
    A, c, N = interop.probe(run, cfg.dim, spec.grid.steps, spec.sampler in STOCHASTIC)
    probed, C = probe_law(A, c, N, start), predicted.covariance()
    scale = max(abs(C).max(), 1e-300)
    errors = {"mean": abs(probed.mean - predicted.mean).max() / scale**0.5, "covariance": abs(probed.cov - C).max() / scale}
    return [Check(f"exact probe: {k}", v, None, bool(v <= PROBE_RTOL), "0", f"{v:.2e}", f"<= {PROBE_RTOL:g} relative")
            for k, v in errors.items()]


def run(cfg) -> dict:
    """The whole check against the scheduler ``cfg.diffusers`` with config ``cfg.scheduler_config``."""
    started = time.perf_counter()
    interop = _interop()
    _refuse_unsupported(cfg)
    eta = 0.0 if cfg.eta is None else cfg.eta
    cfg = replace(cfg, eta=eta)
    scheduler = interop.make_scheduler(cfg.diffusers, **load_config(cfg.scheduler_config))
    with interop.float64(type(scheduler)):
        spec = interop.scheduler_spec(scheduler, cfg.steps, eta, churn(cfg))
    target = make_target(cfg.target, cfg.dim, cfg.seed)
    denoiser = WienerDenoiser(target.mean, target.cov)
    initial = STARTS[cfg.init](spec.grid, target.mean, target.cov)
    start = GaussianLaw(initial.mean, initial.covariance())
    if spec.sampler in UPDATES:
        predicted = affine_law(spec.sampler, spec.grid, denoiser.affine, start)
    else:
        predicted = multistep_law(spec.sampler, spec.grid, denoiser.affine, start)
    if cfg.negative_control is not None:
        factor = 1 + float(cfg.negative_control[len("covariance+"):-1]) / 100
        predicted = GaussianLaw(predicted.mean, factor * predicted.covariance())
    checks = _probe_checks(interop, scheduler, spec, denoiser, cfg, start, predicted) if cfg.probe else []
    x = interop.sample_scheduler(scheduler, denoiser, cfg.steps, start.mean, start.cov, cfg.samples,
                                 seed=cfg.seed, eta=cfg.eta, churn=churn(cfg)).numpy()
    checks += stats.gaussian_checks(x, predicted.mean, predicted.covariance(), alpha=cfg.alpha,
                                    null_atol=1e-6 * max(abs(predicted.covariance()).max(), 1e-300) ** 0.5)
    ode_or_sde = spec.sampler if spec.sampler in UPDATES else "ddim"  # the continuous law depends on the kind only
    return {"passed": report.verdict(checks), "checks": checks,
            "config": {**asdict(cfg), "sampler": spec.sampler, "schedule": cfg.diffusers},
            **law_report(x, predicted),
            "discretization": discretization(replace(cfg, sampler=ode_or_sde), spec.grid, predicted,
                                             target.mean, target.cov),
            "seconds": time.perf_counter() - started}

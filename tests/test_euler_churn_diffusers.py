"""diffusers' ``EulerDiscreteScheduler`` with ``s_churn > 0``, the real scheduler against the exact law of the
sampler its ``prediction_type`` maps to (the rule itself: ``tests/test_euler_churn.py``, no diffusers needed)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the interop extra (diffusers) is not installed")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's __array__ under numpy 2, in diffusers

from numerics.registry import CHURN_PREDICTIONS  # noqa: E402
from numerics.denoisers import WienerDenoiser  # noqa: E402
from numerics.interop import float64, make_scheduler, probe, run_scheduler, sample_scheduler, scheduler_spec  # noqa: E402
from theory.finite_step import GaussianLaw, probe_law  # noqa: E402
from theory.linear_law import affine_law, prior_start  # noqa: E402
from verify.stats import gaussian_checks  # noqa: E402
from verify.targets import mixture_target  # noqa: E402

TARGET = mixture_target(3, 4)
CHURN = {"s_churn": 5.0, "s_tmin": 0.05, "s_tmax": 20.0, "s_noise": 1.003}


def real(prediction, steps=15):
    scheduler = make_scheduler("EulerDiscreteScheduler", prediction_type=prediction)
    with float64(type(scheduler)):
        spec = scheduler_spec(scheduler, steps, 0.0, CHURN)
    denoiser = WienerDenoiser(TARGET.mean, TARGET.cov)
    start = prior_start(spec.grid, TARGET.mean, TARGET.cov)
    return scheduler, spec, denoiser, start, affine_law(spec.sampler, spec.grid, denoiser.affine, start)


@pytest.mark.parametrize("prediction", sorted(CHURN_PREDICTIONS))
def test_probe_of_the_real_scheduler_equals_the_law(prediction):
    scheduler, spec, denoiser, start, law = real(prediction)
    assert spec.sampler == CHURN_PREDICTIONS[prediction]
    A, c, N = probe(lambda x, noise: run_scheduler(scheduler, denoiser, x, 15, churn=CHURN, noise_sampler=noise),
                    3, spec.grid.steps, True)
    probed, C = probe_law(A, c, N, GaussianLaw(start.mean, start.covariance())), law.covariance()
    assert np.abs(probed.cov - C).max() <= 1e-10 * np.abs(C).max()  # float64 loop (measured <= 9e-16)
    assert np.abs(probed.mean - law.mean).max() <= 1e-10 * np.abs(C).max() ** 0.5


def test_monte_carlo_of_the_real_scheduler_matches_the_law():
    """3000 draws of the real loop (epsilon), calibrated checks at family-wise alpha = 1e-3 (fixed seed); the
    sample-prediction law, a different one, is rejected on the same draws."""
    scheduler, spec, denoiser, start, law = real("epsilon")
    x = sample_scheduler(scheduler, denoiser, 15, start.mean, start.covariance(), 3000, seed=7, churn=CHURN).numpy()
    assert all(c.passed for c in gaussian_checks(x, law.mean, law.covariance(), alpha=1e-3))
    other = real("sample")[-1]
    assert not all(c.passed for c in gaussian_checks(x, other.mean, other.covariance(), alpha=1e-3))


def test_churn_is_refused_outside_euler_discrete():
    scheduler = make_scheduler("HeunDiscreteScheduler")
    with pytest.raises(ValueError, match="s_churn is EulerDiscreteScheduler.step's"):
        scheduler_spec(scheduler, 10, 0.0, CHURN)
    with pytest.raises(ValueError, match="churn keywords"):
        scheduler_spec(make_scheduler("EulerDiscreteScheduler"), 10, 0.0, {"s_churn": 1.0, "gamma": 2.0})

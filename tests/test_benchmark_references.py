"""What the benchmark races against is right, and start-up work is done once: no timing here.

The plain loops of ``benchmarks/plain.py`` must compute the very law the theory computes (else a ratio
to them means nothing), and a ``Result`` is derived once per process and set of arguments.
"""
import numpy as np
import pytest

from benchmarks import plain
from numerics.denoisers import WienerDenoiser
from numerics.schedules import SCHEDULES
from theory.linear import OptimalAffineDenoiser
from theory.linear_law import affine_law, prior_start, spectral_law
from theory.polynomial import OptimalPolynomialDenoiser
from theory.result import Result
from verify.targets import product_target

ROUNDOFF = 1e-9  # float64 recursions of a few dozen steps, different association of the same products


@pytest.mark.parametrize("sampler", ["heun", "ddpm"])
def test_plain_loops_compute_the_theorys_law(sampler):
    target, grid = product_target(6, seed=1), SCHEDULES["ve"]().grid(12)
    eigenvalues, U = np.linalg.eigh(target.cov)
    law = spectral_law(sampler, grid, eigenvalues, U.T @ target.mean, prior_start)
    m, v = plain.spectral_loop(sampler, grid, eigenvalues, U.T @ target.mean)
    assert np.allclose(v, law.cov, rtol=ROUNDOFF, atol=0) and np.allclose(m, law.mean, rtol=ROUNDOFF, atol=1e-12)
    start = prior_start(grid, target.mean, target.cov)
    dense = affine_law(sampler, grid, WienerDenoiser(target.mean, target.cov).affine, start)
    m, C = plain.dense_loop(sampler, grid, WienerDenoiser(target.mean, target.cov).affine, start.mean, start.cov)
    assert np.allclose(C, dense.cov, rtol=ROUNDOFF, atol=ROUNDOFF * np.abs(C).max())


def test_a_result_is_derived_once_per_process_and_arguments():
    assert OptimalAffineDenoiser() is OptimalAffineDenoiser()
    assert OptimalPolynomialDenoiser() is OptimalPolynomialDenoiser(degree=3)  # defaults bound
    assert OptimalPolynomialDenoiser(2) is not OptimalPolynomialDenoiser(3)


def test_a_failed_derivation_is_not_cached_as_derived():
    class Flaky(Result):
        calls = 0

        def __init__(self, fail: bool):
            type(self).calls += 1
            if fail:
                raise ValueError("bad input")
            super().__init__(name="flaky", statement="", assumptions=())

    with pytest.raises(ValueError):
        Flaky(True)
    with pytest.raises(ValueError):
        Flaky(True)  # retried, not silently returned half-built
    assert Flaky(False) is Flaky(False) and Flaky.calls == 3


def test_unhashable_arguments_derive_afresh():
    class Sized(Result):
        def __init__(self, values):
            super().__init__(name=f"sized {len(values)}", statement="", assumptions=())

    assert Sized([1, 2]) is not Sized([1, 2]) and Sized([1, 2]).name == "sized 2"

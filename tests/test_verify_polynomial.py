"""``verify.polynomial``: the exact 1-D law passes, a wrong degree and a short surrogate fail."""
import numpy as np
import pytest

from cli import exit_code
from verify.polynomial import Config, main, mixture_moments, mixture_sample, run

SMALL = dict(samples=2000, steps=64, n_train=500)  # 64 Heun steps: discretization invisible at 2000 samples


def failed(result):
    return sorted(c.name for c in result["checks"] if not c.passed)


def test_target_moments_are_exact():
    x = mixture_sample(400_000, np.random.default_rng(0))
    sample_moments = [np.mean(x**r) for r in range(5)]
    # Monte-Carlo error of E[x^4] at n = 4e5: sd ~ sqrt(Var x^4 / n) ~ 0.03
    np.testing.assert_allclose(sample_moments, mixture_moments(4), atol=0.05)


@pytest.mark.parametrize("degree", [1, 3])
def test_exact_law_and_equivalence_pass(degree):
    result = run(Config(degree=degree, **SMALL))
    assert result["passed"], failed(result)


def test_wrong_degree_is_rejected_by_the_law_tests():
    result = run(Config(degree=3, negative_control="wrong-degree", **SMALL))
    assert "PF-ODE law (KS)" in failed(result)


def test_surrogate_matching_only_2k_minus_1_moments_gives_other_outputs():
    result = run(Config(degree=3, negative_control="short-surrogate", **SMALL))
    assert failed(result) == ["moment equivalence (p vs its 4-point quadrature)"]


@pytest.mark.parametrize("argv,message", [(["--degree", "-1"], "--degree must be in [0, 4]"),
                                          (["--degree", "5"], "flow diverges"),
                                          (["--steps", "1"], "--steps must be >= 32"),
                                          (["--samples", "2"], "--samples must be >= 50"),
                                          (["--n-train", "3"], "--n-train must be >= degree + 2"),
                                          (["--dim", "2", "--plot", "x.png"], "--plot draws the exact 1-D law"),
                                          (["--dim", "40", "--degree", "3"], "mixed moments of order <= 2k"),
                                          (["--features", "4"], "apply to --dim >= 2"),
                                          (["--sampler", "ddpm"], "invalid choice")])
def test_cli_rejects_bad_input(argv, message, capsys):
    assert exit_code(main, argv) == 2 and message in capsys.readouterr().err


ND = dict(degree=2, steps=32, samples=64, n_train=150)  # 32 Heun steps: the inverse-flow tests need the
# sampler close to the exact flow (at 8 steps the mapped-back noise is visibly non-Gaussian)


@pytest.mark.parametrize("dim,features", [(2, None), (3, None), (2, 6)])
def test_cubature_equivalence_on_a_non_product_target(dim, features):
    result = run(Config(dim=dim, features=features, **ND))
    assert result["passed"], failed(result)
    assert result["checks"][0].statistic < 1e-9
    assert set(result["measurements"]) >= {"sample_mean", "target_mean", "surrogate_atoms"}
    names = [c.name for c in result["checks"]]
    if features is None:
        assert any(n.startswith("Result 15: inverse flow round trip") for n in names)
    else:  # Result 15 is checked for the total-degree class only, and the report says so
        assert result["measurements"]["Result 15 checks"].startswith("not run")


@pytest.mark.parametrize("control,features", [("product-surrogate", None), ("short-surrogate", None),
                                              ("product-surrogate", 6)])
def test_surrogates_that_miss_mixed_moments_fail(control, features):
    result = run(Config(dim=2, features=features, negative_control=control, **ND))
    assert not result["passed"] and result["checks"][0].statistic > 1e-3


@pytest.mark.parametrize("config,message", [
    (dict(degree=0, negative_control="short-surrogate"), "needs --degree >= 1"),
    (dict(dim=2, negative_control="wrong-degree"), "needs --dim 1"),
    (dict(degree=0, negative_control="wrong-degree"), "and --degree >= 1"),
    (dict(degree=6), "degree must be in"),
])
def test_controls_that_could_not_fail_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        run(Config(**config))




def test_samples_not_mapped_back_enter_as_their_start_noise(monkeypatch):
    """The inverse-flow tests' replacement rule reads only the samples: with every sample 'far', the tested
    noise is exactly the start noise (calibrated by construction), and the label and count say so."""
    from numerics.schedules import VESchedule
    from theory.polynomial_flow_nd import MultivariateDenoiser
    from verify import polynomial_flow
    from verify.polynomial_nd import training_set
    cfg = Config(dim=2, degree=2, samples=64, n_train=150)
    train = training_set(cfg)[0]
    grid = VESchedule().grid(cfg.steps, final_zero=False)
    fit = polynomial_flow.total_degree_fit(train, grid.sigma, 2)
    seen = {}
    def record(w, *args, **kwargs):
        seen["w"] = w
        return []
    monkeypatch.setattr(polynomial_flow, "gaussian_checks", record)
    monkeypatch.setattr(polynomial_flow, "INVERSE_RADIUS", 0.0)
    _, measured = polynomial_flow._inverse_gaussian_checks(cfg, MultivariateDenoiser(train, None, 2), fit, grid,
                                                           np.random.default_rng(5))
    z = grid.prior_std * np.random.default_rng(5).standard_normal((64, 2))
    np.testing.assert_array_equal(seen["w"], z / grid.sigma[0])
    assert list(measured.values())[0].tolist() == [0, 64, 0]

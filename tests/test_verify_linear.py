"""``verify.linear`` end to end: passes on the truth, fails on each deliberately wrong prediction.

All at the CLI's default settings (d = 64, 10000 samples, Heun, VE, 32 steps, alpha = 1e-3),
where the issue requires the negative controls to be caught.
"""
import json

import pytest

from verify.linear import Config, main, run


def failed(result):
    return sorted(c.name for c in result["checks"] if not c.passed)


def test_default_run_passes_and_probe_is_exact():
    result = run(Config())
    assert result["passed"], failed(result)
    probe = {c.name: c.statistic for c in result["checks"] if c.name.startswith("exact probe")}
    assert len(probe) == 2 and max(probe.values()) < 1e-10  # float64 round-off over 32 Heun steps


@pytest.mark.parametrize("control", ["covariance+2%", "covariance+1%"])
def test_covariance_scale_errors_fail(control):
    result = run(Config(negative_control=control))
    assert not result["passed"]
    assert "covariance trace" in failed(result)  # z ~ 5.7 for 1%: well past alpha / 6


def test_continuous_law_for_ten_step_sampler_fails():
    result = run(Config(steps=10, negative_control="continuous"))
    assert not result["passed"]
    assert "exact probe: covariance" in failed(result) and "covariance LRT" in failed(result)


def test_unbiased_normalization_fails_at_small_n():
    truth = run(Config(n_train=20, init="marginal"))
    wrong = run(Config(n_train=20, init="marginal", negative_control="unbiased-covariance"))
    assert truth["passed"], failed(truth)
    assert not wrong["passed"] and "covariance trace" in failed(wrong)


@pytest.mark.parametrize("denoiser,sampler", [("fitted", "ddpm"), ("trained", "ddpm"), ("fitted", "heun")])
def test_fitted_and_trained_denoisers_match_their_own_exact_law(denoiser, sampler):
    result = run(Config(dim=8, steps=8, samples=4000, denoiser=denoiser, iterations=300, sampler=sampler))
    assert result["passed"], failed(result)


@pytest.mark.parametrize("sampler,schedule", [("euler_maruyama", "vp"), ("exponential_vp", "ddpm"),
                                              ("ddim", "ddpm"), ("euler", "ve")])
def test_other_samplers_and_schedules_pass(sampler, schedule):
    result = run(Config(dim=16, steps=12, samples=4000, sampler=sampler, schedule=schedule,
                        target="product", dtype="float32"))
    assert result["passed"], failed(result)


def test_cli_writes_json_and_plot_and_exit_codes(tmp_path, capsys):
    path, plot = tmp_path / "report.json", tmp_path / "spectra.png"
    assert main(["--dim", "8", "--samples", "2000", "--json", str(path), "--plot", str(plot)]) == 0
    data = json.loads(path.read_text())
    assert data["passed"] is True and {"predicted", "measured", "config", "checks"} <= set(data)
    assert {"name", "statistic", "p_value", "passed"} <= set(data["checks"][0])
    assert len(data["predicted"]["cov_eigenvalues"]) == 8 and plot.stat().st_size > 0
    assert "PASS" in capsys.readouterr().out
    assert main(["--dim", "8", "--samples", "2000", "--negative-control", "covariance+2%"]) == 1


@pytest.mark.parametrize("argv,message", [
    (["--dim", "0"], "--dim: must be an integer >= 1"),
    (["--steps", "0"], "--steps: must be an integer >= 1"),
    (["--sampler", "rk4"], "invalid choice"),
    (["--schedule", "cosine"], "invalid choice"),
    (["--alpha", "2"], "--alpha: must be in"),
])
def test_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_cli_reports_incompatible_sampler_schedule(capsys):
    assert main(["--dim", "4", "--sampler", "exponential_vp", "--schedule", "ve"]) == 2
    assert "variance-preserving" in capsys.readouterr().err

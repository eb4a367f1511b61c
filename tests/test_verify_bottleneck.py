"""``verify.bottleneck`` end to end: passes on the truth, fails on each deliberately wrong prediction."""
import pytest

from cli import exit_code
from verify.bottleneck import MODES, Config, main, run


def config(mode, **overrides):
    return Config(mode=mode, **{**MODES[mode], **overrides})


def failed(result):
    return sorted(c.name for c in result["checks"] if not c.passed)


def test_rank_mode_default_passes_with_collapsed_discarded_directions():
    result = run(config("linear"))
    assert result["passed"], failed(result)
    names = {c.name for c in result["checks"]}
    assert {"discarded-direction variance", "kept subspace = top-r", "exact probe: covariance"} <= names


@pytest.mark.parametrize("control", ["wrong-rank", "wrong-subspace"])
def test_rank_mode_negative_controls_fail(control):
    result = run(config("linear", negative_control=control))
    assert not result["passed"]
    assert "exact probe: covariance" in failed(result)


def test_rank_one_wrong_rank_control_predicts_rank_two():
    result = run(config("linear", dim=8, rank=1, samples=3000, negative_control="wrong-rank"))
    assert not result["passed"]


def test_stochastic_last_step_keeps_discarded_variance_and_still_matches():
    result = run(config("linear", dim=16, rank=4, samples=4000, sampler="euler_maruyama", steps=16))
    assert result["passed"], failed(result)
    assert "kept subspace = top-r" not in {c.name for c in result["checks"]}  # not collapsed: stats cover it


def test_decoder_mode_passes_and_its_controls_fail():
    assert run(config("decoder"))["passed"]
    no_map = run(config("decoder", negative_control="no-regression"))
    assert failed(no_map) == ["regression residual"]
    wrong_w = run(config("decoder", negative_control="wrong-encoder"))
    assert "regression residual" in failed(wrong_w)


def test_decoder_with_training_set_memorizes():
    result = run(config("decoder", n_train=10, samples=2000))
    assert result["passed"], failed(result)
    assert {c.name for c in result["checks"]} == {"copies of training points", "training points equally likely"}


@pytest.mark.parametrize("argv,message", [
    (["--rank", "0"], "--rank: must be an integer >= 1"),
    (["--dim", "4", "--rank", "5"], "rank must be in [1, dim = 4]"),
    (["--mode", "decoder", "--negative-control", "wrong-rank"], "does not apply to mode 'decoder'"),
    (["--mode", "trained", "--dim", "4", "--rank", "2"], "rank must be 1"),
])
def test_cli_rejects_bad_input(argv, message, capsys):
    assert exit_code(main, argv) == 2 and message in capsys.readouterr().err


def test_cli_exit_codes(capsys):
    assert main(["--mode", "decoder", "--samples", "1000"]) == 0
    assert main(["--mode", "decoder", "--samples", "1000", "--negative-control", "no-regression"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_trained_toy_samples_lie_on_a_curve_and_target_samples_do_not(tmp_path):
    small = dict(steps=6, iterations=200, samples=400)  # few levels and Adam steps: the curve check is exact anyway
    result = run(config("trained", **small))
    assert result["passed"], failed(result)
    assert set(result["measurements"]) >= {"sliced_w1_to_target", "sliced_w1_to_rank_r_affine_law"}
    control = run(config("trained", negative_control="target-samples", **small))
    assert failed(control) == ["target samples on the decoder image"]


@pytest.mark.parametrize("argv", [["--dim", "8", "--rank", "2", "--samples", "2000"],
                                  ["--mode", "decoder", "--samples", "1000"]], ids=["linear", "decoder"])
def test_cli_writes_json_and_plot_in_each_mode(argv, tmp_path):
    import json

    path, figure = tmp_path / "r.json", tmp_path / "f.png"
    assert main(argv + ["--json", str(path), "--plot", str(figure)]) == 0
    data = json.loads(path.read_text())
    assert data["passed"] is True and data["checks"] and data["config"]["mode"] == (argv[1] if argv[0] == "--mode" else "linear")
    assert figure.exists() or argv[0] == "--mode"  # the decoder mode has no spectrum to plot


def test_decoder_mode_holds_for_the_reverse_sde_and_from_the_prior():
    """Result 7 for the ancestral (reverse-SDE) sampler from the true marginal, and the PF-ODE from the prior."""
    for overrides in (dict(sampler="ddpm", steps=128, samples=1500), dict(init="prior", samples=1500)):
        result = run(config("decoder", **overrides))
        assert result["passed"], (overrides, failed(result))
        assert {"regression residual", "projected law (KS per code coordinate)"} <= {c.name for c in result["checks"]}


def test_rank_mode_names_the_independent_result_5_checks():
    result = run(config("linear", dim=8, rank=3, samples=2000, steps=16))
    assert result["passed"], failed(result)
    assert {"Result 5: formula = reduced-rank regression", "Result 5: formula vs reduced-rank least-squares fit",
            "Result 5: kept = top-r eigenvectors (eigh)"} <= {c.name for c in result["checks"]}

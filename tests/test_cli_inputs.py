"""Bad input to every CLI: a clear message naming the flag and exit 2, before any work; never a traceback.

Each row is (CLI, argv, a fragment of the expected message). Runs in-process; every row returns
before sampling starts, so the whole table takes seconds.
"""
from __future__ import annotations

import pytest

from cli import exit_code

ROWS = [
    ("verify.linear", ["--device", "cuda"], "no CUDA device visible; use --device cpu"),
    ("verify.linear", ["--device", "nonsense"], "unknown --device 'nonsense'"),
    ("verify.linear", ["--device", "cpu:0"], "unknown --device 'cpu:0'"),
    ("verify.linear", ["--json", "/proc/x.json"], "--json '/proc/x.json' cannot be written"),
    ("verify.linear", ["--plot", "/nonexistent_dir/x.png"], "does not exist"),
    ("verify.linear", ["--json", "/tmp"], "is a directory"),
    ("verify.linear", ["--plot", "x.notanimage"], "unknown image type 'notanimage'"),
    ("verify.linear", ["--plot", ""], "--plot must name a file"),
    ("verify.linear", ["--dim", "100000"], "lower --dim, --samples or --steps"),
    ("verify.linear", ["--samples", "100000000", "--dim", "512"], "lower --dim, --samples or --steps"),
    ("verify.linear", ["--seed", "-1"], "--seed: must be an integer in [0, 2^63)"),
    ("verify.linear", ["--seed", "1.5"], "--seed: must be an integer"),
    ("verify.linear", ["--dim", "0"], "--dim: must be an integer >= 1"),
    ("verify.linear", ["--steps", "-3"], "--steps: must be an integer >= 1"),
    ("verify.linear", ["--alpha", "1.5"], "--alpha: must be in (0, 1)"),
    ("verify.linear", ["--sampler", "dpm"], "--sampler: invalid choice"),
    ("verify.linear", ["--copies", "8"], "--copies is used by --denoiser fitted only"),
    ("verify.linear", ["--iterations", "10"], "--iterations is used by --denoiser trained only"),
    ("verify.linear", ["--n-train", "1"], "n_train must be >= 2"),
    ("verify.linear", ["--sampler", "exponential_vp", "--schedule", "ve"], "needs a variance-preserving schedule"),
    ("verify.linear", ["--sampler", "euler_maruyama", "--schedule", "ddpm"], "needs a continuous-time schedule"),
    ("verify.linear", ["--negative-control", "unbiased-covariance"], "needs --n-train >= 2"),
    ("verify.bottleneck", ["--mode", "linear", "--n-train", "5"], "--n-train not used in --mode linear"),
    ("verify.bottleneck", ["--mode", "linear", "--iterations", "5"], "--iterations not used in --mode linear"),
    ("verify.bottleneck", ["--mode", "decoder", "--target", "gaussian"], "--target not used in --mode decoder"),
    ("verify.bottleneck", ["--mode", "decoder", "--dtype", "float32"], "--dtype not used in --mode decoder"),
    ("verify.bottleneck", ["--mode", "trained", "--init", "marginal"], "--init not used in --mode trained"),
    ("verify.bottleneck", ["--mode", "trained", "--rank", "2"], "rank must be 1"),
    ("verify.bottleneck", ["--rank", "65"], "rank must be in [1, dim = 64]"),
    ("verify.bottleneck", ["--mode", "decoder", "--negative-control", "wrong-rank"], "does not apply to mode 'decoder'"),
    ("verify.bottleneck", ["--dim", "8", "--rank", "8", "--negative-control", "wrong-subspace"], "needs rank < dim"),
    ("verify.bottleneck", ["--device", "cuda"], "no CUDA device visible"),
    ("verify.bottleneck", ["--mode", "decoder", "--n-train", "1"], "--n-train must be >= 2 in --mode decoder"),
    ("verify.polynomial", ["--samples", "1"], "--samples must be >= 50"),
    ("verify.polynomial", ["--degree", "0", "--negative-control", "wrong-degree"], "--degree >= 1"),
    ("verify.polynomial", ["--steps", "1"], "--steps must be >= 32"),
    ("verify.polynomial", ["--dim", "64", "--degree", "3"], "nothing to check"),
    ("verify.polynomial", ["--degree", "5"], "its law does not exist"),
    ("verify.polynomial", ["--n-train", "3"], "--n-train must be >= degree + 2"),
    ("verify.polynomial", ["--dim", "2", "--plot", "p.png"], "--plot draws the exact 1-D law"),
    ("verify.linear", ["--diffusers", "DDIMScheduler", "--sampler", "heun"], "--diffusers sets the sampler"),
    ("verify.linear", ["--sampler", "dpmpp_2m"], "is multistep"),
    ("verify.linear", ["--s-churn", "3"], "--s-churn goes with --sampler edm_churn"),
    ("verify.linear", ["--sampler", "edm_churn"], "--sampler edm_churn needs --s-churn"),
    ("verify.linear", ["--sampler", "euler_churn_v"], "--sampler euler_churn_v needs --s-churn"),
    ("verify.linear", ["--diffusers", "DDIMScheduler", "--s-churn", "3"], "or with --diffusers EulerDiscreteScheduler"),
    ("verify.linear", ["--sampler", "rk4_t", "--schedule", "ddpm"], "rk4_t' needs a continuous-time schedule"),
    ("verify.linear", ["--s-tmin", "0.1"], "need --s-churn"),
    ("verify.linear", ["--sampler", "edm_churn", "--s-churn", "-1"], "need --s-churn >= 0"),
    ("verify.images", ["--quick", "--device", "cuda"], "no CUDA device visible"),
    ("verify.images", ["--quick", "--json", "/proc/x.json"], "cannot be written"),
    ("verify.images", ["--quick", "--plot", "x.bad"], "unknown image type 'bad'"),
    ("verify.creativity", ["--n-train", "1"], "--n-train must be >= 2"),
    ("verify.creativity", ["--steps", "1"], "--steps must be >= 2"),
    ("verify.creativity", ["--rank", "9", "--dim", "8"], "--rank must be in [1, --dim = 8]"),
    ("verify.creativity", ["--json", "/nonexistent_dir/r.json"], "does not exist"),
    ("verify.creativity", ["--n-train", "10000000", "--samples", "100000"], "lower --dim, --samples, --n-train"),
    ("theory.export", ["--out", ""], "--out must name a directory"),
    ("theory.export", ["--out", "/proc/version"], "is not a directory"),
]


@pytest.mark.parametrize("cli, argv, message", ROWS, ids=[f"{c} {' '.join(a)}" for c, a, _ in ROWS])
def test_bad_input_exits_2_with_a_message_naming_it(cli, argv, message, capsys):
    main = __import__(cli, fromlist=["main"]).main
    assert exit_code(main, argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err, captured.err
    assert "Traceback" not in captured.err
    assert captured.out == "", "nothing may be printed (no header, no work) before the refusal"


# ---------------------------------------------------------------- the same rules in the Python API
def _api_rows():
    import numpy as np
    import torch

    from numerics.denoisers import WienerDenoiser
    from numerics.sampling import sample
    from numerics.schedules import Grid, VESchedule
    from theory.linear_law import prior_start, wiener_law

    grid, D = VESchedule().grid(4), WienerDenoiser(np.zeros(2), np.eye(2))
    run = lambda **kw: sample(D, "heun", kw.pop("grid", grid), np.zeros(2), np.eye(2), 10, seed=0, **kw)  # noqa: E731
    negative = dict(t=np.array([1.0, 0.0]), sigma=np.array([-1.0, 0.0]), s=np.ones(2), sigma_dot=None, s_dot=None,
                    prior_std=1.0, schedule="hand-built")
    return [
        (lambda: run(grid=[80.0, 1.0, 0.0]), TypeError, "grid must be a numerics.schedules.Grid"),
        (lambda: wiener_law("heun", [80.0, 0.0], np.zeros(2), np.eye(2), prior_start), TypeError, "grid must be"),
        (lambda: Grid(**negative), ValueError, "grid.sigma must be >= 0 and non-increasing"),
        (lambda: run(dtype=torch.float16), TypeError, "dtype must be torch.float32 or torch.float64"),
        (lambda: run(dtype=torch.int64), TypeError, "dtype must be torch.float32 or torch.float64"),
        (lambda: run(device="nonsense"), ValueError, "unknown device 'nonsense'"),
    ] + ([] if torch.cuda.is_available() else [(lambda: run(device="cuda"), ValueError, "no CUDA device visible")])


def test_the_api_refuses_bad_input_naming_the_argument():
    for call, error, message in _api_rows():
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            call()

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

"""Sharded Monte Carlo: shards cover the run, moments merge exactly, and a 2-process torchrun (gloo) reports
what one process reports."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from verify import linear
from verify.distributed import shard
from verify.stats import SampleMoments, effect_sizes, gaussian_checks

ROOT = pathlib.Path(__file__).resolve().parent.parent
MERGE_RTOL = 1e-9  # float64 sums in another order: round-off of ~n eps relative, far below this


@pytest.mark.parametrize("n, size", [(10, 3), (7, 7), (3, 5), (100000, 4)])
def test_shards_partition_the_index_range(n, size):
    ranges = [shard(n, rank, size) for rank in range(size)]
    assert [first for first, _ in ranges] == [0] + [f + c for f, c in ranges[:-1]]
    assert sum(count for _, count in ranges) == n and max(c for _, c in ranges) - min(c for _, c in ranges) <= 1


def test_summed_moments_of_the_halves_are_the_moments_of_the_whole():
    rng = np.random.default_rng(0)
    factor = rng.standard_normal((5, 3))                   # a rank-3 law in R^5: null space of dimension 2
    mean, cov = rng.standard_normal(5), factor @ factor.T
    x = mean + rng.standard_normal((400, 3)) @ factor.T
    halves = [SampleMoments.of(part, mean, cov) for part in (x[:150], x[150:])]
    merged = SampleMoments.from_sums(halves[0].sums() + halves[1].sums(), 3, 5,
                                     max(h.null_deviation for h in halves))
    for got, want in zip(gaussian_checks(merged, mean, cov), gaussian_checks(x, mean, cov)):
        assert got.name == want.name and got.passed == want.passed
        assert np.isclose(got.statistic, want.statistic, rtol=MERGE_RTOL, atol=1e-12)  # null check ~1e-15
    got, want = effect_sizes(merged, mean, cov), effect_sizes(x, mean, cov)
    assert np.isclose(got["relative_cov_error"], want["relative_cov_error"], rtol=MERGE_RTOL)
    # BW of a singular law is only good to ~sqrt(eps) relative (square roots of round-off eigenvalues)
    assert np.isclose(got["bures_wasserstein"], want["bures_wasserstein"], rtol=1e-5)
    assert got["kl"] == want["kl"] or np.isclose(got["kl"], want["kl"], rtol=1e-6)


def test_two_process_torchrun_reports_what_one_process_reports(tmp_path):
    argv = ["--dim", "8", "--samples", "3000", "--steps", "8", "--sampler", "ddpm", "--device", "cpu"]
    assert linear.main(argv + ["--json", str(tmp_path / "one.json")]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "verify.linear", *argv, "--json", str(tmp_path / "two.json")]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("PASS in") == 1  # rank 0 alone reports
    one, two = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("one", "two"))
    assert [c["name"] for c in one["checks"]] == [c["name"] for c in two["checks"]]
    for a, b in zip(one["checks"], two["checks"]):
        assert a["passed"] == b["passed"] and a["measured"] == b["measured"] or a["name"].startswith("exact")
        assert np.isclose(a["statistic"], b["statistic"], rtol=MERGE_RTOL)
        assert a["p_value"] is None or np.isclose(a["p_value"], b["p_value"], rtol=MERGE_RTOL)
    for key in ("mean", "cov_eigenvalues"):
        assert np.allclose(one["measured"][key], two["measured"][key], rtol=MERGE_RTOL, atol=1e-12)

"""Mutation rows for ``verify.images`` (same machinery as ``tests/test_mutations.py``): each must FAIL."""
import numpy as np
import pytest

from mutations import Mutation, apply, failed_checks, run_cli
from test_verify_images import TINY


def _noise_doubled(original):
    def gain(self, eigenvalues, sigma_value):
        return original(self, eigenvalues, np.sqrt(2) * sigma_value)   # lambda / (lambda + 2 sigma^2)
    return gain


MUTATIONS = [
    Mutation("Result 1 gain with 2 sigma^2", "theory.linear:OptimalAffineDenoiser.gain", _noise_doubled,
             "verify.images", tuple(TINY), "linear network = wiener machine"),
    Mutation("copy threshold 0", "verify.images_metrics:COPY_RATIO", lambda original: 0.0, "verify.images",
             tuple(TINY + ["--linear-steps", "20"]), "memorizing machine copies"),  # fast: the linear row is not read
]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_planted_error_fails(mutation, monkeypatch, capsys):
    apply(monkeypatch, mutation)
    code, output = run_cli(mutation.cli, mutation.argv, capsys)
    assert code == 1
    assert any(line.startswith(mutation.fails) for line in failed_checks(output)), failed_checks(output)

"""Mutation rows for ``verify.images``: a planted error in a formula the CLI relies on must make it FAIL."""
import pytest

from verify import images
from test_verify_images import TINY

MUTATIONS = [
    # (name, target attribute, replacement, argv, failing check)
    ("Wiener gain with 2 sigma^2", "theory.linear.OptimalAffineDenoiser.gain",
     lambda self, eigenvalues, sigma: eigenvalues / (eigenvalues + 2 * sigma**2), TINY,
     "linear network = wiener machine (median r^2)"),
    ("copy threshold 0", "verify.images_metrics.COPY_RATIO", 0.0, TINY + ["--linear-steps", "20"],  # fast: no linear claim
     "memorizing machine copies training images"),
]


@pytest.mark.parametrize("name,target,replacement,argv,check", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_planted_error_fails(name, target, replacement, argv, check, monkeypatch, capsys):
    monkeypatch.setattr(target, replacement)
    assert images.main(argv) == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if line.rstrip().endswith("FAIL")]
    assert any(line.startswith(check) for line in failed), failed

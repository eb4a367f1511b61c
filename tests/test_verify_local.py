"""``python -m verify.local``: a fast run passes, negative controls fail, bad input exits 2."""
import json

import pytest

from tests.cli import exit_code
from verify import local

FAST = ["--steps", "6", "--samples", "200", "--texture-size", "5", "--n-train", "10", "--mosaic-samples", "8",
        "--mosaic-steps", "4"]


def test_fast_run_passes_and_writes_json_and_plot(tmp_path, capsys):
    out, image = tmp_path / "report.json", tmp_path / "grid.png"
    assert local.main(FAST + ["--json", str(out), "--plot", str(image)]) == 0
    report = json.loads(out.read_text())
    assert report["passed"] and image.stat().st_size > 0
    names = [c["name"] for c in report["checks"]]
    assert "kernel zeros: not stationary (corner vs centre variance)" in names
    assert "global memorizer: image level" in names
    assert capsys.readouterr().out.startswith("verify.local:")


@pytest.mark.parametrize("control", local.NEGATIVE_CONTROLS)
def test_negative_controls_fail(control, capsys):
    assert local.main(FAST + ["--negative-control", control]) == 1


@pytest.mark.parametrize("argv", [["--patch", "2"], ["--patch", "9"], ["--boundary", "mirror"], ["--n-train", "1"],
                                  ["--mosaic-steps", "1"], ["--mosaic-samples", "4"], ["--texture-size", "2"],
                                  ["--samples", "50"], ["--degree", "4"], ["--steps", "0"],
                                  ["--sampler", "exponential_vp"]],
                         ids=["even patch", "patch > image", "unknown boundary", "one training image",
                              "one mosaic step", "too few mosaic samples", "texture too small",
                              "too few samples for the LRT", "degree 4", "zero steps", "sampler/schedule mismatch"])
def test_bad_input_exits_2(argv, capsys):
    assert exit_code(local.main, FAST + argv) == 2
    assert "error" in capsys.readouterr().err

"""``verify.images`` end to end on a tiny size: passes, and each wrong claim FAILs; bad input exits 2."""
import numpy as np
import pytest

from cli import exit_code
from verify import images
from verify.images_metrics import per_sample_r2

TINY = ["--quick", "--n-train", "300", "--train-steps", "30", "--linear-steps", "1500", "--steps", "6",
        "--samples", "16", "--patch-images", "20", "--classifier-steps", "300", "--variants", "unet"]


def test_per_sample_r2_is_one_for_the_same_samples_and_zero_for_their_mean():
    x = np.random.default_rng(0).normal(size=(10, 5))
    assert np.allclose(per_sample_r2(x, x), 1.0)
    assert np.allclose(per_sample_r2(x, np.broadcast_to(x.mean(axis=0), x.shape)), 0.0)


def test_tiny_run_passes_and_writes_its_outputs(tmp_path, capsys):
    assert images.main(TINY + ["--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "linear network = wiener machine" in text and "creativity" in text
    assert (tmp_path / "images.json").exists() and (tmp_path / "images.png").exists()
    assert (tmp_path / "checkpoints" / "unet.pt").exists()


def test_swapped_machines_fail():
    assert images.main(TINY + ["--negative-control", "swap-machines"]) == 1


def test_unconverged_linear_network_fails_its_bound():
    assert images.main(TINY + ["--linear-steps", "20"]) == 1


@pytest.mark.parametrize("argv,message", [
    (["--variants", "unet,vgg"], "unknown variant 'vgg'"),
    (["--patches", "4"], "patches must be odd"),
    (["--dataset", "fashion", "--size", "5"], "size must divide the image side 28"),
    (["--samples", "1"], "samples must be >= 2"),
    (["--n-train", "5000"], "n must be <= 1500"),
])
def test_bad_input_exits_2_naming_the_argument(argv, message, capsys):
    assert exit_code(images.main, ["--quick"] + argv) == 2
    assert message in capsys.readouterr().err

"""Image numerics: IDX loader, datasets, UNET switches, patch machines against brute force, resumable training."""
import gzip

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from numerics import datasets, image_training
from numerics.image_machines import PatchPosteriorDenoiser
from numerics.image_networks import VARIANTS, Variant
from numerics.unet import UNet


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_idx_round_trip_and_bad_magic(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    assert np.array_equal(datasets.read_idx(tmp_path / "a.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(tmp_path / "bad")


def test_fashion_falls_back_to_the_shipped_subset(tmp_path):
    images, labels, source = datasets.fashion_mnist_raw("test", root=tmp_path)
    assert source.endswith("fashion_mnist_subset.npz")
    assert images.shape == (500, 28, 28) and images.dtype == np.uint8 and set(labels) <= set(range(10))


def test_load_scales_and_downsamples():
    x, labels, _ = datasets.load("digits", "train", size=4, n=50)
    assert x.shape == (50, 4, 4) and len(labels) == 50
    assert -1.0 <= x.min() and x.max() <= 1.0
    with pytest.raises(ValueError, match="size must divide the image side 8"):
        datasets.load("digits", "train", size=3)
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("cifar", "train")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_maps_images_to_images(name):
    model = VARIANTS[name].build((1, 8, 8)) if VARIANTS[name].kind == "mlp" else \
        Variant(**{**VARIANTS[name].__dict__, "width": 4}).build((1, 8, 8))
    out = model(torch.randn(3, 1, 8, 8), torch.zeros(3))
    assert out.shape == (3, 1, 8, 8)


@given(st.integers(0, 3), st.integers(0, 3))
def test_circular_unet_commutes_with_even_shifts(a, b):
    """Circular padding, 2x pooling (no BatchNorm: eval-mode statistics are untrained): equivariant to shifts by multiples of 2 (to float32 round-off)."""
    torch.manual_seed(0)
    model = UNet(1, 4, 2, padding="circular", norm="none")
    x, c = torch.randn(2, 1, 8, 8), torch.zeros(2)
    shift = lambda z: torch.roll(z, (2 * a, 2 * b), dims=(2, 3))  # noqa: E731
    out = model(x, c)
    assert (model(shift(x), c) - shift(out)).abs().max() <= 1e-4 * out.std()  # float32 convolutions


def test_zero_padding_is_not_shift_equivariant():
    torch.manual_seed(0)
    model = UNet(1, 4, 2, padding="zeros", norm="none")
    x, c = torch.randn(2, 1, 8, 8), torch.zeros(2)
    shift = lambda z: torch.roll(z, (2, 2), dims=(2, 3))  # noqa: E731
    out = model(x, c)
    assert (model(shift(x), c) - shift(out)).abs().max() > 0.1 * out.std()


def test_bad_switch_is_named():
    with pytest.raises(ValueError, match="unknown padding 'mirror'"):
        UNet(padding="mirror")
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        UNet(norm="layer")


def brute_force(train, y, sigma, patch, equivariant, padding):
    """Posterior mean of each centre pixel by explicit loops over positions and training patches."""
    n, h, w = train.shape
    r = patch // 2
    pad = lambda z: np.pad(z, ((r, r), (r, r)), mode={"zeros": "constant", "circular": "wrap"}[padding])  # noqa: E731
    known = np.pad(np.ones((h, w)), r) if padding == "zeros" else np.ones((h + 2 * r, w + 2 * r))
    same = lambda a, b, i, j: np.array_equal(known[a:a + patch, b:b + patch], known[i:i + patch, j:j + patch])  # noqa: E731
    bank = [(a, b, pad(t)[a:a + patch, b:b + patch]) for t in train for a in range(h) for b in range(w)]
    q = pad(y)
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            local = [p for (a, b, p) in bank if (a, b) == (i, j) or (equivariant and same(a, b, i, j))]
            logits = np.array([-((q[i:i + patch, j:j + patch] - p) ** 2).sum() / (2 * sigma**2) for p in local])
            weights = np.exp(logits - logits.max())
            out[i, j] = (weights * np.array([p[r, r] for p in local])).sum() / weights.sum()
    return out


@pytest.mark.parametrize("equivariant,padding", [(False, "zeros"), (True, "zeros"), (True, "circular")])
def test_patch_machines_equal_brute_force_posterior_mean(equivariant, padding):
    rng = np.random.default_rng(0)
    train = np.round(rng.uniform(-1, 1, (3, 4, 5)), 1)      # rounded: repeated patches exercise the counts
    y = rng.normal(size=(4, 5))
    machine = PatchPosteriorDenoiser(train, 3, padding, equivariant=equivariant)
    out = machine(torch.as_tensor(y.reshape(1, -1)), 0.7).numpy().reshape(4, 5)
    assert np.allclose(out, brute_force(train, y, 0.7, 3, equivariant, padding), atol=1e-12)  # float64, same sums


def test_patch_machine_refuses_even_or_large_patch():
    with pytest.raises(ValueError, match="patch must be odd"):
        PatchPosteriorDenoiser(np.zeros((2, 4, 4)), 2)
    with pytest.raises(ValueError, match="patch must be odd and <= the image side 4"):
        PatchPosteriorDenoiser(np.zeros((2, 4, 4)), 5)


def test_training_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    images = np.random.default_rng(0).uniform(-1, 1, (32, 1, 4, 4))
    variant = Variant(width=2, depth=1)
    _, straight = image_training.train_network(variant, images, steps=6, batch=8, every=3)
    save = image_training._save

    def killed_after_first_save(*args):
        save(*args)
        raise KeyboardInterrupt
    monkeypatch.setattr(image_training, "_save", killed_after_first_save)
    with pytest.raises(KeyboardInterrupt):
        image_training.train_network(variant, images, steps=6, batch=8, every=3, checkpoint=tmp_path / "c.pt")
    monkeypatch.setattr(image_training, "_save", save)
    _, resumed = image_training.train_network(variant, images, steps=6, batch=8, every=3, checkpoint=tmp_path / "c.pt")
    assert np.allclose(resumed, straight, rtol=1e-6)  # same batches, noise and weights after the restart


def test_calibration_recovers_the_patch_size_of_a_patch_machine():
    from verify.images_run import calibrate

    rng = np.random.default_rng(1)
    train, held_out = rng.uniform(-1, 1, (6, 5, 5)), rng.uniform(-1, 1, (4, 25))
    bank = {p: PatchPosteriorDenoiser(train, p) for p in (1, 3, 5)}
    machine = calibrate(bank[3], bank, [0.3, 1.0], held_out, seed=0)
    assert machine.schedule == {0.3: 3, 1.0: 3}
    y = torch.as_tensor(held_out)
    assert torch.equal(machine(y, 1.0), bank[3](y, 1.0))
    with pytest.raises(ValueError, match="not one of the 2 noise levels"):
        machine(y, 0.5)

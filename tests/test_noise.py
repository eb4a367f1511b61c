"""Counter-based noise: Philox known answers, batch/device/dtype independence, and calibrated statistics.

Every statistical test below runs at a fixed seed and a stated per-test false-alarm rate ``ALPHA``
(two-sided where noted); under a correct generator each fails with probability ``ALPHA`` over seeds.
"""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from numerics.noise import PhiloxNoise, philox, randn_like

ALPHA = 1e-3  # per-test false-alarm rate of the statistical tests


def words(counter, key):
    return [int(w) for w in philox([torch.tensor([c]) for c in counter], key)]


@pytest.mark.parametrize("counter, key, expected", [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_matches_the_random123_known_answers(counter, key, expected):
    assert words(counter, key) == list(expected)


def test_a_sample_gets_the_same_noise_in_any_batch():
    whole = PhiloxNoise(3, 0, 10)
    parts = [PhiloxNoise(3, 0, 4), PhiloxNoise(3, 4, 6)]
    for shape in ((5,), (5,), (2, 3)):  # steps 0, 1, 2; a trailing shape of 6 coordinates
        assert torch.equal(whole.randn(shape), torch.cat([p.randn(shape) for p in parts]))


def test_coordinates_are_keyed_not_positional():
    """Coordinate k is the same normal whatever the width drawn: widths 3 and 9 share their first 3."""
    assert torch.equal(PhiloxNoise(1, 0, 4).randn((9,))[:, :3], PhiloxNoise(1, 0, 4).randn((3,)))


def test_the_sample_index_carries_into_the_high_word():
    straddle = PhiloxNoise(0, 2**32 - 2, 4).randn((8,))
    halves = torch.cat([PhiloxNoise(0, 2**32 - 2, 2).randn((8,)), PhiloxNoise(0, 2**32, 2).randn((8,))])
    assert torch.equal(straddle, halves)
    assert not torch.equal(PhiloxNoise(0, 2**32, 1).randn((8,)), PhiloxNoise(0, 0, 1).randn((8,)))


def test_seeds_differ_in_their_high_word():
    assert not torch.equal(PhiloxNoise(2**32, 0, 2).randn((8,)), PhiloxNoise(0, 0, 2).randn((8,)))


def test_float32_is_float64_rounded():
    z64, z32 = PhiloxNoise(5, 0, 256).randn((64,)), PhiloxNoise(5, 0, 256).randn((64,), torch.float32)
    assert z32.dtype == torch.float32
    # float32 log/cos/sin of float32-rounded uniforms: a few ulp of 6e-8, times |z| <= 6.7, near u = 1 more
    assert torch.allclose(z32.double(), z64, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_draws_the_same_normals():
    cpu, cuda = PhiloxNoise(9, 0, 512).randn((33,)), PhiloxNoise(9, 0, 512, "cuda").randn((33,))
    assert cuda.device.type == "cuda"
    assert torch.allclose(cuda.cpu(), cpu, rtol=1e-12, atol=1e-12)  # integer ops exact; libm ulps differ


def test_randn_like_draws_on_the_generator_in_the_tensor_dtype():
    z = randn_like(torch.empty(4, 6, dtype=torch.float32), PhiloxNoise(0, 0, 4))
    assert z.dtype == torch.float32 and z.shape == (4, 6)


@pytest.mark.parametrize("args", [(-1, 0, 2), (2**64, 0, 2), (0, -1, 2), (0, 2**64 - 1, 2)])
def test_out_of_range_keys_are_errors(args):
    with pytest.raises(ValueError, match="seed"):
        PhiloxNoise(*args)


@pytest.fixture(scope="module")
def normals():
    """``(samples, steps, coordinates)`` = (4096, 8, 64): 2^21 normals of one run."""
    generator = PhiloxNoise(2024, 0, 4096)
    return torch.stack([generator.randn((64,)) for _ in range(8)], dim=1).numpy()


def test_moments_are_standard_normal(normals):
    z = normals.ravel()
    n = z.size
    p_mean = 2 * stats.norm.sf(abs(z.mean()) * math.sqrt(n))
    p_var = 2 * min(stats.chi2.cdf(np.sum(z**2), n), stats.chi2.sf(np.sum(z**2), n))  # known mean 0
    p_skew = 2 * stats.norm.sf(abs(np.mean(z**3)) / math.sqrt(15 / n))
    p_kurt = 2 * stats.norm.sf(abs(np.mean(z**4) - 3) / math.sqrt(96 / n))
    assert min(p_mean, p_var, p_skew, p_kurt) >= ALPHA / 4  # Bonferroni over the four moments


def test_normal_cdf_is_uniform_on_256_bins(normals):
    """Chi-square of Phi(z) on 256 equal bins, df = 255: tests the whole shape, tails included."""
    counts = np.bincount((stats.norm.cdf(normals.ravel()) * 256).astype(int).clip(0, 255), minlength=256)
    assert stats.chisquare(counts).pvalue >= ALPHA


def test_philox_words_are_uniform_on_256_bins():
    counter = [torch.arange(2**18)[None, :], torch.zeros(1, 1, dtype=torch.int64),
               torch.arange(4)[:, None], torch.zeros(1, 1, dtype=torch.int64)]
    top = torch.cat([w.ravel() >> 24 for w in philox(counter, (17, 0))]).numpy()  # top byte of 2^22 words
    assert stats.chisquare(np.bincount(top, minlength=256)).pvalue >= ALPHA


@pytest.mark.parametrize("axis", [0, 1, 2], ids=["samples", "steps", "coordinates"])
def test_neighbours_are_uncorrelated(normals, axis):
    """Lag-1 correlation along samples, steps or coordinates: ``sqrt(n) r ~ N(0, 1)``, two-sided."""
    a, b = np.take(normals, range(normals.shape[axis] - 1), axis), np.take(normals, range(1, normals.shape[axis]), axis)
    r = np.mean(a * b)  # known mean 0 and variance 1
    assert 2 * stats.norm.sf(abs(r) * math.sqrt(a.size)) >= ALPHA


def test_pairs_are_uncorrelated_in_their_squares(normals):
    """Box-Muller pairs share a radius: their squares must still be uncorrelated (cov(z1^2, z2^2) = 0)."""
    pairs = normals.reshape(-1, 2)
    r = np.mean((pairs[:, 0] ** 2 - 1) * (pairs[:, 1] ** 2 - 1)) / 2.0  # var(z^2 - 1) = 2
    assert 2 * stats.norm.sf(abs(r) * math.sqrt(len(pairs))) >= ALPHA

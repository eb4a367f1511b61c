"""Property tests of the local and equivariant denoisers: numerics from their definitions vs the theory."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from numerics.denoisers import WienerDenoiser
from numerics.local import PatchLinearDenoiser
from numerics.local_equivariant import FourierWienerDenoiser, KernelDenoiser
from numerics.local_memorizing import PatchPosteriorDenoiser
from numerics.memorization import EmpiricalDenoiser
from theory.linear import OptimalAffineDenoiser
from theory.linear_law import affine_law, prior_start
from theory.local import OptimalPatchDenoiser, patch_affine, patch_law
from theory.local_fourier import (EquivariantWienerLaw, FourierLaw, equivariant_law, kernel_matrix, optimal_kernel,
                                  stationary_spectrum)
from theory.local_mosaic import PatchMemorizingMachines, posterior_pixels
from tests.strategies import (boundaries, image_targets, image_training_sets, odd_patches, sampler_grids, seeds,
                              sigmas)

ROUND_OFF = 1e-9  # float64 solves of systems with condition number up to ~1e5 (sigma >= 1e-3 on O(1) data)


def noisy(shape, seed, n=3):
    return torch.as_tensor(np.random.default_rng([seed, 2]).standard_normal((n, int(np.prod(shape)))))


def close(a, b, rtol=ROUND_OFF):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b)) <= rtol * max(1.0, np.max(np.abs(b)))


@given(image_targets(), boundaries, sigmas, seeds, st.data())
def test_patch_linear_numerics_equal_the_block_formula(target, boundary, sigma_value, seed, data):
    shape, mean, cov = target
    patch = data.draw(odd_patches(shape))
    y = noisy(shape, seed)
    G, b = patch_affine(mean, cov, shape, patch, boundary, sigma_value)
    assert close(PatchLinearDenoiser(mean, cov, shape, patch, boundary)(y, sigma_value), y.numpy() @ G.T + b)


@given(image_targets(), sigmas, seeds)
def test_patch_covering_the_image_is_the_global_wiener_filter(target, sigma_value, seed):
    shape, mean, cov = target
    p = min(shape[1:]) if min(shape[1:]) % 2 else min(shape[1:]) - 1
    shape = (shape[0], p, p)                          # a square image the circular patch covers
    d = int(np.prod(shape))
    mean, cov = mean[:d], cov[:d, :d]
    G, b = patch_affine(mean, cov, shape, p, "circular", sigma_value)
    G_global, b_global = OptimalAffineDenoiser().affine(mean, cov, sigma_value)
    assert close(G, G_global) and close(b, b_global)
    y = noisy(shape, seed)
    assert close(PatchLinearDenoiser(mean, cov, shape, p, "circular")(y, sigma_value),
                 WienerDenoiser(mean, cov)(y, sigma_value))


@given(image_targets(), sigmas)
def test_one_pixel_patch_is_per_pixel_shrinkage(target, sigma_value):
    shape, mean, cov = target
    shape = (1, *shape[1:])
    d = int(np.prod(shape))
    G, _ = patch_affine(mean[:d], cov[:d, :d], shape, 1, "zeros", sigma_value)
    variances = np.diag(cov)[:d]
    assert close(G, np.diag(variances / (variances + sigma_value**2)))


@given(image_targets(), sigmas, st.data())
def test_zero_and_reflect_padding_give_the_same_optimal_map(target, sigma_value, data):
    shape, mean, cov = target
    patch = data.draw(odd_patches(shape))
    y = noisy(shape, 0)
    zeros = PatchLinearDenoiser(mean, cov, shape, patch, "zeros")(y, sigma_value)
    assert close(PatchLinearDenoiser(mean, cov, shape, patch, "reflect")(y, sigma_value), zeros)


@given(image_targets(), sigmas, seeds, st.data())
def test_circular_denoisers_commute_with_shifts(target, sigma_value, seed, data):
    shape, mean, cov = target
    c, h, w = shape
    y = noisy(shape, seed)
    shift = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    roll = lambda x: torch.roll(x.reshape(len(x), c, h, w), shift, dims=(2, 3)).reshape(len(x), -1)  # noqa: E731
    for D in (FourierWienerDenoiser(mean, cov, shape), KernelDenoiser(mean, cov, shape, data.draw(odd_patches(shape)))):
        assert torch.max(torch.abs(D(roll(y), sigma_value) - roll(D(y, sigma_value)))) <= 1e-12 * max(1, y.abs().max())


@given(image_targets(), sigmas, seeds, st.data())
def test_fft_and_kernel_denoisers_are_optimal_for_the_shift_mixture(target, sigma_value, seed, data):
    shape, mean, cov = target
    c, h, w = shape
    index = np.arange(c * h * w).reshape(c, h, w)
    shifts = [np.roll(index, (a, b), axis=(1, 2)).ravel() for a in range(h) for b in range(w)]
    second = cov + np.outer(mean, mean)
    mixture_mean = sum(mean[s] for s in shifts) / len(shifts)
    mixture_cov = sum(second[np.ix_(s, s)] for s in shifts) / len(shifts) - np.outer(mixture_mean, mixture_mean)
    y = noisy(shape, seed)
    mixture_cov = 0.5 * (mixture_cov + mixture_cov.T)
    assert close(FourierWienerDenoiser(mean, cov, shape)(y, sigma_value),
                 WienerDenoiser(mixture_mean, mixture_cov)(y, sigma_value), 1e-8)
    patch = data.draw(odd_patches(shape))                 # the p x p optimum of a stationary target is a kernel
    assert close(KernelDenoiser(mean, cov, shape, patch)(y, sigma_value),
                 PatchLinearDenoiser(mixture_mean, mixture_cov, shape, patch, "circular")(y, sigma_value), 1e-8)


@given(image_targets(), sampler_grids(max_steps=6), st.data())
def test_fourier_law_equals_the_dense_recursion(target, sampler_grid, data):
    shape, mean, cov = target
    sampler, grid = sampler_grid
    patch = data.draw(st.none() | odd_patches(shape))
    d = int(np.prod(shape))
    law = equivariant_law(sampler, grid, mean, cov, shape, patch=patch)
    mu_bar, S = stationary_spectrum(mean, cov, shape)
    c, h, w = shape
    centre = np.repeat(mu_bar, h * w)
    S_flat = S.reshape(h * w, c, c)
    cov_bar = FourierLaw(shape, np.zeros((h * w, c)), S_flat).covariance()

    def affine(sigma_value):
        if patch is None:
            return OptimalAffineDenoiser().affine(centre, cov_bar, sigma_value)
        K = kernel_matrix(optimal_kernel(S_flat, shape, patch, sigma_value), "circular")
        return K, centre - K @ centre

    dense = affine_law(sampler, grid, affine, prior_start(grid, np.zeros(d), np.eye(d)))
    scale = np.max(np.abs(dense.cov))
    assert np.max(np.abs(law.covariance() - dense.cov)) <= 1e-10 * scale
    assert np.max(np.abs(law.mean_image() - dense.mean)) <= 1e-10 * np.sqrt(scale)


@given(image_training_sets(), boundaries, sigmas, st.booleans(), seeds, st.data())
def test_ls_and_els_equal_the_brute_force_posterior_mean(case, boundary, sigma_value, equivariant, seed, data):
    shape, train = case
    patch = data.draw(odd_patches(shape))
    y = noisy(shape, seed)
    machine = PatchPosteriorDenoiser(train, shape, patch, boundary, equivariant=equivariant)
    brute, bound, nearest = posterior_pixels(y.numpy(), train, shape, patch, boundary, sigma_value,
                                             equivariant=equivariant)
    out = machine(y, sigma_value).numpy()
    assert close(out, brute)
    assert np.all(np.abs(out - nearest) <= bound + 1e-9)


@given(image_training_sets(), sigmas, seeds)
def test_ls_with_a_covering_patch_is_the_global_memorizer(case, sigma_value, seed):
    shape, train = case
    p = min(shape[1:]) if min(shape[1:]) % 2 else min(shape[1:]) - 1
    shape = (shape[0], p, p)
    train = train[:, :int(np.prod(shape))]
    y = noisy(shape, seed)
    machine = PatchPosteriorDenoiser(train, shape, p, "circular")
    assert close(machine(y, sigma_value), EmpiricalDenoiser(train)(y, sigma_value))


def test_patch_law_is_the_affine_law_of_the_numerics():
    from numerics.sampling import affine_probe
    from numerics.schedules import VESchedule
    from theory.finite_step import probe_law

    rng = np.random.default_rng(0)
    shape, d = (1, 4, 5), 20
    A = rng.standard_normal((d, d))
    mean, cov = rng.standard_normal(d), A @ A.T / d
    grid = VESchedule().grid(6)
    start = prior_start(grid, np.zeros(d), np.eye(d))
    law = patch_law("ddpm", grid, mean, cov, shape, 3, "reflect", start)
    probed = probe_law(*affine_probe(PatchLinearDenoiser(mean, cov, shape, 3, "reflect"), "ddpm", grid, d), start)
    assert close(probed.cov, law.cov, 1e-10) and close(probed.mean, law.mean, 1e-10)


@pytest.mark.parametrize("make", [
    lambda m, C: PatchLinearDenoiser(m, C, (1, 4, 4), 2, "zeros"),
    lambda m, C: PatchLinearDenoiser(m, C, (1, 4, 4), 5, "zeros"),
    lambda m, C: PatchLinearDenoiser(m, C, (1, 4, 4), 3, "mirror"),
    lambda m, C: PatchLinearDenoiser(m, C, (2, 4, 4), 3, "zeros"),
    lambda m, C: KernelDenoiser(m, C, (1, 4, 4), 4),
    lambda m, C: FourierWienerDenoiser(m, C, (1, 4)),
    lambda m, C: PatchPosteriorDenoiser(np.zeros((3, 16)), (2, 4, 4), 3),
    lambda m, C: patch_affine(m, C, (1, 4, 4), 2, "zeros", 1.0),
    lambda m, C: patch_affine(m, C, (1, 4, 4), 3, "wrap", 1.0),
    lambda m, C: patch_affine(m, C, (1, 2, 4), 3, "zeros", 1.0),
    lambda m, C: posterior_pixels(np.zeros((1, 16)), np.zeros((2, 32)), (2, 4, 4), 3, "zeros", 1.0, equivariant=True),
], ids=["even patch", "patch > image", "unknown boundary", "channel mismatch", "even kernel", "shape not (c,h,w)",
        "train channel mismatch", "theory: even patch", "theory: unknown boundary", "theory: patch > image",
        "theory: channel mismatch"])
def test_bad_input_is_a_clear_error(make):
    with pytest.raises(ValueError, match="patch|boundary|must"):
        make(np.zeros(16), np.eye(16))


def test_denoiser_input_width_is_checked():
    D = PatchLinearDenoiser(np.zeros(16), np.eye(16), (1, 4, 4), 3)
    with pytest.raises(ValueError, match="shape"):
        D(torch.zeros(2, 15, dtype=torch.float64), 1.0)


def test_results_state_their_formulas():
    from theory.local_polynomial import PatchPolynomialDenoiser as PolynomialResult

    for result in (OptimalPatchDenoiser(), EquivariantWienerLaw(), PatchMemorizingMachines(), PolynomialResult()):
        text = result.latex()
        assert result.name in text and "\\begin{equation}" in text and "False" not in text


@given(image_training_sets(max_n=4), st.sampled_from((1, 2)), sigmas, seeds)
def test_patch_polynomial_numerics_equal_the_moment_formula(case, degree, sigma_value, seed):
    from numerics.local_polynomial import PatchPolynomialDenoiser
    from theory.local_polynomial import polynomial_denoise

    shape, train = case
    shape, train = (1, *shape[1:]), train[:, :shape[1] * shape[2]]
    patch = 3 if min(shape[1:]) >= 3 and degree == 1 else 1    # keep the degree-2 monomial count small
    y = noisy(shape, seed)
    out = PatchPolynomialDenoiser(train, shape, patch, degree)(y, sigma_value).numpy()
    assert close(out, polynomial_denoise(y.numpy(), train, shape, patch, degree, sigma_value), 1e-7)


@given(image_training_sets(max_n=4), sigmas, seeds)
def test_degree_one_patch_polynomial_is_the_optimal_kernel(case, sigma_value, seed):
    from numerics.local_polynomial import PatchPolynomialDenoiser

    shape, train = case
    if min(shape[1:]) < 3:
        return
    mean = train.mean(axis=0)
    cov = (train - mean).T @ (train - mean) / len(train)
    y = noisy(shape, seed)
    kernel = KernelDenoiser(mean, cov, shape, 3, "circular")(y, sigma_value)
    assert close(PatchPolynomialDenoiser(train, shape, 3, 1)(y, sigma_value), kernel, 1e-7)


def test_patch_polynomial_refuses_degree_zero_and_even_patches():
    from numerics.local_polynomial import PatchPolynomialDenoiser

    with pytest.raises(ValueError, match="degree"):
        PatchPolynomialDenoiser(np.zeros((2, 16)), (1, 4, 4), 3, 0)
    with pytest.raises(ValueError, match="patch"):
        PatchPolynomialDenoiser(np.zeros((2, 16)), (1, 4, 4), 2, 1)

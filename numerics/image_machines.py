"""Patch-memorizing machines on images, from Bayes' rule: the local (LS) and equivariant local (ELS) score machines.

For output pixel ``i`` with ``p x p`` neighbourhood ``N(i)`` (boundary rule ``zeros``, ``circular`` or
``reflect``, applied alike to the training images and to the noisy input), the machine returns the
posterior mean of the centre pixel under a uniform prior over a bank of training patches ``P_j``:

    D(y)_i = sum_j softmax_j(-|y_{N(i)} - P_j|^2 / (2 sigma^2)) centre(P_j)

LS: the bank is the training patches at the same position ``i`` (n patches). ELS: the training
patches at every position (n h w patches), which makes the machine translation-equivariant; its
bank is stored once per distinct patch with its multiplicity (log-count added to the logits: exact,
and much smaller on images with a plain background).
Padded entries are treated like pixels (a simplification at the boundary). Self-contained here;
to be folded with the local-denoisers work (issue 11).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from numerics.denoisers import level
from numerics.unet import PADDINGS
from numerics.validation import choice, finite_array, positive, positive_int

TORCH_PAD = {"zeros": "constant", "circular": "circular", "reflect": "reflect"}
ENTRIES = 2**20  # distance-matrix entries per chunk: 8 MiB in float64 (cache-sized; fewer page faults)


def patches(images: torch.Tensor, patch: int, padding: str) -> torch.Tensor:
    """``(n, h, w)`` images to their ``(h w, n, p^2)`` neighbourhoods, position-major."""
    r = patch // 2
    padded = F.pad(images[:, None], (r, r, r, r), mode=TORCH_PAD[padding])
    return F.unfold(padded, patch).permute(2, 0, 1)          # (L, n, p^2)


class PatchPosteriorDenoiser:
    """The LS (``equivariant=False``) or ELS (``equivariant=True``) machine of ``train`` ``(n, h, w)``."""

    def __init__(self, train, patch: int = 3, padding: str = "zeros", *, equivariant: bool = True,
                 dtype=torch.float64):
        train = finite_array(train, "train", ndim=3)
        patch = positive_int(patch, "patch")
        if patch % 2 == 0 or patch > min(train.shape[1:]):
            raise ValueError(f"patch must be odd and <= the image side {min(train.shape[1:])}, got {patch}")
        self.padding, self.patch, self.shape = choice(padding, "padding", PADDINGS), patch, train.shape[1:]
        bank = patches(torch.as_tensor(train, dtype=dtype), patch, self.padding)   # (L, n, p^2)
        log_count = torch.zeros(bank.shape[:2], dtype=dtype)
        if equivariant:                                                          # every position, shared
            bank, count = torch.unique(bank.reshape(-1, patch * patch), dim=0, return_counts=True)
            bank, log_count = bank[None], torch.log(count.to(dtype))[None]
        self.bank, self.log_count, self.centre = bank, log_count, bank[:, :, (patch * patch) // 2]

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        h, w = self.shape
        if x.ndim != 2 or x.shape[1] != h * w:
            raise ValueError(f"x must have shape (batch, {h * w}), got {tuple(x.shape)}")
        sigma = positive(sigma, "sigma")
        query = patches(x.to(self.bank.dtype).view(-1, h, w), self.patch, self.padding)  # (L, b, p^2)
        out = torch.empty(query.shape[:2], dtype=self.bank.dtype)
        step = max(1, ENTRIES // (query.shape[1] * self.bank.shape[1]))
        for start in range(0, len(query), step):
            rows = slice(start, start + step)
            bank = self.bank if len(self.bank) == 1 else self.bank[rows]
            centre, log_count = (self.centre, self.log_count) if len(self.bank) == 1 else \
                (self.centre[rows], self.log_count[rows])
            d2 = torch.cdist(query[rows], bank.expand(len(query[rows]), -1, -1)) ** 2   # (c, b, m)
            weights = torch.softmax(log_count[:, None] - d2 / (2 * sigma**2), dim=-1)  # posterior over the bank
            out[rows] = (weights @ centre.expand(len(weights), -1)[..., None])[..., 0]
        return out.T.to(x.dtype)                                                 # (b, L) = (b, h w)


class ScheduledPatchDenoiser:
    """A patch machine whose patch size depends on the noise level: ``machines[schedule[sigma]](x, sigma)``."""

    def __init__(self, machines: dict, schedule: dict):
        missing = set(schedule.values()) - set(machines)
        if missing:
            raise ValueError(f"schedule uses patch sizes {sorted(missing)} that have no machine")
        self.machines, self.schedule = machines, {float(k): v for k, v in schedule.items()}

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return self.machines[level(self.schedule, sigma, "patch schedule was calibrated at")](x, sigma)

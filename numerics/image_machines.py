"""Patch-memorizing machines on images, from Bayes' rule: the local (LS) and equivariant local (ELS) score machines.

For output pixel ``i`` with ``p x p`` neighbourhood ``N(i)`` (boundary rule ``zeros``, ``circular`` or
``reflect``, applied alike to the training images and to the noisy input), the machine returns the
posterior mean of the centre pixel under a uniform prior over a bank of training patches ``P_j``:

    D(y)_i = sum_j softmax_j(-|y_{N(i)} - P_j|^2 / (2 sigma^2)) centre(P_j)

LS: the bank is the training patches at the same position ``i`` (n patches). ELS: the training
patches at every position (n h w patches), which makes the machine translation-equivariant; its
bank is stored once per distinct patch with its multiplicity (log-count added to the logits: exact,
and much smaller on images with a plain background).
With ``zeros`` the padded entries are known (not noisy): an ELS query patch is compared only with
training patches of the same padding pattern, i.e. at the same distance to the border (exact: any
other patch has likelihood 0). Self-contained here;
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


def position_groups(shape, patch: int, padding: str, equivariant: bool) -> list[torch.Tensor]:
    """Positions whose patches share one bank: each position alone (LS); all positions (ELS), except that
    with ``zeros`` the padded entries are known exactly, so only positions with the same padding
    pattern (distance to the border) share a bank."""
    L = shape[0] * shape[1]
    if not equivariant:
        return [torch.tensor([i]) for i in range(L)]
    if padding != "zeros":
        return [torch.arange(L)]
    mask = patches(torch.ones(1, *shape), patch, "zeros")[:, 0]         # (L, p^2): 1 pixel, 0 padding
    _, ids = torch.unique(mask, dim=0, return_inverse=True)
    return [torch.nonzero(ids == g)[:, 0] for g in range(int(ids.max()) + 1)]


class PatchPosteriorDenoiser:
    """The LS (``equivariant=False``) or ELS (``equivariant=True``) machine of ``train`` ``(n, h, w)``."""

    def __init__(self, train, patch: int = 3, padding: str = "zeros", *, equivariant: bool = True,
                 dtype=torch.float64):
        train = finite_array(train, "train", ndim=3)
        patch = positive_int(patch, "patch")
        if patch % 2 == 0 or patch > min(train.shape[1:]):
            raise ValueError(f"patch must be odd and <= the image side {min(train.shape[1:])}, got {patch}")
        self.padding, self.patch, self.shape = choice(padding, "padding", PADDINGS), patch, train.shape[1:]
        self.dtype = dtype
        every = patches(torch.as_tensor(train, dtype=dtype), patch, self.padding)   # (L, n, p^2)
        self.groups = []
        for positions in position_groups(self.shape, patch, self.padding, equivariant):
            bank, count = torch.unique(every[positions].reshape(-1, patch * patch), dim=0, return_counts=True)
            self.groups.append((positions, bank, torch.log(count.to(dtype)), bank[:, (patch * patch) // 2]))

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        h, w = self.shape
        if x.ndim != 2 or x.shape[1] != h * w:
            raise ValueError(f"x must have shape (batch, {h * w}), got {tuple(x.shape)}")
        sigma = positive(sigma, "sigma")
        query = patches(x.to(self.dtype).view(-1, h, w), self.patch, self.padding)  # (L, b, p^2)
        out = torch.empty(query.shape[:2], dtype=self.dtype)
        for positions, bank, log_count, centre in self.groups:
            q = query[positions].reshape(-1, query.shape[2])                  # (k b, p^2)
            value = torch.empty(len(q), dtype=self.dtype)
            step = max(1, ENTRIES // len(bank))
            for start in range(0, len(q), step):
                d2 = torch.cdist(q[start:start + step], bank) ** 2                  # (rows, m)
                weights = torch.softmax(log_count - d2 / (2 * sigma**2), dim=1)    # posterior over the bank
                value[start:start + step] = weights @ centre
            out[positions] = value.view(len(positions), -1)
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

"""Monte Carlo sharded over processes with ``torch.distributed``: each rank samples its own index range.

Under ``torchrun`` (``WORLD_SIZE`` > 1) rank ``k`` of ``K`` draws samples ``[k n / K, (k + 1) n / K)`` of the
run; the counter-based noise (``numerics.noise.PhiloxNoise``) gives every sample the numbers it would get
in a single process, so the union of the shards is the single-process sample set. The statistics are
merged exactly from sufficient statistics (``verify.stats.SampleMoments``: counts, sums, sums of outer
products, power sums) with one ``all_reduce`` (and a maximum for the null-space deviation); rank 0 alone
prints and writes files. On one machine, CPU (gloo)::

    torchrun --nproc-per-node 2 -m verify.linear --dim 256 --samples 200000

On a cluster, the same command on every node (NCCL on GPUs; ``--device cuda`` is each rank's ``cuda:LOCAL_RANK``)::

    torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m verify.linear --dim 3072 --samples 100000000 --device cuda
"""
from __future__ import annotations

import contextlib
import os
import sys

import torch

from numerics.sampling import DTYPES, default_device, sample
from verify.stats import SampleMoments


def world_size() -> int:
    """Processes in the run: ``WORLD_SIZE`` as set by ``torchrun``, 1 otherwise."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def active() -> bool:
    """True inside an initialized process group of more than one process."""
    return torch.distributed.is_available() and torch.distributed.is_initialized() and world_size() > 1


def shard(n: int, rank: int, size: int) -> tuple[int, int]:
    """``(first, count)`` of rank ``rank``'s contiguous share of ``n`` samples (shares differ by at most 1)."""
    first = rank * n // size
    return first, (rank + 1) * n // size - first


@contextlib.contextmanager
def session(args):
    """Join the process group when launched by ``torchrun`` (gloo on CPU, NCCL on CUDA); ranks > 0 stay quiet.

    Outside ``torchrun`` this does nothing. ``args`` are the CLI's parsed arguments (``device``, ``json``, ``plot``).
    """
    if world_size() == 1:
        yield
        return
    backend = "nccl" if (args.device or default_device()).startswith("cuda") else "gloo"
    if backend == "nccl":  # "cuda" then means this rank's GPU, cuda:LOCAL_RANK, everywhere in the run
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank()
    try:
        if rank == 0:
            yield
        else:
            args.json = args.plot = None
            with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
                yield
    finally:
        sys.stdout.flush()
        torch.distributed.destroy_process_group()


def merged_moments(denoiser, cfg, grid, start, mean, cov) -> SampleMoments:
    """This rank's share of the ``cfg.samples`` samples, reduced to the ``SampleMoments`` of all of them."""
    rank, size = torch.distributed.get_rank(), torch.distributed.get_world_size()
    first, count = shard(cfg.samples, rank, size)
    x = sample(denoiser, cfg.sampler, grid, start.mean, start.covariance(), count, seed=cfg.seed, first=first,
               device=cfg.device, dtype=DTYPES[cfg.dtype]).numpy()
    local = SampleMoments.of(x, mean, cov)
    sums = torch.as_tensor(local.sums())
    deviation = torch.tensor([local.null_deviation], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        sums, deviation = sums.cuda(), deviation.cuda()
    torch.distributed.all_reduce(sums)
    torch.distributed.all_reduce(deviation, op=torch.distributed.ReduceOp.MAX)
    d, r = len(mean), local.whitened.r
    return SampleMoments.from_sums(sums.cpu().numpy(), r, d, float(deviation.cpu()[0]))


"""The argument layer every ``verify`` CLI shares: flags are checked before any work starts.

Each check raises ``ValueError`` naming the flag and what is allowed; ``report.cli_main`` turns it
into exit code 2. Covered here: output paths (``--json``, ``--plot``), the device, flags a mode does
not use, and a memory estimate that refuses runs that cannot fit.
"""
from __future__ import annotations

import argparse
import os


from numerics import validation

IMAGE_EXTENSIONS = ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp")
MEMORY_FRACTION = 0.8  # of the physical memory a run may plan to use


def output_path(path: str | None, flag: str, extensions=None) -> str | None:
    """``path`` if a file can be written there (its folder exists and is writable, it is no folder)."""
    if path is None:
        return None
    if not path.strip():
        raise ValueError(f"{flag} must name a file, got an empty path")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path!r} is a directory; name a file inside it")
    if not os.path.isdir(folder):
        raise ValueError(f"{flag} {path!r}: folder {folder!r} does not exist")
    extension = os.path.splitext(path)[1].lstrip(".").lower()
    if extensions is not None and extension not in extensions:
        raise ValueError(f"{flag} {path!r}: unknown image type {extension!r}; allowed: {', '.join(extensions)}")
    existed = os.path.exists(path)
    try:  # the only reliable test: open it for appending (creates nothing that was not there after)
        with open(path, "a"):
            pass
    except OSError as error:
        raise ValueError(f"{flag} {path!r} cannot be written: {error.strerror}") from None
    if not existed:
        os.remove(path)
    return path


def check_outputs(args) -> None:
    """``--json`` and ``--plot`` (where the CLI has them) are writable, the plot a known image type."""
    output_path(getattr(args, "json", None), "--json")
    output_path(getattr(args, "plot", None), "--plot", IMAGE_EXTENSIONS)


def unused_flags(args, parser: argparse.ArgumentParser, allowed, why: str) -> None:
    """Refuse every flag given on the command line that is not in ``allowed`` (dest names)."""
    given = [action for action in parser._actions
             if action.dest not in allowed and action.dest != "help" and action.option_strings
             and getattr(args, action.dest, None) not in (None, action.default)]
    if given:
        names = ", ".join(action.option_strings[-1] for action in given)
        raise ValueError(f"{names} not used {why}; leave {'it' if len(given) == 1 else 'them'} out")


def physical_memory() -> int:
    """Bytes of physical memory (Linux ``sysconf``; 16 GiB assumed where it is not available)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def check_memory(estimate_bytes: float, flags: str) -> None:
    """Refuse a run whose estimated peak memory exceeds ``MEMORY_FRACTION`` of physical memory."""
    limit = MEMORY_FRACTION * physical_memory()
    if estimate_bytes > limit:
        raise ValueError(f"this run needs about {estimate_bytes / 2**30:.1f} GiB, more than the "
                         f"{limit / 2**30:.1f} GiB available; lower {flags}")


def affine_memory(cfg) -> float:
    """Peak bytes of an affine verification: ``d x d`` float64 matrices per level and the sample block."""
    d, levels = float(cfg.dim), float(cfg.steps) + 1
    laws = 8.0 * d * d * (2 * levels + 8)               # cached gain maps per level, probe and law matrices
    samples = 8.0 * cfg.samples * d * 3                 # samples, whitened copy, a batch
    return laws + samples


def device_arg(text: str | None) -> str:
    """The ``--device`` flag: ``cpu``, ``cuda`` or ``cuda:N``; default ``cuda`` when visible, else ``cpu``."""
    return validation.device(text, "--device")


def seed_arg(text: str) -> int:
    """argparse type for ``--seed``: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or value >= 2**63:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2^63), got {text!r}")
    return value


def integer_arg(low: int, high: int | None = None):
    """argparse type: an integer in ``[low, high]``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {text!r}")
        return value
    return parse

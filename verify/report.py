"""Reporting shared by every ``verify`` CLI: table, JSON, spectrum plot, argument types, exit code."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from numerics import validation
from verify import arguments
from verify.check import Check


def table(checks: list[Check]) -> str:
    """A fixed-width table: check, predicted, measured, statistic, p-value, the threshold it had to meet, verdict."""
    header = ("check", "predicted", "measured", "statistic", "p-value", "threshold", "verdict")
    rows = [header] + [(c.name, c.predicted, c.measured, f"{c.statistic:.4g}",
                        "exact" if c.p_value is None else f"{c.p_value:.3g}", c.threshold,
                        "PASS" if c.passed else "FAIL") for c in checks]
    widths = [max(len(str(r[k])) for r in rows) for k in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _plain(value):
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Check):
        return _plain(value.as_dict())
    return value


def write_json(path: str, report: dict) -> None:
    """The full report as JSON (NaN/inf written as null)."""
    with open(path, "w") as handle:
        json.dump(_plain(report), handle, indent=2)


def plot_spectra(path: str, curves: dict, title: str) -> None:
    """Covariance eigenvalues, descending, on a log axis over their nonzero range; zeros marked below it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    arrays = {label: np.sort(np.asarray(values, dtype=float))[::-1] for label, values in curves.items()}
    positive = np.concatenate([v[v > 1e-14 * max(v.max(), 1e-300)] for v in arrays.values()])
    low, high = (positive.min(), positive.max()) if positive.size else (1e-3, 1.0)
    floor = low / 10 ** 0.5  # zeros are drawn on a line half a decade below the smallest nonzero value
    for (label, values), style in zip(arrays.items(), ("-", "o", "--", ":")):
        index = np.arange(1, len(values) + 1)
        nonzero = values > 1e-14 * max(values.max(), 1e-300)
        line, = ax.semilogy(index[nonzero], values[nonzero], style, label=label, markersize=3, fillstyle="none")
        if np.any(~nonzero):
            ax.plot(index[~nonzero], np.full((~nonzero).sum(), floor), "v", color=line.get_color(), markersize=3,
                    label=f"{label}: zero ({(~nonzero).sum()})")
    ax.set_ylim(floor / 2, high * 2)
    ax.set_xlabel("eigen-direction (descending variance)")
    ax.set_ylabel("variance (log scale; zeros marked at the bottom)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def positive_int_arg(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        return validation.positive_int(int(text), "value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None


def alpha_arg(text: str) -> float:
    """argparse type: a probability in (0, 1)."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def unit_interval_arg(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text!r}")
    return value


def verdict(checks: list[Check]) -> bool:
    return all(c.passed for c in checks)


def cli_main(args, config_class, run, summary, *, plot=None, json_exclude=(), defaults=None, header=None,
             memory=None, precheck=None) -> int:
    """The shared body of every ``verify`` CLI: check every flag, print the header, run, print, write, exit code.

    Bad input is refused before any work (exit 2): output paths, device, the configuration itself
    (``config_class`` and ``run`` raise ``ValueError``), ``precheck(args)`` (flags a mode does not use),
    and ``memory(cfg) -> (bytes, flags to lower)``, an estimate of the peak memory.
    Then ``header(cfg)`` is printed first, the run's ``summary`` after it, and the closing
    ``PASS|FAIL in X s`` line last. Exit 0 when every check passes, 1 when one fails.
    """
    started = time.perf_counter()
    options = {k: v for k, v in vars(args).items() if k not in ("json", "plot")}
    for key, value in (defaults or {}).items():
        options[key] = value if options[key] is None else options[key]
    try:
        arguments.check_outputs(args)
        if precheck is not None:
            precheck(args)
        if "device" in options:
            options["device"] = arguments.device_arg(options["device"])
        cfg = config_class(**options)
        if memory is not None:
            arguments.check_memory(*memory(cfg))
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if header is not None:
        print(header(cfg), flush=True)
    try:
        result = run(cfg)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(result))
    if args.json:
        write_json(args.json, {k: v for k, v in result.items() if k not in json_exclude})
    if getattr(args, "plot", None) and plot is not None:
        plot(args.plot, result, args)
        print(f"figure written to {args.plot}")
    print(f"{'PASS' if result['passed'] else 'FAIL'} in {time.perf_counter() - started:.1f} s")
    return 0 if result["passed"] else 1

"""Reporting shared by every ``verify`` CLI: table, JSON, spectrum plot, argument types, exit code."""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from numerics.sampling import default_device
from numerics import validation
from verify.check import Check


def table(checks: list[Check]) -> str:
    """A fixed-width table: check, predicted, measured, statistic, p-value, verdict."""
    header = ("check", "predicted", "measured", "statistic", "p-value", "verdict")
    rows = [header] + [(c.name, c.predicted, c.measured, f"{c.statistic:.4g}",
                        "exact" if c.p_value is None else f"{c.p_value:.3g}",
                        "PASS" if c.passed else "FAIL") for c in checks]
    widths = [max(len(str(r[k])) for r in rows) for k in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)) for r in rows]
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
    """Covariance eigenvalues, descending, on a log scale: one line per named spectrum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (label, values), style in zip(curves.items(), ("-", "o", "--", ":")):
        values = np.sort(np.asarray(values))[::-1]
        ax.semilogy(np.arange(1, len(values) + 1), np.clip(values, 1e-300, None), style, label=label,
                    markersize=3, fillstyle="none")
    ax.set_xlabel("eigen-direction (descending)")
    ax.set_ylabel("variance")
    ax.set_title(title)
    ax.legend()
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


def verdict(checks: list[Check]) -> bool:
    return all(c.passed for c in checks)


def cli_main(args, config_class, run, summary, *, plot=None, json_exclude=(), defaults=None) -> int:
    """The shared body of every ``verify`` CLI: build the config, run, print, write JSON/plot, exit code.

    Exit 0 when every check passes, 1 when one fails, 2 on bad input (``ValueError``).
    """
    options = {k: v for k, v in vars(args).items() if k not in ("json", "plot")}
    for key, value in (defaults or {}).items():
        options[key] = value if options[key] is None else options[key]
    options["device"] = args.device or default_device()
    try:
        result = run(config_class(**options))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(result))
    if args.json:
        write_json(args.json, {k: v for k, v in result.items() if k not in json_exclude})
    if args.plot and plot is not None:
        plot(args.plot, result, args)
    return 0 if result["passed"] else 1

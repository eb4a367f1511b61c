"""``python -m verify.images``: networks trained on real images, each predicted sample by sample by a machine.

Trains a linear network (one linear layer per noise level of the grid) and UNET/MLP variants
(noise-conditioned, EDM preconditioning) on Fashion-MNIST or scikit-learn's 8x8 digits, runs every
network and every theoretical machine (Wiener of the training set, rank-k, memorizing, LS/ELS
patch machines) from the same initial noise with the same sampler and grid, and reports the
per-sample r^2 = 1 - |x_net - x_machine|^2 / |x_net - mean_net|^2 and the creativity table.

Checks (each can fail): the trained linear network's samples are the Wiener machine's (median
r^2 >= 0.99, the exact optimum of its class); the memorizing machine copies (copy rate >= 0.95);
the realism classifier is informative (test accuracy >= 0.7). ``--negative-control swap-machines``
claims the linear network is the memorizing machine and the Wiener machine copies: it must FAIL.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from numerics.datasets import DATASETS
from numerics.image_classifier import train_classifier
from numerics.image_networks import VARIANTS
from numerics.samplers import SAMPLERS
from numerics.schedules import VESchedule
from numerics.validation import choice, positive_int
from theory.finite_step import check_sampler_grid
from verify import images_metrics as metrics
from verify import arguments, report
from verify.check import Check
from verify.images_run import calibrated, data, initial_noise, loss_gap, machines, networks, run_all

R2_BOUND = 0.99        # exact optimum of the class, converged training (issue 13)
COPY_BOUND = 0.95      # the memorizing machine's samples are training images (sigma_min = 0.002 blur only)
ACCURACY_BOUND = 0.7   # a classifier below this says nothing about realism
NEGATIVE_CONTROLS = ("swap-machines",)
CALIBRATED = "els-cal"  # ELS with a patch size per noise level calibrated to each UNET on held-out noise
QUICK = {"dataset": "digits", "size": None, "n_train": 1000, "variants": ("unet", "unet-noskip"), "width": 8,
         "depth": 2, "train_steps": 300, "linear_steps": 1500, "steps": 10, "samples": 64, "rank": 8,
         "patches": (3,), "patch_images": 100, "classifier_steps": 400}
FULL = {"dataset": "fashion", "size": 14, "n_train": 2000, "variants": tuple(VARIANTS), "width": 16, "depth": 2,
        "train_steps": 2000, "linear_steps": 2000, "steps": 12, "samples": 64, "rank": 10, "patches": (3,),
        "patch_images": 100, "classifier_steps": 1500}


@dataclass
class Config:
    dataset: str = "fashion"
    size: int | None = 14
    n_train: int = 2000
    variants: tuple = field(default_factory=lambda: FULL["variants"])
    width: int = 16
    depth: int = 2
    train_steps: int = 2000
    linear_steps: int = 2000
    steps: int = 12
    sampler: str = "heun"
    samples: int = 64
    rank: int = 10
    patches: tuple = (3,)
    patch_images: int = 100
    classifier_steps: int = 1500
    seed: int = 0
    device: str = "cpu"
    out: str | None = None
    negative_control: str | None = None
    quiet: bool = False

    def __post_init__(self):
        choice(self.dataset, "dataset", DATASETS)
        for name in self.variants:
            choice(name, "variant", VARIANTS)
        choice(self.sampler, "sampler", SAMPLERS)
        if self.negative_control is not None:
            choice(self.negative_control, "negative_control", NEGATIVE_CONTROLS)
        for name in ("n_train", "width", "depth", "train_steps", "linear_steps", "steps", "samples", "rank",
                     "classifier_steps", "patch_images"):
            positive_int(getattr(self, name), name)
        if self.samples < 2:
            raise ValueError(f"samples must be >= 2 (r^2 needs a spread), got {self.samples}")
        for p in self.patches:
            if positive_int(p, "patches") % 2 == 0:
                raise ValueError(f"patches must be odd, got {p}")


def checks(cfg, rows: dict, r2: dict, accuracy: float) -> list[Check]:
    """The three rows that can fail (swapped machines under the negative control)."""
    swap = cfg.negative_control == "swap-machines"
    target = "memorizing" if swap else "wiener"
    median = float(np.median(r2["linear-net"][target]))
    copier = "wiener" if swap else "memorizing"
    rate = rows[copier]["copy_rate"]
    return [Check(f"linear network = {target} machine (median r^2)", median, None, median >= R2_BOUND,
                  f">= {R2_BOUND}", f"{median:.4f}", f">= {R2_BOUND}"),
            Check(f"{copier} machine copies training images", rate, None, rate >= COPY_BOUND,
                  f"copy rate >= {COPY_BOUND}", f"{rate:.3f}", f">= {COPY_BOUND}"),
            Check("realism classifier test accuracy", accuracy, None, accuracy >= ACCURACY_BOUND,
                  f">= {ACCURACY_BOUND}", f"{accuracy:.3f}", f">= {ACCURACY_BOUND}")]


def best(name: str, r2: dict) -> dict:
    """The machine with the highest median r^2 for network ``name``, and the key of its samples."""
    medians = {m: float(np.median(v)) for m, v in r2.items()}
    machine = max(medians, key=medians.get)
    return {"best_machine": machine, "best_r2": medians[machine],
            "best_samples": f"{CALIBRATED}:{name}" if machine == CALIBRATED else machine}


def run(cfg: Config) -> dict:
    """Everything ``python -m verify.images`` does, as a report dictionary."""
    started = time.perf_counter()
    d = data(cfg)
    train, test, side = d["train"], d["test"], d["side"]
    if cfg.rank > train.shape[1] or max(cfg.patches) > side:
        raise ValueError(f"rank must be <= d = {train.shape[1]} and patches <= the image side {side}")
    grid = VESchedule().grid(cfg.steps)
    check_sampler_grid(cfg.sampler, grid)
    classifier = train_classifier(train, d["train_labels"], steps=cfg.classifier_steps, seed=cfg.seed)
    accuracy = float((classifier(torch.as_tensor(test, dtype=torch.float32)).argmax(dim=1).numpy()
                      == d["test_labels"]).mean())
    machine = machines(cfg, train, side)
    nets, losses = networks(cfg, train, side, grid)
    x_start = initial_noise(cfg, grid, train.shape[1])
    machine_x, nets_x = run_all(machine, cfg, grid, x_start), run_all(nets, cfg, grid, x_start)
    r2 = {n: {m: metrics.per_sample_r2(nets_x[n], machine_x[m]) for m in machine_x} for n in nets_x}
    calibrated_x, schedules = calibrated(cfg, nets, train, test, side, grid, x_start)
    for key, x in calibrated_x.items():
        r2[key.split(":", 1)[1]][CALIBRATED] = metrics.per_sample_r2(nets_x[key.split(":", 1)[1]], x)
    patch = 3 if side < 12 else 5
    samples = {**nets_x, **machine_x, **calibrated_x}
    rows = {name: metrics.creativity_row(x, train, test, classifier, side, patch) for name, x in samples.items()}
    for name in nets_x:
        rows[name].update(best(name, r2[name]))
    reference = metrics.reference_row(train, test, classifier, side, patch, cfg.samples)
    verdicts = checks(cfg, rows, r2, accuracy)
    gaps = loss_gap(nets["linear-net"], machine["wiener"], train)
    return {"passed": report.verdict(verdicts), "checks": verdicts, "config": asdict(cfg), "source": d["source"],
            "side": side, "median_r2": {n: {m: float(np.median(v)) for m, v in r2[n].items()} for n in r2},
            "creativity": rows, "reference": reference, "classifier_accuracy": accuracy,
            "linear_loss_gap_max": float(max(gaps.values())), "linear_loss_gap": gaps,
            "final_losses": {n: float(np.nanmean(v[-50:])) for n, v in losses.items()},
            "patch_schedules": schedules, "samples": samples, "train": train[:16], "seconds": time.perf_counter() - started}


COLUMNS = (("copy_rate", "copy", ".3f"), ("nn_ratio", "NN ratio", ".3f"), ("mosaic_rate", "mosaic", ".3f"),
           ("cov_distance", "cov dist", ".3f"), ("var_outside_topk", "var out top-k", ".3f"),
           ("confidence", "confidence", ".3f"), ("frechet", "Frechet", ".3g"))


def _lines(rows) -> list[str]:
    widths = [max(len(str(r[k])) for r in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def creativity_table(result: dict) -> list[str]:
    """One row per network and machine, then the test-set reference."""
    head = ("denoiser",) + tuple(c[1] for c in COLUMNS) + ("best machine", "median r^2")
    rows = [head]
    for name, row in list(result["creativity"].items()) + [("test images (reference)", result["reference"])]:
        rows.append((name,) + tuple(format(row[k], f) for k, _, f in COLUMNS)
                    + (row.get("best_machine", "-"), f"{row['best_r2']:.3f}" if "best_r2" in row else "-"))
    return _lines(rows)


def r2_table(result: dict) -> list[str]:
    """Median per-sample r^2 per (network, machine)."""
    names = list(dict.fromkeys(m for v in result["median_r2"].values() for m in v))
    rows = [("network",) + tuple(names)]
    rows += [(n,) + tuple(f"{v[m]:.3f}" if m in v else "-" for m in names) for n, v in result["median_r2"].items()]
    return _lines(rows)


def summary(result: dict) -> str:
    cfg = result["config"]
    lines = [f"verify.images: dataset={cfg['dataset']} ({result['source']}) side={result['side']} "
             f"n_train={cfg['n_train']} sampler={cfg['sampler']} steps={cfg['steps']} samples={cfg['samples']} "
             f"train_steps={cfg['train_steps']} width={cfg['width']} depth={cfg['depth']} seed={cfg['seed']}",
             "networks: linear-net = one linear layer per grid level; UNET/MLP = one noise-conditioned network "
             "(EDM preconditioning)", "", report.table(result["checks"]), "",
             "trained linear network: relative loss gap to the closed-form optimum per level (sigma: gap): "
             + ", ".join(f"{s:.3g}: {g:.2g}" for s, g in result["linear_loss_gap"].items()),
             f"classifier test accuracy {result['classifier_accuracy']:.3f}; {CALIBRATED} patch size per level "
             "(sigma high to low): " + "; ".join(f"{n}: {','.join(str(p) for p in s.values())}"
                                                 for n, s in result["patch_schedules"].items()),
             "", "median per-sample r^2 (network vs machine, same initial noise):", *r2_table(result), "",
             f"creativity (copy: NN distance < {metrics.COPY_RATIO:.2g} x median test-to-train; mosaic: patch RMS "
             f"< {metrics.MOSAIC_RMS:g}; var outside top-{metrics.PCA_RANK} PCA; Frechet in the classifier's features "
             "vs test):", *creativity_table(result),
             f"{'PASS' if result['passed'] else 'FAIL'} in {result['seconds']:.1f} s"]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify.images", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="CI size: 8x8 digits, two tiny UNETs, about a minute")
    p.add_argument("--dataset", choices=DATASETS, default=None)
    p.add_argument("--size", type=report.positive_int_arg, default=None, help="downsample to size x size")
    p.add_argument("--variants", default=None, help=f"comma-separated, from: {', '.join(VARIANTS)}")
    for flag in ("n-train", "width", "depth", "train-steps", "linear-steps", "steps", "samples", "rank",
                 "classifier-steps", "patch-images"):
        p.add_argument(f"--{flag}", type=report.positive_int_arg, default=None)
    p.add_argument("--patches", default=None, help="comma-separated odd patch sizes of the LS/ELS machines")
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default="heun")
    p.add_argument("--seed", type=arguments.seed_arg, default=0, help="random seed, an integer >= 0")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when visible)")
    p.add_argument("--out", default=None, help="directory for images.json, images.png and checkpoints/ (resumable)")
    p.add_argument("--negative-control", choices=NEGATIVE_CONTROLS, default=None)
    p.add_argument("--json", default=None, help="write the full report as JSON")
    p.add_argument("--plot", default=None, help="write the sample grid (png, pdf, svg, ...)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def config_from(args) -> Config:
    """Flags over the quick or full defaults."""
    options = dict(QUICK if args.quick else FULL)
    for key in ("dataset", "size", "n_train", "width", "depth", "train_steps", "linear_steps", "steps", "samples",
                "rank", "classifier_steps", "patch_images"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.variants is not None:
        options["variants"] = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    if args.patches is not None:
        options["patches"] = tuple(int(v) for v in args.patches.split(","))
    return Config(**options, sampler=args.sampler, seed=args.seed, device=arguments.device_arg(args.device),
                  out=args.out, negative_control=args.negative_control, quiet=args.quiet)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        arguments.check_outputs(args)
        cfg = config_from(args)
        print(f"verify.images: training {len(cfg.variants) + 1} networks, then sampling", file=sys.stderr)
        result = run(cfg)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(result))
    from verify.images_plot import plot

    paths = [(args.json, args.plot)] + ([(Path(cfg.out) / "images.json", Path(cfg.out) / "images.png")] if cfg.out else [])
    for json_path, plot_path in paths:
        if json_path:
            report.write_json(str(json_path), {k: v for k, v in result.items() if k not in ("samples", "train")})
        if plot_path:
            plot(str(plot_path), result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

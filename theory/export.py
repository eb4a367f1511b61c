"""Export every result to LaTeX: one fragment per result and a standalone document that inputs them all.

``python -m theory.export --out DIR [--pdf]``; adding a result is one entry in ``RESULT_CLASSES``.

>>> [r.name for r in results()]  # doctest: +NORMALIZE_WHITESPACE
['Optimal affine denoiser', 'Continuous-time law of the linear denoiser',
 'Exact law of finite-step samplers with an affine denoiser',
 'Exact law of DPM-Solver++(2M) with an affine denoiser', 'Linear denoiser trained on a finite set',
 'Rank-restricted affine denoiser', 'Generated law of the rank-restricted denoiser',
 'Fixed linear encoder, unrestricted decoder', 'Memorizing (unrestricted) denoiser of a training set',
 'Optimal polynomial denoiser of degree 3', 'Moment equivalence of polynomial denoisers',
 'Small-noise expansion of the degree-2 polynomial denoiser', 'Exact 1-D law of the polynomial-denoiser flow',
 'Finite-step sampler output with a polynomial denoiser', 'Optimal patch-linear denoiser',
 'Circular translation-equivariant linear denoiser', 'Patch-memorizing machines (LS and ELS)',
 'Equivariant patch polynomial denoiser',
 'Multivariate moment equivalence of polynomial denoisers',
 'Exact generated density of the polynomial-denoiser flow in d dimensions',
 'Finite-step output moments of a polynomial denoiser in d dimensions',
 'Finite-sigma blow-up of the polynomial flow (Bernoulli criterion)',
 'Absolute stability of the explicit probability-flow steps']
>>> slug("Continuous-time law of the linear denoiser")
'continuous-time-law-of-the-linear-denoiser'
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from theory.bottleneck import RankLaw, RankRestrictedDenoiser
from theory.encoder_decoder import FixedEncoderLaw
from theory.finite_step import FiniteStepLaw
from theory.memorization import EmpiricalDenoiser
from theory.multistep import MultistepLaw
from theory.polynomial import MomentEquivalence, OptimalPolynomialDenoiser, SmallNoiseExpansion
from theory.polynomial_law import PolynomialFlowLaw
from theory.polynomial_flow_nd import MultivariateFlowDensity
from theory.polynomial_nd import MultivariateMomentEquivalence
from theory.polynomial_steps import FiniteStepPolynomialLaw
from theory.linear import ContinuousFlowLaw, OptimalAffineDenoiser, TrainingSetLaw
from theory.local import OptimalPatchDenoiser
from theory.local_fourier import EquivariantWienerLaw
from theory.local_mosaic import PatchMemorizingMachines
from theory.local_polynomial import PatchPolynomialDenoiser
from theory.polynomial_stability import BernoulliBlowup
from theory.step_stability import StepStability
from theory.polynomial_steps_nd import FiniteStepMomentsND
from theory.result import Result

RESULT_CLASSES = (OptimalAffineDenoiser, ContinuousFlowLaw, FiniteStepLaw, MultistepLaw, TrainingSetLaw,
                  RankRestrictedDenoiser, RankLaw, FixedEncoderLaw, EmpiricalDenoiser,
                  OptimalPolynomialDenoiser, MomentEquivalence, SmallNoiseExpansion, PolynomialFlowLaw,
                  FiniteStepPolynomialLaw, OptimalPatchDenoiser, EquivariantWienerLaw, PatchMemorizingMachines,
                  PatchPolynomialDenoiser, MultivariateMomentEquivalence, MultivariateFlowDensity, FiniteStepMomentsND,
                  BernoulliBlowup, StepStability)
DOCUMENT = "results.tex"
TITLE = "Laws of the samples of diffusion samplers with restricted denoisers"
PREAMBLE = ("\\documentclass{article}", "\\usepackage{amsmath}", "\\usepackage{amssymb}", "\\usepackage{graphicx}",
            "\\usepackage[margin=2cm]{geometry}", "\\allowdisplaybreaks", f"\\title{{{TITLE}}}", "\\date{}")


def results() -> list[Result]:
    """One instance of every result class, in the order of ``RESULT_CLASSES``."""
    return [cls() for cls in RESULT_CLASSES]


def slug(name: str) -> str:
    """A file-name stem for a result name: lower case, runs of other characters as ``-``."""
    stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not stem:
        raise ValueError(f"result name {name!r} has no letter or digit to name a file after")
    return stem


def document(stems: list[str]) -> str:
    """The standalone document that ``\\input``s the fragments named by ``stems``."""
    body = ["\\begin{document}", "\\maketitle"] + [f"\\input{{{stem}.tex}}" for stem in stems]
    return "\n".join([*PREAMBLE, *body, "\\end{document}"]) + "\n"


def output_dir(out) -> Path:
    """``out`` as a directory, created if missing; ``NotADirectoryError`` if it is something else."""
    if not str(out).strip():
        raise NotADirectoryError("--out must name a directory, got an empty path")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {str(out)!r} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create --out {str(out)!r}: {exc.strerror or exc}") from exc
    return out


def export(out, items: list[Result] | None = None) -> list[Path]:
    """Write each result's fragment and ``results.tex`` into ``out``; return the paths written."""
    out = output_dir(out)  # first, so that a bad --out fails before the derivations run
    items = results() if items is None else items
    stems = [slug(r.name) for r in items]
    if len(set(stems)) != len(stems) or DOCUMENT[:-4] in stems:
        raise ValueError(f"result names give clashing file names: {stems}")
    written = []
    for stem, result in zip(stems, items):
        written.append(out / f"{stem}.tex")
        written[-1].write_text(result.latex(), encoding="utf-8")
    written.append(out / DOCUMENT)
    written[-1].write_text(document(stems), encoding="utf-8")
    return written


def compile_pdf(tex_path, timeout: float = 120) -> Path | None:
    """Run pdflatex on ``tex_path`` in its directory; the PDF's path, or None if no engine is installed."""
    engine, tex = shutil.which("pdflatex"), Path(tex_path).resolve()
    if engine is None:
        return None
    if not tex.is_file():
        raise FileNotFoundError(f"no LaTeX file at {tex}")
    command = [engine, "-interaction=nonstopmode", "-halt-on-error", tex.name]
    try:
        run = subprocess.run(command, cwd=tex.parent, capture_output=True, text=True, errors="replace",
                             timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"pdflatex on {tex} ran past {timeout} s") from exc
    if run.returncode != 0:
        tail = _log_tail(tex, run)
        raise RuntimeError(f"pdflatex failed on {tex} (exit {run.returncode}); end of its log:\n{tail}")
    return tex.with_suffix(".pdf")


def _log_tail(tex: Path, run, lines: int = 30) -> str:
    """The last ``lines`` lines of pdflatex's log file, or of its output if it wrote no log."""
    log = tex.with_suffix(".log")
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else run.stdout + run.stderr
    return "\n".join(text.splitlines()[-lines:])


def main(argv=None) -> int:
    """Command line: export to ``--out``; with ``--pdf`` also compile the combined document."""
    parser = argparse.ArgumentParser(prog="python -m theory.export", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="directory for the .tex files (created if missing)")
    parser.add_argument("--pdf", action="store_true", help=f"also compile {DOCUMENT} with pdflatex")
    args = parser.parse_args(argv)
    try:
        written = export(args.out)
    except OSError as exc:  # --out is a file, or cannot be created or written
        parser.error(str(exc))
    for path in written:
        print(f"wrote {path}")
    if not args.pdf:
        return 0
    try:
        pdf = compile_pdf(written[-1])
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if pdf is None:
        print("error: no LaTeX engine installed (.ci/install-latex installs one)", file=sys.stderr)
        return 1
    print(f"wrote {pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

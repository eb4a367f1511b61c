"""LaTeX export: the files written, the combined document compiling, and every formula parsing back to itself."""
import cmath
import random
import re
import shutil
from pathlib import Path

import pytest
import sympy as sp

from theory import typeset
from sympy.core.function import AppliedUndef

from theory import export
from theory.result import Result
from theory.symbols import lam, sigma, sigma_end, sigma_max, v0

NO_ENGINE = "no LaTeX engine installed (.ci/install-latex installs one)"
# The sides that must parse back: the optimal gain and the continuous-time ODE/SDE means and variances.
CORE = {("OptimalAffineDenoiser", "gain", "rhs")} | {
    ("ContinuousFlowLaw", f"{flow} {moment}", side)
    for flow in ("ODE", "SDE") for moment in ("mean", "variance") for side in ("lhs", "rhs")}


@pytest.fixture(scope="module")
def items():
    return export.results()


@pytest.fixture(scope="module")
def written(items, tmp_path_factory):
    return export.export(tmp_path_factory.mktemp("tex"), items)


def test_registry_has_one_instance_of_each_result_class(items):
    assert [type(r) for r in items] == list(export.RESULT_CLASSES)
    assert all(isinstance(r, Result) and r.formulas for r in items)


def test_export_writes_every_fragment_and_the_combined_document(items, written):
    assert [p.name for p in written] == [f"{export.slug(r.name)}.tex" for r in items] + ["results.tex"]
    for result, path in zip(items, written):
        text = path.read_text(encoding="utf-8")
        assert text == result.latex() and result.name in text
        assert all(assumption in text for assumption in result.assumptions)
        assert text.count("\\begin{equation}") == text.count("\\end{equation}") == len(result.formulas)
        assert all("\n".join(typeset.display(f)) in text for f in result.formulas.values())
    document = written[-1].read_text(encoding="utf-8")
    assert document.startswith("\\documentclass{article}\n") and document.rstrip().endswith("\\end{document}")
    assert "\\usepackage{amsmath}" in document and "\\usepackage{amssymb}" in document and "\\maketitle" in document
    inputs = [f"\\input{{{p.name}}}" for p in written[:-1]]
    assert [document.index(line) for line in inputs] == sorted(document.index(line) for line in inputs)


def test_cli_prints_what_it_wrote(items, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export, "results", lambda: items)
    out = tmp_path / "new" / "dir"
    assert export.main(["--out", str(out)]) == 0
    paths = [out / f"{export.slug(r.name)}.tex" for r in items] + [out / "results.tex"]
    assert capsys.readouterr().out.splitlines() == [f"wrote {path}" for path in paths]
    assert all(path.is_file() for path in paths)


@pytest.mark.parametrize("target", ["file.tex", "file.tex/sub"])
def test_cli_rejects_an_out_that_is_not_a_directory(tmp_path, capsys, target):
    (tmp_path / "file.tex").write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        export.main(["--out", str(tmp_path / target)])
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "file.tex").read_text() == "keep me"


def test_clashing_file_names_are_refused(tmp_path):
    twins = [Result("Same name", "", ()), Result("same  NAME!", "", ())]
    with pytest.raises(ValueError, match="clashing"):
        export.export(tmp_path, twins)
    with pytest.raises(ValueError, match="no letter"):
        export.slug("---")


def test_combined_document_compiles(written):
    if shutil.which("pdflatex") is None:
        pytest.skip(NO_ENGINE)
    pdf = export.compile_pdf(written[-1])
    assert pdf == written[-1].with_suffix(".pdf") and pdf.read_bytes()[:5] == b"%PDF-"


def test_compile_pdf_raises_with_the_log_tail_on_failure(tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip(NO_ENGINE)
    broken = tmp_path / "broken.tex"
    broken.write_text("\\documentclass{article}\\begin{document}\\nosuchcommand\\end{document}\n")
    with pytest.raises(RuntimeError, match="Undefined control sequence"):
        export.compile_pdf(broken)


def test_compile_pdf_returns_none_without_an_engine(tmp_path, monkeypatch):
    monkeypatch.setattr(export.shutil, "which", lambda name: None)
    assert export.compile_pdf(tmp_path / "anything.tex") is None


# --- parse-back: sympy's LaTeX parser (lark backend) reads each exported side back to the same expression ----

@pytest.fixture(scope="module")
def parse(tmp_path_factory):
    """``parse_latex(..., backend="lark")``, its grammar extended by ``\\sigma`` if it lacks it (sympy 1.14 does)."""
    pytest.importorskip("lark")
    from sympy.parsing.latex import parse_latex
    from sympy.parsing.latex.lark import latex_parser

    try:
        parse_latex(r"\sigma", backend="lark")
        return lambda tex: parse_latex(tex, backend="lark")
    except Exception:  # lark's UnexpectedCharacters: sigma is a TODO in sympy's greek_symbols.lark
        grammar = Path(latex_parser.__file__).parent / "grammar" / "latex.lark"
        extended = tmp_path_factory.mktemp("grammar") / "latex.lark"
        extended.write_text(grammar.read_text(encoding="utf-8") + '\n%extend GREEK_SYMBOL: "\\\\sigma"\n')
        return latex_parser.LarkLaTeXParser(grammar_file=str(extended)).doparse


def unsupported(expr) -> str | None:
    """Why the parser cannot read ``expr`` back faithfully, or None."""
    if not expr.is_commutative or any(not s.is_commutative for s in expr.free_symbols):
        return "non-commutative symbols (ordered gain products)"
    if expr.has(sp.Sum, sp.Indexed):
        return "Sum/Indexed"
    if expr.atoms(AppliedUndef):
        return "undefined function (parsed as a product)"
    return None


def read_back(parse, expr):
    """``(parsed, mode)``: the export's own LaTeX, else with explicit ``\\cdot``; ``(None, error)`` if neither."""
    error = ""
    for mode, tex in (("verbatim", sp.latex(expr)), ("cdot", sp.latex(expr, mul_symbol="dot"))):
        try:
            parsed = parse(tex)
        except Exception as exc:  # lark's UnexpectedInput and friends
            error = f"parser: {type(exc).__name__}"
            continue
        if isinstance(parsed, sp.Expr):  # an ambiguous reading comes back as a lark Tree
            return parsed, mode
        error = "parser: ambiguous"
    return None, error


def same(parsed, original, points: int = 3) -> bool:
    """Same symbols (matched by LaTeX name) and the same value at random positive points."""
    names = {sp.latex(s).replace("\\", ""): s for s in original.free_symbols}
    if "e" not in names:  # sympy prints exp(x) as e^{x}; the parser reads that e as a symbol
        parsed = parsed.subs(sp.Symbol("e"), sp.E)
    if {str(s) for s in parsed.free_symbols} != set(names):
        return False
    rng = random.Random(0)
    for _ in range(points):
        values = {name: rng.uniform(0.5, 2.0) for name in names}
        want = complex(original.subs({s: values[name] for name, s in names.items()}).evalf())
        got = complex(parsed.subs({s: values[str(s)] for s in parsed.free_symbols}).evalf())
        if not cmath.isclose(got, want, rel_tol=1e-10, abs_tol=1e-12):
            return False
    return True


@pytest.fixture(scope="module")
def parsed_back(items, parse):
    """Each side of each formula: ``parsed`` (key -> mode), ``skipped`` (key -> reason), ``wrong`` keys."""
    parsed, skipped, wrong = {}, {}, []
    for result in items:
        for label, formula in result.formulas.items():
            for side, expr in (("lhs", formula.lhs), ("rhs", formula.rhs)):
                key = (type(result).__name__, label, side)
                reason = unsupported(expr)
                got, mode = (None, reason) if reason else read_back(parse, expr)
                if got is None:
                    skipped[key] = mode
                elif same(got, expr):
                    parsed[key] = mode
                else:
                    wrong.append((key, got))
    return parsed, skipped, wrong


def test_formulas_parse_back_to_themselves(items, parsed_back):
    parsed, skipped, wrong = parsed_back
    assert not wrong, f"parsed back to something else: {wrong}"
    assert CORE <= set(parsed), f"core sides not parsed back: {sorted(CORE - set(parsed))}; skipped: {skipped}"
    every_side = {(type(r).__name__, label, side) for r in items for label in r.formulas for side in ("lhs", "rhs")}
    assert set(parsed) | set(skipped) == every_side


def test_the_exported_gain_parses_back_verbatim(parsed_back):
    assert parsed_back[0][("OptimalAffineDenoiser", "gain", "rhs")] == "verbatim"


def test_skipped_sides_are_the_expected_constructs(items, parsed_back):
    parsed, skipped = parsed_back[0], parsed_back[1]
    assert skipped[("OptimalAffineDenoiser", "gain", "lhs")].startswith("undefined function")
    assert skipped[("TrainingSetLaw", "covariance", "rhs")] == "Sum/Indexed"
    steps = next(r for r in items if type(r).__name__ == "FiniteStepLaw").formulas
    gain_operators = [label for label in steps if not label.endswith(": Q")]  # A and c contain G, b
    assert all(skipped[("FiniteStepLaw", label, "rhs")].startswith("non-commutative") for label in gain_operators)
    noise_scales = [label for label in steps if label.endswith(": Q")]  # scalar: parsed back, or a stated reason
    assert noise_scales and all(("FiniteStepLaw", label, "rhs") in parsed or
                                ("FiniteStepLaw", label, "rhs") in skipped for label in noise_scales)


def test_negative_control_wrong_formulas_compare_unequal(parse):
    gain = lam / (lam + sigma**2)
    assert same(parse(sp.latex(gain)), gain)
    assert not same(parse(sp.latex(lam / (lam + sigma))), gain)  # sigma instead of sigma^2
    ode_variance = v0 * (lam + sigma_end**2) / (lam + sigma_max**2)
    swapped = v0 * (lam + sigma_max**2) / (lam + sigma_end**2)  # same symbols, wrong formula
    assert same(read_back(parse, ode_variance)[0], ode_variance)
    assert not same(read_back(parse, swapped)[0], ode_variance)


def test_no_equation_overflows_the_line(written):
    """pdflatex reports no overfull box from a displayed equation (long ones are split, see theory.typeset)."""
    if shutil.which("pdflatex") is None:
        pytest.skip(NO_ENGINE)
    export.compile_pdf(written[-1])
    log = written[-1].with_suffix(".log").read_text(encoding="utf-8", errors="replace")
    overfull = [line for line in log.splitlines() if line.startswith("Overfull \\hbox")]
    assert not overfull, overfull


def test_export_uses_the_papers_names_not_code_names(items):
    """No code name leaks into a typeset formula: sigma_next, s_dot, sampler identifiers."""
    for result in items:
        for label, formula in result.formulas.items():
            body = "\n".join(typeset.display(formula))
            for leak in ("_{next}", "_{dot}", "_{prev}", "_{noise}", "euler\\_maruyama", "_{max}", "_{end}"):
                assert leak not in body, (type(result).__name__, label, leak)


def test_long_equations_are_split_between_terms_and_never_shrunk_below_the_floor(items):
    steps = next(r for r in items if type(r).__name__ == "FiniteStepPolynomialLaw")
    long_formula = max(steps.formulas.values(), key=typeset.width)
    body = "\n".join(typeset.display(long_formula))
    assert "\\begin{aligned}" in body and body.count("\\\\") >= 5  # many lines, not one shrunk expression
    for result in items:
        for formula in result.formulas.values():
            for scale in re.findall(r"scalebox\{([0-9.]+)\}", "\n".join(typeset.display(formula))):
                assert float(scale) >= typeset.MIN_SCALE


def test_sampler_labels_are_words(items):
    steps = next(r for r in items if type(r).__name__ == "FiniteStepLaw")
    text = steps.latex()
    assert "Euler--Maruyama, $A_i$" in text and "Heun (EDM), $A_i$" in text

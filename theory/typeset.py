"""Typesetting a formula for the export: the paper's symbol names, and long equations split over lines.

A displayed line must fit ``\\linewidth`` (A4, 2 cm margins, 10 pt: about 17 cm, ~95 ``M``-wide
glyphs). ``width`` estimates a formula's typeset width in glyphs from its structure (a fraction is as
wide as the wider of its numerator and denominator, an exponent counts 0.7, a Greek macro one glyph);
an equation wider than ``LINE`` is broken between the terms of its right-hand side (expanded first
when one term is too wide), ``aligned`` inside one numbered ``equation``, with ``\\quad +`` continuation lines. A single term that
no split can narrow is scaled down to the line, and never below ``MIN_SCALE``: that case is reported.
"""
from __future__ import annotations

import re

import sympy as sp

from theory.symbols import LATEX_NAMES

LINE = 80.0          # glyphs per displayed line, with margin for the equation number
MIN_SCALE = 0.6      # smallest scale a single unsplittable term may be typeset at


def tex(expr) -> str:
    """``sympy.latex`` with the paper's names for code-named symbols."""
    return sp.latex(expr, symbol_names=LATEX_NAMES)


def glyphs(text: str) -> float:
    """Rough width of a LaTeX string in glyphs: macros count as one, braces and scripts' markup as none."""
    text = re.sub(r"\\(left|right|cdot|quad|,|;|!)", " ", text)
    text = re.sub(r"\\[a-zA-Z]+", "x", text)
    return float(len(re.sub(r"[{}^_ ]", "", text)))


def width(expr) -> float:
    """Estimated typeset width of ``expr`` in glyphs (fractions stacked, exponents small)."""
    if isinstance(expr, sp.Eq):
        return width(expr.lhs) + 3 + width(expr.rhs)
    if isinstance(expr, sp.Add):
        return sum(width(t) + 3 for t in expr.args) - 3
    if isinstance(expr, sp.Mul):
        numerator, denominator = sp.fraction(expr)
        if denominator != 1:
            return max(width(numerator), width(denominator)) + 1
        return sum(width(f) + (2 if isinstance(f, sp.Add) else 0) for f in expr.args)
    if isinstance(expr, sp.Pow):
        if expr.exp == sp.Rational(1, 2) or expr.exp == -sp.Rational(1, 2):
            return width(expr.base) + 2
        return width(expr.base) + (2 if isinstance(expr.base, (sp.Add, sp.Mul)) else 0) + 0.7 * width(expr.exp)
    return glyphs(tex(expr))


def _terms(rhs) -> list:
    """The right-hand side's top-level terms; expanded when some term alone is wider than a line."""
    terms = list(sp.Add.make_args(rhs))
    if max(width(t) for t in terms) > LINE and rhs.is_commutative:
        expanded = list(sp.Add.make_args(sp.expand(rhs)))
        if max(width(t) for t in expanded) < max(width(t) for t in terms):
            terms = expanded
    return terms


def _signed(term) -> tuple[str, str]:
    """``(sign, body)`` of one term's LaTeX."""
    body = tex(term)
    return ("-", body[1:].lstrip()) if body.startswith("-") else ("+", body)


def _rows(formula) -> list[tuple[str, float]]:
    """Greedy packing of the right-hand side's terms into rows of at most ``LINE`` glyphs: ``(LaTeX, width)``."""
    rows, current, used = [], [], width(formula.lhs) + 3
    for term in _terms(formula.rhs):
        sign, body = _signed(term)
        w = width(term) + 3
        if current and used + w > LINE:
            rows.append((" ".join(current), used))
            current, used = [], 8.0  # a continuation row starts after "\quad"
        current.append(f"{sign} {body}" if current or rows or sign == "-" else body)
        used += w
    return rows + [(" ".join(current), used)]


def _fit(body: str, w: float) -> str:
    """``body`` as is when it fits a line, else scaled to the line (never below ``MIN_SCALE``)."""
    if w <= LINE:
        return body
    return f"\\scalebox{{{max(MIN_SCALE, LINE / w):.2f}}}{{$\\displaystyle {body}$}}"


def _aligned(equation) -> list[str]:
    """Rows ``lhs &= ...`` / ``&\\quad ...`` of one scalar equation, broken between terms (the shorter side
    first, so that the long one is the one broken)."""
    if width(equation.lhs) > width(equation.rhs):
        equation = sp.Eq(equation.rhs, equation.lhs, evaluate=False)
    rows = _rows(equation)
    lines = [f"{tex(equation.lhs)} &= {_fit(rows[0][0], rows[0][1])}"]
    return lines + [f"&\\quad {_fit(body, w)}" for body, w in rows[1:]]


def display(formula) -> list[str]:
    """LaTeX lines displaying ``formula``: one numbered ``equation``, its lines ``aligned`` when broken.

    A matrix equation (``M c = v`` multiplied out) is shown one row per line: the per-coefficient equations.
    """
    matrix = isinstance(formula, sp.Eq) and isinstance(formula.lhs, sp.MatrixBase) \
        and isinstance(formula.rhs, sp.MatrixBase) and formula.lhs.shape == formula.rhs.shape
    if not matrix and (width(formula) <= LINE or not isinstance(formula, sp.Eq)):
        return ["\\begin{equation}", _fit(tex(formula), width(formula)), "\\end{equation}"]
    equations = ([sp.Eq(l, r, evaluate=False) for l, r in zip(formula.lhs, formula.rhs)] if matrix else [formula])
    lines = [line for equation in equations for line in _aligned(equation)]
    return ["\\begin{equation}", "\\begin{aligned}", " \\\\\n".join(lines), "\\end{aligned}", "\\end{equation}"]

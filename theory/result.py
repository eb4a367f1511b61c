"""A theorem-like result: statement, assumptions and named sympy formulas, exportable to LaTeX."""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp


LONG_FORMULA = 400  # characters of LaTeX beyond which a formula no longer fits a line


@dataclass(frozen=True)
class Result:
    """What a result says, under which assumptions, and its formulas as sympy ``Eq`` objects."""

    name: str
    statement: str
    assumptions: tuple[str, ...]
    formulas: dict = field(default_factory=dict)  # label -> sympy.Eq
    exact: bool = True  # False when the statement is a limit or an approximation

    def latex(self) -> str:
        """The result as a LaTeX fragment: statement, assumptions and one equation per formula."""
        lines = [f"\\subsection*{{{self.name}}}", self.statement, "", "\\textbf{Assumptions.}",
                 "\\begin{itemize}"]
        lines += [f"  \\item {a}" for a in self.assumptions]
        lines.append("\\end{itemize}")
        for label, formula in self.formulas.items():
            text = label.replace("_", "\\_")
            body = sp.latex(formula)
            if len(body) > LONG_FORMULA:  # a long formula is scaled to the line width (needs graphicx)
                body = f"\\resizebox{{\\linewidth}}{{!}}{{$\\displaystyle {body}$}}"
            lines += [f"% {label}", f"\\noindent {text}:", "\\begin{equation}", body, "\\end{equation}"]
        return "\n".join(lines) + "\n"

"""A theorem-like result: statement, assumptions and named sympy formulas, exportable to LaTeX."""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp


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
            lines += [f"% {label}", f"\\noindent {text}:", "\\begin{equation}", sp.latex(formula), "\\end{equation}"]
        return "\n".join(lines) + "\n"

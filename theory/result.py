"""A theorem-like result: statement, assumptions and named sympy formulas, exportable to LaTeX."""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field

from theory import typeset

_DERIVED: dict = {}  # (class, bound arguments) -> the one instance this process derived


@dataclass(frozen=True)
class Result:
    """What a result says, under which assumptions, and its formulas as sympy ``Eq`` objects."""

    name: str
    statement: str
    assumptions: tuple[str, ...]
    formulas: dict = field(default_factory=dict)  # label -> sympy.Eq
    exact: bool = True  # False when the statement is a limit or an approximation

    def __init_subclass__(cls, **kwargs):
        """A subclass derives its sympy formulas once per process and set of arguments: ``Cls(...)`` returns the
        instance already derived (with its cached lambdified evaluators), the derivation is not run again."""
        super().__init_subclass__(**kwargs)
        derive = cls.__dict__.get("__init__")
        if derive is None:
            return

        @functools.wraps(derive)
        def derive_once(self, *args, **kw):
            if not self.__dict__.get("_derived", False):
                derive(self, *args, **kw)
                object.__setattr__(self, "_derived", True)

        cls.__init__, cls._signature = derive_once, inspect.signature(derive)

    def __new__(cls, *args, **kwargs):
        signature = cls.__dict__.get("_signature")
        if signature is None:  # Result itself, or a subclass without its own derivation
            return super().__new__(cls)
        bound = signature.bind(None, *args, **kwargs)
        bound.apply_defaults()
        key = (cls, tuple(bound.arguments.items())[1:])
        try:
            instance = _DERIVED.get(key)
        except TypeError:  # unhashable arguments (arrays): derive afresh
            return super().__new__(cls)
        if instance is None:
            instance = _DERIVED[key] = super().__new__(cls)
        return instance

    def latex(self) -> str:
        """The result as a LaTeX fragment: statement, assumptions and one equation per formula."""
        lines = [f"\\subsection*{{{self.name}}}", self.statement, "", "\\textbf{Assumptions.}",
                 "\\begin{itemize}"]
        lines += [f"  \\item {a}" for a in self.assumptions]
        lines.append("\\end{itemize}")
        for label, formula in self.formulas.items():
            lines += [f"% {label}", f"\\noindent {self.label_text(label)}:", *typeset.display(formula)]
        return "\n".join(lines) + "\n"

    def label_text(self, label: str) -> str:
        """How a formula's label reads in the export (code names in words; ``_`` escaped)."""
        return label.replace("_", "\\_")

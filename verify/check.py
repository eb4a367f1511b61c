"""One verdict of a verification: a statistic, its p-value (``None`` when deterministic) and pass/fail."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Check:
    """A single check; ``predicted`` and ``measured`` are short human-readable summaries."""

    name: str
    statistic: float
    p_value: float | None
    passed: bool
    predicted: str = ""
    measured: str = ""
    threshold: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

"""Progress bars for long loops (sampling, fitting, training): tqdm to stderr, off unless asked for."""
from __future__ import annotations

import sys


class NoBar:
    """Stands in for a bar when progress is off: ``update`` and ``close`` do nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def bar(total: int, desc: str, enabled: bool):
    """A tqdm bar of ``total`` units to stderr when ``enabled`` and stderr is a terminal, else a ``NoBar``."""
    if not enabled or not sys.stderr.isatty():
        return NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)

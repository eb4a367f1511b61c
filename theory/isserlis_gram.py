"""Result 14's normal equations in any dimension, assembled from the moment table by Isserlis' theorem.

A monomial of degree ``r`` is written as ``r`` sorted coordinate *slots* (a repeated coordinate is a power),
padded with the index ``d`` (a constant 1) to a common length. With ``y = u + s n``, ``n ~ N(0, I)``,
expanding ``prod_slots (u_c + s n_c)`` over the subsets ``S`` of the slots gives

    E[y^alpha] = sum_S s^|S| I(S) m(alpha minus S),   I(S) = #pairings of S into equal coordinates

(Isserlis / Wick), and ``E[u_e y^alpha]`` the same with ``e`` added to every complement. So every entry of
the Gram matrix and of the right-hand side is a polynomial in ``s`` whose coefficients are mixed moments
``m`` of the law (orders ``<= 2k`` and ``<= k + 1``). The sums run over the ``2^(2k)`` slot subsets for all
monomials at once, with one sorted-key lookup per term: no loop over entries, which makes ``d = 64``,
``k = 2`` (2145 monomials, 814385 moments) a matter of seconds.
"""
from __future__ import annotations

import itertools

import numpy as np

CHUNK_ENTRIES = 2 ** 25  # atoms x monomials per block when the moments are summed over the atoms (~256 MB)


def slots(dim: int, order: int, length: int) -> np.ndarray:
    """All monomials of degree ``<= order`` in ``dim`` coordinates as sorted slots ``(M, length)``, padded with ``dim``.

    >>> slots(2, 1, 2).tolist()
    [[2, 2], [0, 2], [1, 2]]
    """
    rows = [c + (dim,) * (length - len(c)) for r in range(order + 1)
            for c in itertools.combinations_with_replacement(range(dim), r)]
    return np.array(rows, dtype=np.int64).reshape(len(rows), length)


def keys(table: np.ndarray, dim: int) -> np.ndarray:
    """One integer per monomial: its sorted slots read as digits in base ``dim + 1`` (pads sort last)."""
    ordered = np.sort(table, axis=-1)
    if (dim + 1.0) ** ordered.shape[-1] >= 2.0 ** 62:
        raise ValueError(f"monomials of {ordered.shape[-1]} slots in dim {dim} overflow a 64-bit key")
    return ordered @ ((dim + 1) ** np.arange(ordered.shape[-1] - 1, -1, -1, dtype=np.int64))


def pairings(positions: tuple[int, ...]) -> list[list[tuple[int, int]]]:
    """All perfect matchings of ``positions`` (empty list if their number is odd).

    >>> pairings((0, 1, 2, 3))
    [[(0, 1), (2, 3)], [(0, 2), (1, 3)], [(0, 3), (1, 2)]]
    """
    if not positions:
        return [[]]
    first, rest = positions[0], positions[1:]
    return [[(first, q)] + m for i, q in enumerate(rest) for m in pairings(rest[:i] + rest[i + 1:])]


def moment_table(u: np.ndarray, w: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``m(alpha) = sum_i w_i prod_slots u_i,c`` for each monomial (row of slots) of ``table``."""
    padded = np.concatenate([u, np.ones((u.shape[0], 1))], axis=1)
    block = max(1, CHUNK_ENTRIES // max(1, u.shape[0]))
    out = np.empty(len(table))
    for start in range(0, len(table), block):
        rows = table[start:start + block]
        out[start:start + block] = w @ np.prod(padded[:, rows], axis=2)
    return out


class MomentLookup:
    """The mixed moments of order ``<= order`` of a discrete law, looked up by slot rows of any length."""

    def __init__(self, u: np.ndarray, w: np.ndarray, order: int):
        self.dim, self.length = u.shape[1], order
        table = slots(self.dim, order, order)
        codes = keys(table, self.dim)
        by_key = np.argsort(codes)
        self.table, self.keys = table[by_key], codes[by_key]
        self.values = moment_table(u, w, self.table)

    def index(self, rows: np.ndarray) -> np.ndarray:
        """Row of :attr:`table` of each monomial given as slot rows ``(..., L)`` (at most ``order`` real slots)."""
        rows = np.asarray(rows, dtype=np.int64)
        wide = np.sort(np.concatenate([rows, np.full(rows.shape[:-1] + (self.length,), self.dim)], axis=-1), axis=-1)
        if np.any(wide[..., self.length:] != self.dim):
            raise ValueError(f"a monomial has more than {self.length} slots")
        return np.searchsorted(self.keys, keys(wide[..., : self.length], self.dim))

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """Moments of the monomials given as slot rows ``(..., L)``."""
        return self.values[self.index(rows)]


def noisy_coefficients(rows: np.ndarray, lookup: MomentLookup, extra: np.ndarray | None = None) -> np.ndarray:
    """``c[..., j]``: the coefficient of ``s^j`` in ``E[(u_extra) y^alpha]`` for slot rows ``alpha`` (..., L).

    Sum over the slot subsets ``S`` (bit masks): ``I(S)`` counts the pairings of ``S`` into equal real
    coordinates; the complement keeps the other slots (and the extra coordinate ``e``, if given).
    """
    L, dim = rows.shape[-1], lookup.dim
    out = np.zeros(rows.shape[:-1] + (L + 1,))
    for size in range(0, L + 1, 2):
        for S in itertools.combinations(range(L), size):
            real = np.all(rows[..., list(S)] != dim, axis=-1) if S else np.ones(rows.shape[:-1], bool)
            count = sum(np.prod([rows[..., p] == rows[..., q] for p, q in m], axis=0) if m else 1
                        for m in pairings(S)) * real
            if not np.any(count):
                continue
            rest = rows.copy()
            rest[..., list(S)] = dim
            if extra is not None:
                rest = np.concatenate([rest, extra[..., None]], axis=-1)
            out[..., size] += count * lookup(rest)
    return out

"""The relationships of a run's agents, by (from, to) positions: a kind and a
strength (-1..1) per pair.

A million agents have millions of relationships, read once as the run starts
and touched a few thousand a tick: they are kept as sorted numpy arrays (the
pair as one int64 key), with the pairs changed since in a small dict that is
folded into the arrays once a day (:meth:`Relationships.fold`).  Reading them
into Python dicts took tens of seconds and gigabytes at that scale."""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterable, Iterator

import numpy as np


class Relationships:
    """(from, to) -> (kind, strength), for ``n`` agents."""

    def __init__(self, n: int, a: np.ndarray, b: np.ndarray, kinds: Iterable[str], strengths: np.ndarray):
        self.n = n
        keys = a.astype(np.int64) * n + b.astype(np.int64)
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._strength = np.asarray(strengths, dtype=np.float64)[order]
        self._kind = np.asarray(list(kinds), dtype=object)[order]
        self._changed: dict[tuple[int, int], tuple[str, float]] = {}
        self._lists()

    def _lists(self) -> None:
        # the same, as Python lists, for one pair at a time: bisect on a list takes a fraction of a
        # microsecond, numpy's searchsorted on one value several (its call costs more than the search)
        self._key_list = self._keys.tolist()
        self._kind_list = self._kind.tolist()
        self._strength_list = self._strength.tolist()

    def __len__(self) -> int:
        return len(self._keys) + sum(1 for p in self._changed if self._find(p) < 0)

    def _find(self, pair: tuple[int, int]) -> int:
        key = pair[0] * self.n + pair[1]
        keys = self._key_list
        k = bisect_left(keys, key)
        return k if k < len(keys) and keys[k] == key else -1

    def get(self, pair: tuple[int, int]) -> tuple[str, float] | None:
        """(kind, strength) of a pair, or None when they have none."""
        got = self._changed.get(pair)
        if got is not None:
            return got
        k = self._find(pair)
        return (self._kind_list[k], self._strength_list[k]) if k >= 0 else None

    def set(self, pair: tuple[int, int], kind: str, strength: float) -> None:
        self._changed[pair] = (kind, strength)

    def fold(self) -> None:
        """The pairs changed since the last fold, into the arrays."""
        if not self._changed:
            return
        pairs = np.array(list(self._changed), dtype=np.int64).reshape(-1, 2)
        keys = pairs[:, 0] * self.n + pairs[:, 1]
        kinds = np.array([k for k, _ in self._changed.values()], dtype=object)
        strengths = np.array([s for _, s in self._changed.values()], dtype=np.float64)
        at = np.searchsorted(self._keys, keys)
        found = (at < len(self._keys)) & (self._keys[np.minimum(at, len(self._keys) - 1)] == keys) \
            if len(self._keys) else np.zeros(len(keys), dtype=bool)
        self._strength[at[found]] = strengths[found]
        self._kind[at[found]] = kinds[found]
        if (~found).any():
            all_keys = np.concatenate([self._keys, keys[~found]])
            order = np.argsort(all_keys, kind="stable")
            self._keys = all_keys[order]
            self._strength = np.concatenate([self._strength, strengths[~found]])[order]
            self._kind = np.concatenate([self._kind, kinds[~found]])[order]
        self._changed = {}
        self._lists()

    def best_friends(self) -> np.ndarray:
        """Each agent's strongest relationship (ties: the lowest other position), or -1."""
        self.fold()
        bf = np.full(self.n, -1, dtype=np.int64)
        if len(self._keys):
            a, b = np.divmod(self._keys, self.n)
            order = np.lexsort((b, -self._strength, a))          # by agent, strongest first
            first = np.ones(len(order), dtype=bool)
            first[1:] = a[order][1:] != a[order][:-1]
            bf[a[order][first]] = b[order][first]
        return bf

    def rows(self) -> Iterator[tuple[int, int, str, float]]:
        """(from, to, kind, strength) of every pair, in pair order."""
        self.fold()
        a, b = np.divmod(self._keys, self.n)
        return zip(a.tolist(), b.tolist(), self._kind.tolist(), self._strength.tolist())

    def of_kinds_not_in(self, kinds: frozenset[str]) -> list[tuple[int, int, str]]:
        """(from, to, kind) of the pairs whose kind is not one of ``kinds``, in pair order."""
        self.fold()
        if not len(self._keys):
            return []
        mask = np.array([k not in kinds for k in self._kind.tolist()], dtype=bool)
        a, b = np.divmod(self._keys[mask], self.n)
        return list(zip(a.tolist(), b.tolist(), self._kind[mask].tolist()))

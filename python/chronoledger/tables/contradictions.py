"""Contradiction rules and their detection: pairs of rows that say the same
thing twice (``near_duplicate``: the word sets of the named text fields are
at least ``threshold`` alike, Jaccard's measure averaged over the fields, as
Grace's contradiction_detector.py compares them) or the same thing two ways
(``conflicting_values``: equal ``key`` fields, different ``fields``).
docs/tables.md, "Contradictions".

Detection is deterministic (pairs in key order) and exact: it measures only
the pairs prefix filtering leaves, which include every pair that can reach
the threshold, not every pair of the table."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from chronoledger.tables.schema import TableSchema

#: The rules Grace's contradiction_detector.py declares in code for four of its tables: a table of
#: that name that declares no ``contradictions:`` of its own gets those whose fields it has.
GRACE_RULES: dict[str, tuple[dict, ...]] = {
    "memory_documents": ({"name": "duplicate_content", "kind": "near_duplicate", "fields": ["title", "summary"],
                          "threshold": 0.85, "severity": "medium"},),
    "memory_codebases": ({"name": "duplicate_repo", "kind": "near_duplicate", "fields": ["repo_url", "repo_name"],
                          "threshold": 0.95, "severity": "high"},),
    "memory_self_healing_playbooks": ({"name": "conflicting_actions", "kind": "conflicting_values",
                                       "key": ["trigger_conditions"], "fields": ["actions"],
                                       "severity": "critical"},),
    "memory_coding_work_orders": ({"name": "duplicate_work", "kind": "near_duplicate",
                                   "fields": ["title", "description"], "threshold": 0.90, "severity": "medium"},),
}
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Found:
    """One contradiction: a rule, two rows (keys as text, ``row1 < row2``), and why."""
    rule: str
    kind: str
    severity: str
    row1: str
    row2: str
    score: float | None
    detail: str


def rules_for(schema: TableSchema) -> tuple[dict, ...]:
    """The rules of ``schema``: its own, else Grace's for a table of that name (those whose fields it has)."""
    if schema.contradictions is not None:
        return schema.contradictions
    return tuple(r for r in GRACE_RULES.get(schema.name, ())
                 if all(f in schema.by_name for f in [*r["fields"], *r.get("key", [])]))


def detect(rows: list[dict], key: str, rules: Iterable[dict]) -> list[Found]:
    """Every contradiction the rules find among ``rows`` (stored values, with the primary key ``key``)."""
    out: list[Found] = []
    for rule in rules:
        if rule["kind"] == "near_duplicate":
            out += _near_duplicates(rows, key, rule)
        else:
            out += _conflicts(rows, key, rule)
    return sorted(out, key=lambda f: (f.rule, f.row1, f.row2))


def _words(v: Any) -> frozenset[str]:
    return frozenset(_WORD.findall(v.lower())) if isinstance(v, str) else frozenset()


def _near_duplicates(rows: list[dict], key: str, rule: dict) -> list[Found]:
    fields, threshold = rule["fields"], rule["threshold"]
    words = [(str(r[key]), [_words(r.get(f)) for f in fields]) for r in rows]
    pairs: set[tuple[int, int]] = set()
    for j in range(len(fields)):
        pairs |= _candidates([ws[j] for _k, ws in words], threshold)
    out = []
    for i, j in sorted(pairs):
        (ka, wa), (kb, wb) = words[i], words[j]
        sims = [len(a & b) / len(a | b) for a, b in zip(wa, wb) if a and b]
        if not sims:
            continue
        sim = sum(sims) / len(sims)
        if sim >= threshold:
            r1, r2 = sorted((ka, kb))
            out.append(Found(rule["name"], "near_duplicate", rule["severity"], r1, r2, round(sim, 6),
                             f"{sim:.0%} alike in {', '.join(fields)}"))
    return out


def _candidates(sets: list[frozenset[str]], threshold: float) -> set[tuple[int, int]]:
    """Every pair of ``sets`` whose Jaccard similarity reaches ``threshold``.
    A pair the average over fields puts at or above the threshold has one
    field at or above it, so the union of these over the fields misses none.
    Found by prefix filtering (Chaudhuri et al. 2006): with each set's words
    in one global order, rarest first, two sets that alike share a word among
    the first ``len - ceil(threshold * len) + 1`` of each; such pairs are then
    measured (sizes first: a set that much smaller cannot be that alike)."""
    freq: dict[str, int] = defaultdict(int)
    for ws in sets:
        for w in ws:
            freq[w] += 1
    index: dict[str, list[int]] = defaultdict(list)
    for i, ws in enumerate(sets):
        if not ws:
            continue
        ordered = sorted(ws, key=lambda w: (freq[w], w))
        prefix = len(ordered) - math.ceil(threshold * len(ordered) - 1e-9) + 1
        for w in ordered[:prefix]:
            index[w].append(i)
    out: set[tuple[int, int]] = set()
    t = threshold - 1e-9
    for members in index.values():
        for i, j in combinations(members, 2):
            a, b = sets[i], sets[j]
            la, lb = len(a), len(b)
            if la < t * lb or lb < t * la:
                continue
            both = len(a & b)
            if both >= t * (la + lb - both):
                out.add((i, j))
    return out


def _canonical(v: Any) -> str:
    """A value as comparable text: JSON text parsed, so key order and spacing do not matter."""
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            pass
    return json.dumps(v, sort_keys=True, separators=(",", ":"), default=str)


def _conflicts(rows: list[dict], key: str, rule: dict) -> list[Found]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        ident = tuple(r.get(f) for f in rule["key"])
        if any(v is None for v in ident):
            continue
        groups[tuple(_canonical(v) for v in ident)].append(r)
    out = []
    for members in groups.values():
        for a, b in combinations(sorted(members, key=lambda r: str(r[key])), 2):
            differ = [f for f in rule["fields"] if _canonical(a.get(f)) != _canonical(b.get(f))]
            if differ:
                out.append(Found(rule["name"], "conflicting_values", rule["severity"], str(a[key]), str(b[key]),
                                 None, f"same {', '.join(rule['key'])}, different {', '.join(differ)}"))
    return out

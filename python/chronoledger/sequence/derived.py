"""What more than one mirror is built from, derived once per sync from the
read tree: the completions as rows, the schedule blocks with the completion
matched to each, the points ledger with its running balance, commitments and
rewards judged (:mod:`~chronoledger.sequence.commitments`), and the index
that resolves an item named in another by name and type.

Each is computed the first time a builder asks for it.  Values that cannot
be used are added to the tree's problems as warnings when they are met, so
the warnings come in the order the builders ask.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chronoledger.sequence import commitments
from chronoledger.sequence.records import BlockRow, Completion, Item, LedgerRow, Problem, Trigger, UserTree
from chronoledger.sequence.values import hhmm, parse_duration, span, stamp, to_num, to_tags, to_text


class Index:
    """Items by (name, type) and by name, for resolving references."""

    def __init__(self, ids: dict[tuple[str, str], int], items: list[Item]):
        self.by_name_type = {(it.name.lower(), it.type): ids[(it.type, it.slug)] for it in items}
        self.by_name: dict[str, list[int]] = {}
        for it in items:
            self.by_name.setdefault(it.name.lower(), []).append(ids[(it.type, it.slug)])

    def find(self, name: str, itype: str | None) -> int | None:
        key = name.strip().lower()
        if itype:
            hit = self.by_name_type.get((key, str(itype).strip().lower()))
            if hit is not None:
                return hit
        ids = self.by_name.get(key, [])
        return ids[0] if len(ids) == 1 or (ids and not itype) else None


def blocks_of(blocks: list[Any], day: str, parent: str | None = None,
              depth: int = 0) -> Iterator[tuple[str, str | None, int, dict[str, Any]]]:
    """Schedule blocks flattened, children to any depth: (path, parent, depth, block)."""
    for i, b in enumerate(blocks or []):
        if not isinstance(b, dict):
            continue
        path = f"{parent}.{i}" if parent is not None else str(i)
        yield path, parent, depth, b
        kids = b.get("children")
        if isinstance(kids, list):
            yield from blocks_of(kids, day, path, depth + 1)


def _completion(key: str, value: Any) -> dict[str, Any]:
    """One completions entry: ``name@HH:MM`` -> a status string or a mapping."""
    name, _, at = str(key).rpartition("@")
    if not name:
        name, at = str(key), ""
    entry = {"status": value} if isinstance(value, str) else dict(value) if isinstance(value, dict) else {}
    entry.setdefault("name", name.strip())
    if entry.get("scheduled_start") is None and hhmm(at) is not None:
        entry["scheduled_start"] = at
    return entry


class Derived:
    """The records of one read tree that more than one mirror holds."""

    def __init__(self, tree: UserTree):
        self.tree = tree
        #: references no item answers (the core build fills it, the sync reports it)
        self.unresolved: list[dict] = []
        self.ids = {(it.type, it.slug): i + 1 for i, it in enumerate(tree.items)}
        self.index = Index(self.ids, tree.items)
        self.completions = self._completions()
        self._ledger: list[LedgerRow] | None = None
        self._triggers: list[Trigger] | None = None
        self._matched: tuple[dict[tuple[str, str], Completion], list[Completion]] | None = None
        self._block_rows: list[BlockRow] | None = None

    def _completions(self) -> list[Completion]:
        out: list[Completion] = []
        for day, entries in sorted(self.tree.completions.items()):
            for key, value in entries.items():
                e = _completion(key, value)
                status = e.get("status")
                if not isinstance(status, str):
                    self.tree.problems.append(Problem(self.tree.completion_files.get(day, day), None,
                                                      f"entry {key!r} has no status; it is left out",
                                                      skipped=False))
                    continue
                out.append({"date": day, "name": to_text(e.get("name")) or str(key), "type": to_text(e.get("type")),
                            "scheduled_start": hhmm(e.get("scheduled_start")),
                            "scheduled_end": hhmm(e.get("scheduled_end")),
                            "actual_start": hhmm(e.get("actual_start")), "actual_end": hhmm(e.get("actual_end")),
                            "status": status.strip().lower(), "quality": to_num(e.get("quality")),
                            "logged_at": stamp(e.get("logged_at"), day), "note": to_text(e.get("note")),
                            "source": f"Schedules/completions/{day}.yml"})
        return out

    def matched_blocks(self) -> tuple[dict[tuple[str, str], Completion], list[Completion]]:
        """Which completion belongs to which schedule block, at any depth:
        same day and name (in any case), and the same start, or no start
        given and that name only once in the day's schedule.  Returns
        ({(day, block path): completion}, completions that match no block)."""
        if self._matched is not None:
            return self._matched
        blocks: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
        for day, bl in self.tree.schedules.items():
            for path, _, _, b in blocks_of(bl, day):
                name = (to_text(b.get("name")) or "").strip().lower()
                if name:
                    blocks.setdefault((day, name), []).append((path, hhmm(b.get("start_time"))))
        matched: dict[tuple[str, str], Completion] = {}
        loose: list[Completion] = []
        for c in self.completions:
            cands = blocks.get((c["date"], c["name"].lower()), [])
            if c["scheduled_start"] is not None:
                hit = next((p for p, st in cands if st == c["scheduled_start"] and (c["date"], p) not in matched), None)
            else:
                hit = cands[0][0] if len(cands) == 1 and (c["date"], cands[0][0]) not in matched else None
            if hit is None:
                loose.append(c)
            else:
                matched[(c["date"], hit)] = c
        self._matched = (matched, loose)
        return self._matched

    def block_rows(self) -> list[BlockRow]:
        """Every named schedule block, days in order, with what both the core
        (schedules) and the memory (activity_facts) builds read of it:
        (day, path, parent, depth, block, name, type, start, end, planned
        minutes, the matched completion or None)."""
        if self._block_rows is None:
            matched, _ = self.matched_blocks()
            out: list[BlockRow] = []
            for day, blocks in sorted(self.tree.schedules.items()):
                for path, parent, depth, b in blocks_of(blocks, day):
                    name = (to_text(b.get("name")) or "").strip()
                    if not name:
                        continue
                    start, end = hhmm(b.get("start_time")), hhmm(b.get("end_time"))
                    planned = parse_duration(b.get("duration"))
                    if planned is None:
                        planned = span(start, end)
                    out.append((day, path, parent, depth, b, name, to_text(b.get("type")), start, end, planned,
                                matched.get((day, path))))
            self._block_rows = out
        return self._block_rows

    def points_ledger(self) -> list[LedgerRow]:
        if self._ledger is None:
            self._ledger = self._points_ledger()
        return self._ledger

    def _points_ledger(self) -> list[LedgerRow]:
        out: list[LedgerRow] = []
        balance = 0.0
        entries = self.tree.points.get("ledger") if isinstance(self.tree.points, dict) else None
        for i, e in enumerate(entries or []):
            delta = to_num(e.get("delta")) if isinstance(e, dict) else None
            ts = stamp(e.get("date")) if delta is not None else None
            if delta is None or ts is None:
                self.tree.problems.append(Problem(self.tree.points_file, None,
                                                  f"ledger entry {i} needs a date and a finite numeric delta; "
                                                  f"it is left out", skipped=False))
                continue
            balance += delta
            out.append((ts, delta, to_text(e.get("reason")), to_text(e.get("source")), to_tags(e.get("tags")), balance))
        return out

    def triggers(self) -> list[Trigger]:
        """Commitments judged against the completions (met / violated per
        period, with the actions their triggers name), and rewards redeemed."""
        if self._triggers is None:
            self._triggers = commitments.judge(self.tree, self.completions, self.points_ledger)
        return self._triggers

"""What more than one mirror is built from, derived once per sync from the
read tree: the completions as rows, the schedule blocks with the completion
matched to each, the points ledger with its running balance, commitments and
rewards judged (:mod:`~chronoledger.sequence.commitments`), the items' own
history (``completion_dates``, ``incident_dates``), timer sessions, the links
between items that are not lists of references (a milestone's ``goal:``, a
day's ``sequence:`` windows), the variables read from settings (status
dimensions and their levels, quality labels, the current status), and the
index that resolves an item named in another by name and type.

Each is computed the first time a builder asks for it.  Values that cannot
be used are added to the tree's problems as warnings when they are met, so
the warnings come in the order the builders ask.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chronoledger.sequence import commitments
from chronoledger.sequence.records import (BlockRow, Completion, HabitDate, Item, LedgerRow, Problem, RelationRow,
                                           TimerSession, Trigger, UserTree)
from chronoledger.sequence.schema import STATUS_DIMENSIONS
from chronoledger.sequence.values import (hhmm, iso_date, parse_duration, span, stamp, status_slug, to_json, to_num,
                                          to_tags, to_text)

#: The quality labels Chronos ships (settings/quality_settings.yml), used when a
#: folder has no quality_settings.yml of its own: label -> score, 4 the best.
CHRONOS_QUALITY = {"excellent": 4.0, "good": 3.0, "okay": 2.0, "poor": 1.0}
#: The fields of a completions entry the completions rows hold in columns of their own.
_COMPLETION_FIELDS = frozenset({"name", "type", "status", "scheduled_start", "scheduled_end", "actual_start",
                                "actual_end", "quality", "logged_at", "note", "source", "auto_missed",
                                "auto_skipped"})


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


def is_buffer(block: dict[str, Any]) -> bool:
    """Whether a schedule block is free time Chronos's scheduler inserted
    (``is_buffer: true``, "Dynamic Buffer"), not an activity."""
    return block.get("is_buffer") is True or block.get("is_buffer_item") is True


def blocks_of(blocks: list[Any], day: str, parent: str | None = None,
              depth: int = 0) -> Iterator[tuple[str, str | None, int, dict[str, Any]]]:
    """Schedule blocks flattened, children to any depth: (path, parent, depth,
    block).  Buffer blocks (:func:`is_buffer`) are left out; a block keeps its
    place number, so paths are the same with or without them."""
    for i, b in enumerate(blocks or []):
        if not isinstance(b, dict) or is_buffer(b):
            continue
        path = f"{parent}.{i}" if parent is not None else str(i)
        yield path, parent, depth, b
        kids = b.get("children")
        if isinstance(kids, list):
            yield from blocks_of(kids, day, path, depth + 1)


def _completion(key: str, value: Any) -> dict[str, Any]:
    """One completions entry: ``name@HH:MM`` -> a status string or a mapping.
    The entry's own ``name`` and ``scheduled_start`` come first: Chronos's
    ``did`` keys an entry by its last property (``note``, ``quality``...) when
    it is given any, and its other writers key it ``name@unscheduled``."""
    name, _, at = str(key).rpartition("@")
    if not name:
        name, at = str(key), ""
    entry = {"status": value} if isinstance(value, str) else dict(value) if isinstance(value, dict) else {}
    entry.setdefault("name", name.strip())
    if entry.get("scheduled_start") is None and hhmm(at) is not None:
        entry["scheduled_start"] = at
    return entry


def status_dimensions(tree: UserTree) -> list[str]:
    """The status dimensions in Chronos's order: Settings/status_settings.yml's
    ``Status_Settings: [{Name, Rank}]`` by rank ("Mind State" -> mind_state),
    or its ``dimensions:`` list, else the seven Chronos ships."""
    s = tree.settings.get("status_settings")
    if isinstance(s, dict):
        listed = s.get("status_settings")
        if isinstance(listed, list):
            ranked = []
            for i, d in enumerate(listed):
                if isinstance(d, dict) and status_slug(d.get("name")):
                    rank = to_num(d.get("rank"))
                    ranked.append((rank if rank is not None else float("inf"), i, status_slug(d.get("name"))))
            if ranked:
                return [name for _, _, name in sorted(ranked)]
        dims = s.get("dimensions")
        if isinstance(dims, list):
            return [str(d) for d in dims]
    return list(STATUS_DIMENSIONS)


def _options(setting: Any) -> dict[str, float]:
    """A ``<X>_settings.yml``'s options and their values: ``{X_Settings: {Option:
    {value: N}}}`` (the first mapping in the file), option names lower-cased."""
    if not isinstance(setting, dict):
        return {}
    for inner in setting.values():
        if isinstance(inner, dict):
            out = {}
            for option, spec in inner.items():
                value = to_num(spec.get("value")) if isinstance(spec, dict) else to_num(spec)
                if value is not None:
                    out[str(option).strip().lower()] = value
            return out
    return {}


def status_levels(tree: UserTree) -> dict[str, list[str]]:
    """Each status dimension's levels from its Settings/<dimension>_settings.yml,
    worst first and best last (Chronos gives the best level the value 1:
    Energy High 1 ... Exhausted 4 is [exhausted, low, medium, high]), names
    lower-cased; only the dimensions with such a file."""
    out = {}
    for dim in status_dimensions(tree):
        opts = _options(tree.settings.get(f"{dim}_settings"))
        if opts:
            out[dim] = [name for name, _ in sorted(opts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return out


def quality_levels(tree: UserTree) -> dict[str, float]:
    """Quality label (lower-cased) -> score, from Settings/quality_settings.yml
    (``Quality_Settings: {Excellent: {value: 4}, ...}``: higher is better), else
    the labels Chronos ships (:data:`CHRONOS_QUALITY`)."""
    return _options(tree.settings.get("quality_settings")) or dict(CHRONOS_QUALITY)


class Derived:
    """The records of one read tree that more than one mirror holds."""

    def __init__(self, tree: UserTree):
        self.tree = tree
        #: references no item answers (the core build fills it, the sync reports it)
        self.unresolved: list[dict] = []
        self.ids = {(it.type, it.slug): i + 1 for i, it in enumerate(tree.items)}
        self.index = Index(self.ids, tree.items)
        self.quality = quality_levels(tree)
        self.completions = self._completions()
        self._ledger: list[LedgerRow] | None = None
        self._triggers: list[Trigger] | None = None
        self._matched: tuple[dict[tuple[str, str], Completion], list[Completion]] | None = None
        self._block_rows: list[BlockRow] | None = None
        self._habit_history: list[HabitDate] | None = None

    def item(self, item_id: int) -> Item:
        return self.tree.items[item_id - 1]

    # --- completions and schedules ---------------------------------------------------

    def _quality(self, value: Any) -> tuple[float | None, str | None]:
        """(score, label as written) of a completion's quality: a number is its
        own score; a label (Chronos's Good, Excellent...) scores its value in
        quality_settings.yml."""
        if value is None or isinstance(value, bool):
            return None, None
        n = to_num(value)
        if n is not None:
            return n, value.strip() if isinstance(value, str) else None
        label = to_text(value)
        if label is None:
            return None, None
        return self.quality.get(label.strip().lower()), label.strip()

    def _completions(self) -> list[Completion]:
        out: list[Completion] = []
        for day, entries in sorted(self.tree.completions.items()):
            source = self.tree.completion_files.get(day, day)
            for key, value in entries.items():
                e = _completion(key, value)
                status = e.get("status")
                if not isinstance(status, str):
                    self.tree.problems.append(Problem(source, None, f"entry {key!r} has no status; it is left out",
                                                      skipped=False))
                    continue
                score, label = self._quality(e.get("quality"))
                auto = "missed" if e.get("auto_missed") is True else "skipped" if e.get("auto_skipped") is True \
                    else None
                extra = {k: v for k, v in e.items() if k not in _COMPLETION_FIELDS} \
                    if e.keys() - _COMPLETION_FIELDS else None
                out.append({"date": day, "name": to_text(e.get("name")) or str(key), "type": to_text(e.get("type")),
                            "scheduled_start": hhmm(e.get("scheduled_start")),
                            "scheduled_end": hhmm(e.get("scheduled_end")),
                            "actual_start": hhmm(e.get("actual_start")), "actual_end": hhmm(e.get("actual_end")),
                            "status": status.strip().lower(), "quality": score, "quality_label": label,
                            "logged_at": stamp(e.get("logged_at"), day), "note": to_text(e.get("note")),
                            "source": source, "key": str(key), "origin": to_text(e.get("source")), "auto": auto,
                            "extra_json": to_json(extra) if extra else None})
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
        """Every named schedule block but buffers, days in order, with what
        both the core (schedules) and the memory (activity_facts) builds read
        of it: (day, path, parent, depth, block, name, type, start, end,
        planned minutes, the matched completion or None)."""
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

    # --- points, commitments, rewards ---------------------------------------------------

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
        """Commitments judged per whole period by Chronos's rules (a
        frequency met when its targets were done often enough, counting the
        completions log and the targets' ``completion_dates``; a ``never``
        met unless an incident is recorded), with the actions their triggers
        name, and rewards redeemed (``redeem:<name>`` in the ledger)."""
        if self._triggers is None:
            self._triggers = commitments.judge(self.tree, self.completions, self.points_ledger,
                                              self.habit_history(), self.index.find)
        return self._triggers

    def habit_history(self) -> list[HabitDate]:
        """Every day of every item's own ``completion_dates`` and
        ``incident_dates`` (Chronos's ``complete`` and tracking write them;
        a habit to avoid, ``polarity: bad``, records an incident in both),
        items in order, days sorted and once each per kind."""
        if self._habit_history is None:
            out: list[HabitDate] = []
            for i, it in enumerate(self.tree.items, 1):
                d = it.data
                if "completion_dates" not in d and "incident_dates" not in d:
                    continue
                polarity = "bad" if str(d.get("polarity") or "good").strip().lower() == "bad" else "good"
                for field, kind in (("completion_dates", "completion"), ("incident_dates", "incident")):
                    for day in self._dates(it, field):
                        out.append({"item_id": i, "name": it.name, "type": it.type, "date": day, "kind": kind,
                                    "polarity": polarity})
            self._habit_history = out
        return self._habit_history

    def _dates(self, it: Item, field: str) -> list[str]:
        """An item's list of dates (text or dates), sorted, once each; others are a warning."""
        value = it.data.get(field)
        if value is None:
            return []
        if not isinstance(value, list):
            self.tree.problems.append(Problem(it.path, None, f"{field}: expected a list of dates; it is left out",
                                              skipped=False))
            return []
        days = {iso_date(v) for v in value}
        if None in days:
            bad = [v for v in value if iso_date(v) is None]
            self.tree.problems.append(Problem(it.path, None, f"{field}: {to_text(bad[0])!r} is not a date; "
                                                             f"{'it is' if len(bad) == 1 else f'{len(bad)} are'} "
                                                             f"left out", skipped=False))
            days.discard(None)
        return sorted(d for d in days if d is not None)

    # --- timers --------------------------------------------------------------------------

    def timer_sessions(self) -> list[TimerSession]:
        """Every phase in Timers/sessions/DATE.yml, days in order."""
        out: list[TimerSession] = []
        for day, entries in sorted(self.tree.timer_sessions.items()):
            source = self.tree.timer_files.get(day, day)
            for e in entries:
                if not isinstance(e, dict):
                    continue
                bound = e.get("bound_item")
                if not isinstance(bound, dict):
                    bound = {}
                bname, btype = to_text(bound.get("name")), to_text(bound.get("type"))
                seconds = to_num(e.get("seconds"))
                out.append({"date": day, "start": stamp(e.get("start")), "end": stamp(e.get("end")),
                            "phase": to_text(e.get("phase")), "profile": to_text(e.get("profile")),
                            "seconds": seconds, "minutes": None if seconds is None else max(1.0, seconds // 60),
                            "bound_type": btype, "bound_name": bname,
                            "item_id": self.index.find(bname, btype) if bname else None, "source": source})
        return out

    # --- links between items ---------------------------------------------------------------

    def link_relations(self) -> list[RelationRow]:
        """The links chronos_core.db's relations hold besides the lists of
        references (children, milestones, rewards, targets): a milestone's
        ``goal: <name>`` (kind ``goal``, to the goal), and an item's
        ``sequence:`` (a day template's windows; kind ``sequence``).  A
        sequence entry that defines its window inline (``window: true``, or a
        start or end) is kept with its definition in ``detail_json`` and is
        not an unresolved reference when no item has its name; a goal or a
        plain reference no item answers goes to :attr:`unresolved`."""
        rel: list[RelationRow] = []
        for pid, it in enumerate(self.tree.items, 1):
            goal = it.data.get("goal")
            if it.type == "milestone" and isinstance(goal, str) and goal.strip():
                cid = self.index.find(goal, "goal")
                if cid is None:
                    self.unresolved.append({"from": it.path, "kind": "goal", "name": goal.strip(), "type": "goal"})
                rel.append((pid, cid, goal.strip(), "goal", "goal", 0, int(cid is not None), None))
            seq = it.data.get("sequence")
            if not isinstance(seq, list):
                continue
            for order, r in enumerate(seq):
                if isinstance(r, dict):
                    name, rtype = r.get("name"), to_text(r.get("type"))
                    detail = {k: v for k, v in r.items() if k not in ("name", "type")} or None
                else:
                    name, rtype, detail = r, None, None
                if not isinstance(name, str) or not name.strip():
                    continue
                cid = self.index.find(name, rtype)
                inline = detail is not None and (detail.get("window") is True or "start" in detail or "end" in detail)
                if cid is None and not inline:
                    self.unresolved.append({"from": it.path, "kind": "sequence", "name": name, "type": rtype})
                rel.append((pid, cid, name.strip(), rtype, "sequence", order, int(cid is not None),
                            to_json(detail) if detail else None))
        return rel

    # --- variables ----------------------------------------------------------------------------

    def variables(self) -> dict[str, Any]:
        """What chronos_core.db's variables hold besides the points and the
        settings themselves: the status dimensions and their levels, the
        quality labels, the current status, and the timer's state and day plan."""
        t = self.tree
        return {"status.dimensions": status_dimensions(t), "status.levels": status_levels(t),
                "status.current": t.current_status, "quality.levels": self.quality,
                "timer.state": t.timer_state, "timer.start_day_plan": t.timer_plan}


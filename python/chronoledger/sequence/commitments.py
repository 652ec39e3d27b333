"""Commitments judged per whole period by Chronos's rules
(modules/commitment/main.py), and rewards redeemed from the points ledger:
the trigger records that the events mirror logs (``trigger_log``) and the
memory mirror keeps as reinforcements.

Chronos judges a commitment for the current period only, each time it runs;
the mirror judges every whole period the folder's logs cover, the same way:

- the rule: ``rule: {kind: frequency|never, times, period: day|week|month}``,
  or the older ``frequency: {times, period, of}`` and ``never: true|{of}``
  (a ``never`` rule is judged per day, as Chronos does); a rule with no
  ``kind`` is a frequency, and ``times`` is 1 unless it says more;
- the targets: ``targets: [{type, name, count?}]`` (or bare names), or the
  older ``associated_items``, ``forbidden_items``, ``frequency.of``,
  ``never.of`` and ``linked_habit``;
- what counts for a target on a day: the completed entries of the
  completions log under its name, and a day in the target item's
  ``completion_dates`` (``incident_dates`` for a ``never`` rule on a habit to
  avoid), the larger of the two (the same completion is often in both);
- a frequency is met when every target with a ``count`` reached it, or
  (without counts) when the targets together reached ``times``; a period that
  ends unmet is violated;
- a ``never`` is met unless a target has a day in the period;
- ``manual_status_by_date: {date: met|violation}`` decides the period that
  date is in.

Two deliberate differences: a commitment whose ``status`` is not active
(paused, completed...) is not judged, and ``weekly``/``daily``/``monthly``
mean week/day/month (Chronos counts every date ever for any spelling but
day, week and month); another period is a warning.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from chronoledger.sequence.records import Completion, HabitDate, Item, LedgerRow, Problem, Trigger, UserTree
from chronoledger.sequence.values import iso_date, to_json, to_num, to_text

#: How rule periods are spelled, and what they mean.
PERIODS = {"day": "day", "daily": "day", "d": "day", "week": "week", "weekly": "week", "w": "week",
           "month": "month", "monthly": "month", "m": "month"}
#: The rule kinds Chronos knows.
KINDS = ("frequency", "never")


def judge(tree: UserTree, completions: list[Completion], ledger: Callable[[], list[LedgerRow]],
          history: list[HabitDate], find: Callable[[str, str | None], int | None]) -> list[Trigger]:
    """Each active commitment judged for every whole period the folder's logs
    cover, and each reward redeemed in the ledger, in time order.
    ``history`` is the items' own completion and incident days, ``find``
    resolves a target (name, type) to an item id.  ``ledger`` is asked for
    only when needed, so its warnings come where they always have."""
    out: list[Trigger] = []
    logged: dict[str, dict[str, int]] = {}            # target name (lower) -> day -> completed entries
    for c in completions:
        if c["status"] == "completed":
            days = logged.setdefault(c["name"].strip().lower(), {})
            days[c["date"]] = days.get(c["date"], 0) + 1
    own: dict[tuple[int, str], set[str]] = {}         # (item id, completion|incident) -> days
    for h in history:
        own.setdefault((h["item_id"], h["kind"]), set()).add(h["date"])
    covered = _covered(tree, history)
    if covered is not None:
        first, last = covered
        for it in tree.items:
            if it.type == "commitment":
                out += _judge_one(tree, it, first, last, logged, own, find)
    out += _redeemed(tree, ledger())
    out.sort(key=lambda t: (t["ts"], t["source_name"]))
    return out


def _covered(tree: UserTree, history: list[HabitDate]) -> tuple[date, date] | None:
    """The first and last day the folder's logs cover: the days of its
    completions, schedules, status history and timer sessions, and of the
    items' completion and incident dates; None without any."""
    days = [min(d) for d in (tree.completions, tree.schedules, tree.status, tree.timer_sessions) if d]
    ends = [max(d) for d in (tree.completions, tree.schedules, tree.status, tree.timer_sessions) if d]
    if history:
        days.append(min(h["date"] for h in history))
        ends.append(max(h["date"] for h in history))
    if not days:
        return None
    return date.fromisoformat(min(days)), date.fromisoformat(max(ends))


def _rule(tree: UserTree, it: Item) -> tuple[str, int, str] | None:
    """(kind, times, period) of a commitment, as Chronos normalises it, or None
    when it has no rule it can judge (with a warning when it names one)."""
    d = it.data
    rule = d.get("rule")
    freq = d.get("frequency")
    never = d.get("never")
    if isinstance(rule, dict):
        kind = str(rule.get("kind") or "").strip().lower() or "frequency"
        times = to_num(rule.get("times"))
        period = rule.get("period")
    elif isinstance(freq, dict):
        kind, times, period = "frequency", to_num(freq.get("times")), freq.get("period")
    elif never is True or isinstance(never, dict):
        kind, times, period = "never", None, "day"
    else:
        return None
    if kind not in KINDS:
        tree.problems.append(Problem(it.path, None, f"rule kind {to_text(kind)!r} is not frequency or never; "
                                                    f"the commitment is not judged", skipped=False))
        return None
    spelled = "week" if period is None else period
    p = PERIODS.get(str(spelled).strip().lower())
    if p is None:
        tree.problems.append(Problem(it.path, None, f"rule period {spelled!r} is not one of day, week, month; "
                                                    f"the commitment is not judged", skipped=False))
        return None
    return kind, int(min(times, 1e9)) if times is not None and times > 0 else 1, p


def _targets(d: dict) -> list[tuple[str, str | None, int | None]]:
    """(name, type or None, its own required count or None) of each target,
    from ``targets`` or the older shapes, as Chronos reads them."""
    found: Any = d.get("targets") if isinstance(d.get("targets"), list) and d.get("targets") else None
    if found is None:
        for key in ("associated_items", "forbidden_items"):
            if isinstance(d.get(key), list) and d.get(key):
                found = d[key]
                break
    if found is None:
        for key in ("frequency", "never"):
            of = d[key].get("of") if isinstance(d.get(key), dict) else None
            if of:
                found = of if isinstance(of, list) else [of]
                break
    if found is None and isinstance(d.get("linked_habit"), str) and d["linked_habit"].strip():
        found = [{"type": "habit", "name": d["linked_habit"]}]
    out = []
    for t in found or []:
        if isinstance(t, dict):
            name, ttype = t.get("name"), to_text(t.get("type"))
            count = None
            if t.get("count") is not None:         # Chronos counts per target only when a target gives `count`
                raw = next((t.get(k) for k in ("count", "times", "required") if t.get(k) is not None), None)
                n = to_num(raw)
                count = max(1, int(min(n, 1e9))) if n is not None else 1
        else:
            name, ttype, count = t, None, None
        if isinstance(name, str) and name.strip():
            out.append((name.strip(), ttype.strip().lower() if ttype and ttype.strip() else None, count))
    return out


class _Counts:
    """A target's days and how many times each counts, for counting any period fast."""

    def __init__(self, per_day: dict[str, int]):
        self.days = sorted(per_day)
        self.cum = [0]
        for day in self.days:
            self.cum.append(self.cum[-1] + per_day[day])

    def between(self, start: str, end: str) -> int:
        """The count on the days from ``start`` up to, not including, ``end``."""
        return self.cum[bisect.bisect_left(self.days, end)] - self.cum[bisect.bisect_left(self.days, start)]


def _judge_one(tree: UserTree, it: Item, first: date, last: date, logged: dict[str, dict[str, int]],
               own: dict[tuple[int, str], set[str]], find: Callable[[str, str | None], int | None]) -> list[Trigger]:
    d = it.data
    rule = _rule(tree, it)
    if rule is None:
        return []
    kind, times, period = rule
    if str(d.get("status", "active")).strip().lower() not in ("active", ""):
        return []                           # paused, completed, archived...: not judged
    since = iso_date(d.get("created")) or iso_date(d.get("start_date")) or iso_date(d.get("creation_date"))
    targets = []
    for name, ttype, count in _targets(d):
        per_day = dict(logged.get(name.lower(), {}))
        item_id = find(name, ttype)
        if item_id is not None:
            target = tree.items[item_id - 1]
            bad = str(target.data.get("polarity") or "good").strip().lower() == "bad"
            field = "incident" if kind == "never" and target.type == "habit" and bad else "completion"
            for day in own.get((item_id, field), ()):
                per_day[day] = max(per_day.get(day, 0), 1)
        targets.append((_Counts(per_day), count))
    per_target = any(count is not None for _, count in targets)
    manual = _manual(d.get("manual_status_by_date"))
    trig = d.get("triggers")
    if not isinstance(trig, dict):
        trig = {}
    on_met = trig.get("on_met") if trig.get("on_met") is not None else trig.get("on_complete")   # Chronos's legacy name
    # the same actions every period: encoded once
    actions_met = (on_met or [], to_json(on_met or []))
    actions_violated = (trig.get("on_violation") or [], to_json(trig.get("on_violation") or []))
    period_json = to_json(period)
    kind_json = to_json(kind)
    out: list[Trigger] = []
    for p_start, p_end, p_last, label in _periods(first, last, period):
        if since is not None and p_last < since:
            continue                        # before the commitment existed
        counts = [(c.between(p_start, p_end), need) for c, need in targets]
        n = sum(k for k, _ in counts)
        if kind == "never":
            met = n == 0
        elif per_target:
            met = bool(counts) and all(k >= (need or 1) for k, need in counts)
        else:
            met = bool(counts) and n >= times
        detail: dict[str, Any] = {"count": n, "kind": kind, "period": period, "times": 0 if kind == "never" else times}
        said = _manual_in(manual, p_start, p_end)
        if said is not None:
            met = said == "met"
            detail["manual"] = said
            detail_json = to_json(detail)
        else:
            # to_json's text of the same dict (compact, keys sorted), without its cost per period
            detail_json = f'{{"count":{n},"kind":{kind_json},"period":{period_json},"times":{detail["times"]}}}'
        actions = actions_met if met else actions_violated
        out.append({"ts": f"{p_last}T23:59:59", "source_type": "commitment", "source_name": it.name,
                    "trigger": "on_met" if met else "on_violation", "period": label,
                    "outcome": "met" if met else "violated", "actions": actions[0], "actions_json": actions[1],
                    "detail": detail, "detail_json": detail_json})
    return out


def _manual(value: Any) -> list[tuple[str, str]]:
    """``manual_status_by_date`` as sorted (day, met|violation)."""
    if not isinstance(value, dict):
        return []
    out = []
    for k, v in value.items():
        day, said = iso_date(k), str(v or "").strip().lower()
        if day is not None and said in ("met", "violation"):
            out.append((day, said))
    return sorted(out)


def _manual_in(manual: list[tuple[str, str]], start: str, end: str) -> str | None:
    """The last manual verdict dated in [start, end), or None."""
    said = None
    for day, v in manual:
        if start <= day < end:
            said = v
    return said


def _redeemed(tree: UserTree, ledger: list[LedgerRow]) -> list[Trigger]:
    """Each redemption in the ledger, as Chronos's reward module writes it:
    ``reason: "redeem:<reward name>"`` with the (negative) delta, and what the
    reward gives (its ``target``, and any ``triggers.on_complete``)."""
    rewards = {it.name.strip().lower(): it for it in tree.items if it.type == "reward"}
    out: list[Trigger] = []
    for ts, delta, reason, _, _, _ in ledger:
        if not isinstance(reason, str) or not reason.lower().startswith("redeem:"):
            continue
        name = reason[len("redeem:"):].strip()
        reward = rewards.get(name.lower())
        actions: list[Any] = []
        cost = None
        if reward is not None:
            name = reward.name
            target = reward.data.get("target")
            if isinstance(target, dict):
                actions.append(target)
            trig = reward.data.get("triggers")
            if isinstance(trig, dict) and isinstance(trig.get("on_complete"), list):
                actions += trig["on_complete"]
            c = reward.data.get("cost")
            cost = to_num(c.get("points")) if isinstance(c, dict) else to_num(c)
        detail = {"points": delta, "cost": cost, "reward_found": reward is not None}
        out.append({"ts": ts, "source_type": "reward", "source_name": name, "trigger": "on_complete",
                    "period": None, "outcome": "redeemed", "actions": actions, "actions_json": to_json(actions),
                    "detail": detail, "detail_json": to_json(detail)})
    return out


@functools.lru_cache(maxsize=64)
def _periods(first: date, last: date, period: str) -> tuple[tuple[str, str, str, str], ...]:
    """The whole periods (days, weeks from Monday, or calendar months)
    between two dates, as (first day, first day after, last day, label)
    text; one still running at ``last`` is not judged.  Shared by every
    commitment of a sync."""
    out: list[tuple[str, str, str, str]] = []
    if period == "week":
        start = first - timedelta(days=first.weekday())
    elif period == "month":
        start = first.replace(day=1)
    else:
        start = first
    while True:
        if period == "month":
            end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
            label = start.strftime("%Y-%m")
        elif period == "week":
            end = start + timedelta(days=7)
            iso = start.isocalendar()
            label = f"{iso[0]}-W{iso[1]:02d}"
        else:
            end = start + timedelta(days=1)
            label = start.isoformat()
        if end - timedelta(days=1) > last:
            return tuple(out)
        out.append((start.isoformat(), end.isoformat(), (end - timedelta(days=1)).isoformat(), label))
        start = end

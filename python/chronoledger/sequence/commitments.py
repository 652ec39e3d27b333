"""Commitments judged per whole period against the completions, and rewards
redeemed from the points ledger: the trigger records that the events mirror
logs (``trigger_log``) and the memory mirror keeps as reinforcements.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from datetime import date, timedelta

from chronoledger.sequence.records import Completion, LedgerRow, Problem, Trigger, UserTree
from chronoledger.sequence.values import iso_date, to_json, to_num


def judge(tree: UserTree, completions: list[Completion], ledger: Callable[[], list[LedgerRow]]) -> list[Trigger]:
    """Each active commitment judged for every whole period the completions
    files cover (met when its targets were completed often enough), and each
    reward redeemed in the ledger, in time order.  ``ledger`` is asked for
    only when needed, so its warnings come where they always have."""
    out: list[Trigger] = []
    by_name: dict[str, list[str]] = {}
    for c in completions:
        if c["status"] == "completed":
            by_name.setdefault(c["name"].lower(), []).append(c["date"])
    days = sorted(tree.completions)
    if not days:
        return out
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    for it in tree.items:
        if it.type != "commitment":
            continue
        rule = it.data.get("rule") if isinstance(it.data.get("rule"), dict) else it.data.get("frequency")
        targets = it.data.get("targets") or []
        if not isinstance(rule, dict) or not isinstance(targets, list):
            continue
        times = int(min(to_num(rule.get("times")) or 1, 1e9))
        period = PERIODS.get(str(rule.get("period", "week")).strip().lower())
        if period is None:
            tree.problems.append(Problem(it.path, None, f"rule period {rule.get('period')!r} is not one of "
                                                        f"day, week, month; the commitment is not judged",
                                         skipped=False))
            continue
        if str(it.data.get("status", "active")).strip().lower() not in ("active", ""):
            continue                        # paused, completed, archived...: not judged
        since = iso_date(it.data.get("created")) or iso_date(it.data.get("start_date"))
        names = [str(t.get("name") if isinstance(t, dict) else t).lower() for t in targets]
        hits = sorted(d for n in names for d in by_name.get(n, []))
        trig = it.data.get("triggers")
        if not isinstance(trig, dict):
            trig = {}
        # the same actions every period: encoded once
        actions_met = (trig.get("on_met") or [], to_json(trig.get("on_met") or []))
        actions_violated = (trig.get("on_violation") or [], to_json(trig.get("on_violation") or []))
        period_json = to_json(period)
        for p_start, p_end, p_last, label in _periods(first, last, period):
            if since is not None and p_last < since:
                continue                    # before the commitment existed
            n = bisect.bisect_left(hits, p_end) - bisect.bisect_left(hits, p_start)
            met = n >= times
            actions = actions_met if met else actions_violated
            out.append({"ts": f"{p_last}T23:59:59", "source_type": "commitment",
                        "source_name": it.name, "trigger": "on_met" if met else "on_violation",
                        "period": label, "outcome": "met" if met else "violated",
                        "actions": actions[0], "actions_json": actions[1],
                        "detail": {"count": n, "times": times, "period": period},
                        "detail_json": f'{{"count": {n}, "period": {period_json}, "times": {times}}}'})
    rewards = {it.name.lower(): it for it in tree.items if it.type == "reward"}
    for ts, delta, reason, source, _, _ in ledger():
        if source == "reward" and isinstance(reason, str):
            name = reason.split(" ", 1)[-1].lower()
            reward = rewards.get(name)
            if reward is not None:
                trig = reward.data.get("triggers")
                if not isinstance(trig, dict):
                    trig = {}
                redeemed = trig.get("on_complete") or []
                out.append({"ts": ts, "source_type": "reward", "source_name": reward.name,
                            "trigger": "on_complete", "period": None, "outcome": "redeemed", "actions": redeemed,
                            "actions_json": to_json(redeemed), "detail": {"points": delta},
                            "detail_json": to_json({"points": delta})})
    out.sort(key=lambda t: (t["ts"], t["source_name"]))
    return out


#: How rule periods are spelled, and what they mean.
PERIODS = {"day": "day", "daily": "day", "d": "day", "week": "week", "weekly": "week", "w": "week",
           "month": "month", "monthly": "month", "m": "month"}


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
